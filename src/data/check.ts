/**
 * `spurmem data check`: counts per split and group, rows whose image file is missing and, with `deep`,
 * images that do not decode.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { messageOf } from '../util/errors.js';
import { groupCounts, openDataset, type OpenDatasetOptions } from './dataset.js';
import { truncationReason } from './images.js';
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
 * Why an image does not decode, the same on every run: a JPEG or PNG cut short says so (see
 * truncationReason); otherwise the file is decoded again on its own, so that libvips' message is not
 * mixed with (or lost to) those of images decoded at the same time, with repeated lines said once.
 */
async function decodeFailure(file: string, first: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    return messageOf(e);
  }
  const cut = truncationReason(bytes);
  if (cut) return cut;
  let message = first;
  try {
    await sharp(bytes, { failOn: 'error', ignoreIcc: true }).raw().toBuffer();
  } catch (e) {
    message = messageOf(e);
  }
  return [...new Set(message.split('\n').map((l) => l.trim()).filter(Boolean))].join('; ') || 'the decoder gave no reason';
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
    // one at a time, once the others are done: the reasons must not depend on what was decoded alongside
    for (const u of undecodable) u.reason = await decodeFailure(u.file, u.reason);
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
