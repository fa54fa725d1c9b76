/**
 * `spurmem data check`: counts per split and group, rows whose image file is missing and, with `deep`,
 * images that do not decode, the colour modes of the images (as PIL opens them) and the files that need
 * a colour conversion to RGB.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { availableParallelism } from 'node:os';
import { messageOf } from '../util/errors.js';
import { decodeImage, type DecodedImage } from './images.js';
import { truncationReason } from './image-header.js';
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
  /** Images per colour mode, as PIL opens them ('RGB', 'L', 'CMYK', 'P', 'I', ...; only with deep). */
  modes: Record<string, number>;
  /**
   * Images whose pixels PIL's convert('RGB') changes beyond replicating grey: CMYK, palette, alpha,
   * 16-bit and 1-bit images (only with deep). spurmem converts them as PIL does; `conversion` says how.
   */
  converted: (SkippedImage & { mode: string; conversion: string })[];
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
 * What PIL's convert('RGB') does to a decoded image beyond copying RGB or replicating grey, or undefined
 * when it does nothing more.
 */
export function conversionOf(d: DecodedImage): string | undefined {
  switch (d.toRgb) {
    case 'cmyk':
      return "CMYK to RGB by PIL's formula (r = 255 - c - k + c*k/255), no ICC profile";
    case 'grey16-clip':
      return '16-bit greyscale (PIL mode I): values above 255 become 255, not scaled';
    case 'grey16-high':
      return '16-bit greyscale + alpha: high byte kept, alpha dropped';
    case 'rgb16-high':
      return d.channels === 4 ? '16-bit RGBA: high byte kept, alpha dropped' : '16-bit RGB: high byte kept';
    default:
      break;
  }
  if (d.mode === 'P') return 'palette colours looked up' + (d.channels === 2 || d.channels === 4 ? ', transparency dropped' : '');
  if (d.mode === '1') return '1-bit: 0 and 255';
  if (d.mode === 'LA' || d.mode === 'RGBA' || d.channels === 2 || d.channels === 4) return 'alpha dropped';
  return undefined;
}

/**
 * Opens the dataset (label errors are thrown as by openDataset), lists missing images and, with `deep`,
 * decodes every image fully (as the transforms do) and lists those that fail, counts the images per colour
 * mode and lists those that need a colour conversion.
 * @throws SpurmemError for bad metadata (file, line, field), as openDataset
 */
export async function checkDataset(
  o: Omit<OpenDatasetOptions, 'skipBadImages'> & { deep?: boolean; concurrency?: number; onProgress?: (done: number, total: number) => void },
): Promise<CheckReport> {
  const ds = await openDataset({ ...o, skipBadImages: true });
  const undecodable: SkippedImage[] = [];
  const modes: Record<string, number> = {};
  const converted: CheckReport['converted'] = [];
  if (o.deep) {
    const all = SPLITS.flatMap((s) => ds.samples[s]);
    let next = 0;
    let done = 0;
    const worker = async () => {
      while (next < all.length) {
        const s = all[next++];
        try {
          // the decoder the transforms use, so that what passes here decodes there
          const d = await decodeImage(s.file);
          modes[d.mode] = (modes[d.mode] ?? 0) + 1;
          const how = conversionOf(d);
          if (how) converted.push({ file: s.file, line: s.line, split: s.split, reason: how, mode: d.mode, conversion: how });
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
    converted.sort((a, b) => a.line - b.line);
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
    modes,
    converted,
    deep: o.deep ?? false,
    warnings: ds.warnings.filter((w) => !/rows skipped: image file missing$/.test(w)),
    ok: ds.skippedImages.length === 0 && undecodable.length === 0,
  };
}
