/**
 * `spurmem data check`: counts per split and group, rows whose image file is missing and, with `deep`,
 * images that do not decode.
 */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { messageOf } from '../util/errors.js';
import { groupCounts, openDataset, type OpenDatasetOptions } from './dataset.js';
import { SPLITS, type Dataset, type SkippedImage, type Split } from './types.js';

/** What {@link checkDataset} found. */
export interface CheckReport {
  dataset: Dataset['kind'];
  root: string;
  metadataFile: string;
  target: string;
  attribute: string;
  groupNames: string[];
  /** Per split: rows with an existing image file, and their counts per group. */
  splits: Record<Split, { count: number; groups: number[] }>;
  /** Rows whose image file is missing. */
  missing: SkippedImage[];
  /** Images that exist but do not decode (only with deep). */
  undecodable: SkippedImage[];
  /** Whether every image was decoded. */
  deep: boolean;
  warnings: string[];
  /** No missing and no undecodable images. */
  ok: boolean;
}

/**
 * Opens the dataset (label errors are thrown as by openDataset), lists missing images and, with `deep`,
 * decodes every image fully (as PIL would) and lists those that fail.
 * @throws SpurmemError for bad metadata (file, line, field), as openDataset
 */
export async function checkDataset(
  o: Omit<OpenDatasetOptions, 'skipBadImages'> & { deep?: boolean; concurrency?: number; onProgress?: (done: number, total: number) => void },
): Promise<CheckReport> {
  const ds = await openDataset({ ...o, skipBadImages: true });
  const undecodable: SkippedImage[] = [];
  if (o.deep) {
    const all = SPLITS.flatMap((s) => ds.samples[s]);
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < all.length) {
        const s = all[next++];
        try {
          await sharp(s.file, { failOn: 'error', ignoreIcc: true }).raw().toBuffer();
        } catch (e) {
          undecodable.push({ file: s.file, line: s.line, split: s.split, reason: messageOf(e) });
        }
        done += 1;
        o.onProgress?.(done, all.length);
      }
    };
    await Promise.all(Array.from({ length: o.concurrency ?? Math.max(4, 2 * availableParallelism()) }, worker));
    undecodable.sort((a, b) => a.line - b.line);
  }
  const splits = {} as CheckReport['splits'];
  for (const s of SPLITS) splits[s] = { count: ds.samples[s].length, groups: groupCounts(ds.samples[s]) };
  return {
    dataset: ds.kind,
    root: ds.root,
    metadataFile: ds.metadataFile,
    target: ds.target,
    attribute: ds.attribute,
    groupNames: ds.groupNames,
    splits,
    missing: ds.skippedImages,
    undecodable,
    deep: o.deep ?? false,
    warnings: ds.warnings.filter((w) => !/rows skipped: image file missing$/.test(w)),
    ok: ds.skippedImages.length === 0 && undecodable.length === 0,
  };
}
