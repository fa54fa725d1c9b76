/**
 * Opening a dataset: Waterbirds (`waterbird_complete95_forest2water2` as distributed), CelebA (official
 * lists, Kaggle CSVs or a prepared metadata.csv) and any folder with a Waterbirds-style metadata.csv.
 * Follows the original's `ShortcutLearningDataset` (reference §1): rows are kept per split in file order,
 * group = 2·y + a, and the label order is the original's (see src/metrics/groups.ts).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, basename, join, resolve, sep } from 'node:path';
import { addon, type FolderListing } from '../native.js';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import {
  readCelebaAttrCsv,
  readCelebaAttrTxt,
  readCelebaPartition,
  readMetadataCsv,
  type MetadataRow,
} from './metadata.js';
import { DATASET_KINDS, SPLITS, type Dataset, type DatasetKind, type Sample, type SkippedImage, type Split } from './types.js';

/** Options of {@link openDataset}. */
export interface OpenDatasetOptions {
  dataset: DatasetKind;
  /** The dataset folder (Waterbirds: waterbird_complete95_forest2water2; CelebA: the folder holding img_align_celeba/). */
  root: string;
  /** Class: a metadata.csv column (default `y`) or a CelebA attribute name (default `Blond_Hair`). */
  target?: string;
  /** Spurious attribute: a metadata.csv column (default `place`) or a CelebA attribute (default `Male`). */
  attribute?: string;
  /** Skip (and count) rows whose image file is missing instead of failing. */
  skipBadImages?: boolean;
}

/** Waterbirds group names (group = 2·y + place). */
export const WATERBIRDS_GROUP_NAMES = ['landbird on land', 'landbird on water', 'waterbird on land', 'waterbird on water'];
/** CelebA group names with the default target Blond_Hair and attribute Male. */
export const CELEBA_GROUP_NAMES = ['non-blond female', 'non-blond male', 'blond female', 'blond male'];

/**
 * Published per-split group counts (groups 0..3) of the full datasets, as hard-coded in the original
 * scripts (reference §1.2, §1.3).
 */
export const PUBLISHED_COUNTS: Record<'waterbirds' | 'celeba', Record<Split, number[]>> = {
  waterbirds: { train: [3498, 184, 56, 1057], val: [467, 466, 133, 133], test: [2255, 2255, 642, 642] },
  celeba: { train: [71629, 66874, 22880, 1387], val: [8535, 8276, 2874, 182], test: [9767, 7535, 2480, 180] },
};

/** Counts per group (length 4) of a list of samples. */
export function groupCounts(samples: readonly Sample[]): number[] {
  const c = [0, 0, 0, 0];
  for (const s of samples) c[s.group] += 1;
  return c;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * resolve(root, rel) for an absolute, normalised root: a plain join when rel is a simple relative path
 * (no '.' or '..' segment, no empty one), which is every image name of the datasets (202,599 for CelebA).
 */
function underRoot(root: string, rel: string): string {
  if (sep === '/' && rel !== '' && rel[0] !== '/' && !rel.endsWith('/') && !rel.endsWith('.') && !rel.includes('./') && !rel.includes('//')) {
    return root === '/' ? `/${rel}` : `${root}/${rel}`;
  }
  return resolve(root, rel);
}

/** The addon, or undefined where it cannot be loaded (the file check then runs in JavaScript). */
function addonIfLoadable(): ReturnType<typeof addon> | undefined {
  try {
    return addon();
  } catch {
    return undefined;
  }
}

/**
 * Which of the given absolute, normalised paths exist as files (1) or not (0): each folder is listed once,
 * by the addon on a worker thread (202,599 CelebA names in about 0.1 s, where listing and matching them in
 * JavaScript held this thread for about 0.4 s); folders in `listing` were listed ahead. An entry counts
 * unless it is a folder; a path holding a NUL character names no file.
 */
async function existingFiles(paths: string[], listing?: Promise<FolderListing | undefined>): Promise<Uint8Array> {
  const native = sep === '/' ? addonIfLoadable() : undefined;
  if (native) {
    // one NUL-joined string crosses over to the addon: a path holding a NUL goes as an empty one (no file)
    const joined = paths.map((p) => (p.includes('\0') ? '' : p)).join('\0');
    return native.presentFiles(joined, paths.length, await listing);
  }
  // without the addon (or with another separator): one readdir per folder
  const byDir = new Map<string, number[]>();
  paths.forEach((p, i) => {
    const d = dirname(p);
    let l = byDir.get(d);
    if (!l) byDir.set(d, (l = []));
    l.push(i);
  });
  const found = new Uint8Array(paths.length);
  for (const [d, idx] of byDir) {
    let names: Set<string>;
    try {
      names = new Set((await readdir(d, { withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => e.name));
    } catch {
      continue;
    }
    for (const i of idx) if (names.has(basename(paths[i]))) found[i] = 1;
  }
  return found;
}

/**
 * Samples per split from rows, checking that every image file exists. `lookedIn` (folders, relative to
 * root) names where image names were looked for, for the error about a missing one.
 */
async function buildSamples(
  metadataFile: string,
  root: string,
  rows: MetadataRow[],
  skipBadImages: boolean,
  lookedIn?: string[],
  listing?: Promise<FolderListing | undefined>,
): Promise<{ samples: Record<Split, Sample[]>; skippedImages: SkippedImage[] }> {
  const files = rows.map((r) => underRoot(root, r.relPath));
  const exist = await existingFiles(files, listing);
  const samples: Record<Split, Sample[]> = { train: [], val: [], test: [] };
  const skippedImages: SkippedImage[] = [];
  const missing: number[] = [];
  rows.forEach((r, i) => {
    if (!exist[i]) {
      missing.push(i);
      skippedImages.push({ file: files[i], line: r.line, split: r.split, reason: 'no such file' });
      return;
    }
    const list = samples[r.split];
    list.push({ index: list.length, line: r.line, file: files[i], y: r.y, a: r.a, group: 2 * r.y + r.a, split: r.split });
  });
  if (missing.length > 0 && !skipBadImages) {
    const r = rows[missing[0]];
    throw new SpurmemError(
      `${metadataFile} line ${r.line}: image '${r.relPath}' does not exist (${files[missing[0]]}); expected an image file ` +
        (lookedIn && lookedIn.length > 1
          ? `named relative to one of ${lookedIn.map((d) => (d ? join(root, d) : root)).join(', ')} (looked in each)`
          : `relative to ${root}`) +
        (missing.length > 1 ? ` (${missing.length - 1} more rows name missing files)` : '') +
        '. Use --skip-bad-images to skip and count such rows.',
    );
  }
  for (const split of SPLITS) {
    if (samples[split].length === 0) {
      const code = SPLITS.indexOf(split);
      throw new SpurmemError(
        `${metadataFile}: the ${split} split is empty` +
          (missing.length > 0 ? ` after skipping ${missing.length} missing images` : '') +
          ` (expected rows with split ${code} for ${split})`,
      );
    }
  }
  return { samples, skippedImages };
}

/**
 * One warning (or none) naming every split whose group counts differ from the published ones, with both
 * counts; when every split has fewer images than published it says that a subset cannot match them.
 */
function compareWithPublished(kind: 'waterbirds' | 'celeba', samples: Record<Split, Sample[]>): string[] {
  const differing: string[] = [];
  let subset = true;
  for (const split of SPLITS) {
    const got = groupCounts(samples[split]);
    const want = PUBLISHED_COUNTS[kind][split];
    if (got.some((v, g) => v !== want[g])) differing.push(`${split} ${got.join('/')} (published ${want.join('/')})`);
    if (samples[split].length >= want.reduce((a, b) => a + b, 0)) subset = false;
  }
  if (differing.length === 0) return [];
  return [
    `${kind}: group counts (groups 0/1/2/3) differ from the published ones: ${differing.join(', ')}` +
      (subset ? '; every split has fewer images than published, so a subset of the dataset cannot match them' : ''),
  ];
}

/** Group names of a dataset folder: `dataset.json`'s `groupNames` if present, else `<target>=y, <attribute>=a`. */
function folderGroupNames(root: string, target: string, attribute: string): string[] {
  const info = join(root, 'dataset.json');
  if (existsSync(info)) {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(info, 'utf8'));
    } catch (e) {
      throw new SpurmemError(`${info}: not valid JSON (${messageOf(e)})`);
    }
    const names = (v as { groupNames?: unknown }).groupNames;
    if (names !== undefined) {
      if (!Array.isArray(names) || names.length !== 4 || !names.every((n) => typeof n === 'string')) {
        throw new SpurmemError(`${info}: key 'groupNames' must be a list of 4 strings (group 0..3 = 2·y + a)`);
      }
      return names as string[];
    }
  }
  return genericGroupNames(target, attribute);
}

/** `<target>=y, <attribute>=a` for group 2·y + a. */
function genericGroupNames(target: string, attribute: string): string[] {
  return [0, 1, 2, 3].map((g) => `${target}=${g >> 1}, ${attribute}=${g & 1}`);
}

function celebaGroupNames(target: string, attribute: string): string[] {
  if (target === 'Blond_Hair' && attribute === 'Male') return [...CELEBA_GROUP_NAMES];
  return [0, 1, 2, 3].map((g) => `${g >> 1 ? '' : 'not '}${target}, ${g & 1 ? '' : 'not '}${attribute}`);
}

/** Where CelebA's images are: img_align_celeba/, or the Kaggle layout img_align_celeba/img_align_celeba/ (undefined: neither). */
function findCelebaImageDir(root: string): string | undefined {
  const plain = join(root, 'img_align_celeba');
  const nested = join(plain, 'img_align_celeba');
  if (isDir(nested)) return 'img_align_celeba/img_align_celeba';
  if (isDir(plain)) return 'img_align_celeba';
  return undefined;
}

/** {@link findCelebaImageDir}, or a SpurmemError saying that the folder is missing. */
function celebaImageDir(root: string): string {
  const dir = findCelebaImageDir(root);
  if (dir === undefined) throw new SpurmemError(`${root}: no folder img_align_celeba/ (expected the CelebA folder that holds img_align_celeba/)`);
  return dir;
}

function firstExisting(root: string, names: string[]): string | undefined {
  for (const n of names) if (existsSync(join(root, n))) return join(root, n);
  return undefined;
}

/**
 * The folder (relative to root) that a prepared CelebA metadata.csv names its images from: the root itself
 * (names such as `img_align_celeba/000001.jpg`), `img_align_celeba/` or the Kaggle layout's
 * `img_align_celeba/img_align_celeba/` (bare names such as `000001.jpg`), whichever holds most of the
 * first 32 rows' images; and the folders looked in when none holds any.
 */
function celebaMetadataFolder(root: string, rows: MetadataRow[]): { dir: string; lookedIn?: string[] } {
  const lookedIn = ['', 'img_align_celeba', 'img_align_celeba/img_align_celeba'].filter((d) => d === '' || isDir(join(root, d)));
  const probe = rows.slice(0, 32);
  let best = { dir: '', hits: 0 };
  for (const d of lookedIn) {
    const hits = probe.filter((r) => existsSync(join(root, d, r.relPath))).length;
    if (hits > best.hits) best = { dir: d, hits };
  }
  return best.hits > 0 ? { dir: best.dir } : { dir: '', lookedIn };
}

/** Reads CelebA's rows from metadata.csv or from the attribute and partition lists. */
function celebaRows(root: string, target: string, attribute: string, explicit: boolean): { file: string; rows: MetadataRow[]; lookedIn?: string[] } {
  const meta = join(root, 'metadata.csv');
  if (!explicit && existsSync(meta)) {
    const rows = readMetadataCsv(meta);
    const { dir, lookedIn } = celebaMetadataFolder(root, rows);
    return { file: meta, rows: dir ? rows.map((r) => ({ ...r, relPath: `${dir}/${r.relPath}` })) : rows, lookedIn };
  }
  const attrFile = firstExisting(root, ['list_attr_celeba.txt', 'list_attr_celeba.csv', 'Anno/list_attr_celeba.txt']);
  const partFile = firstExisting(root, ['list_eval_partition.txt', 'list_eval_partition.csv', 'Eval/list_eval_partition.txt']);
  if (!attrFile || !partFile) {
    throw new SpurmemError(
      `${root}: no CelebA labels found (expected list_attr_celeba.txt or .csv and list_eval_partition.txt or .csv` +
        (explicit ? '; a metadata.csv cannot select other attributes' : ', or a prepared metadata.csv with img_filename,y,split,place') +
        `; missing: ${[!attrFile ? 'list_attr_celeba' : '', !partFile ? 'list_eval_partition' : ''].filter(Boolean).join(', ')})`,
    );
  }
  const attrs = attrFile.endsWith('.csv') ? readCelebaAttrCsv(attrFile, target, attribute) : readCelebaAttrTxt(attrFile, target, attribute);
  const parts = readCelebaPartition(partFile);
  const dir = celebaImageDir(root);
  const rows: MetadataRow[] = attrs.rows.map((r) => {
    const split = parts.get(r.image);
    if (split === undefined) {
      throw new SpurmemError(
        `${attrFile} line ${r.line}: image '${r.image}' has no partition in ${partFile} (expected every image to have a partition 0, 1 or 2)`,
      );
    }
    return { line: r.line, relPath: `${dir}/${r.image}`, y: r.y, a: r.a, split };
  });
  return { file: attrFile, rows };
}

/**
 * Opens a dataset and checks it: every label in range, every split non-empty, every image file present
 * (missing ones are skipped and counted with `skipBadImages`). For full Waterbirds and CelebA (default
 * target and attribute) the per-split group counts are compared with the published ones and each
 * difference becomes a warning naming both.
 * @throws UsageError for an unknown dataset kind; SpurmemError naming the file, line and field for bad input.
 */
export async function openDataset(o: OpenDatasetOptions): Promise<Dataset> {
  if (!(DATASET_KINDS as readonly string[]).includes(o.dataset)) {
    throw new UsageError(`--dataset must be one of ${DATASET_KINDS.join(', ')}, got '${o.dataset}'`);
  }
  const root = resolve(o.root);
  if (!isDir(root)) {
    throw new SpurmemError(`${root}: ${existsSync(root) ? 'is a file' : 'no such folder'} (--root expects the ${o.dataset} dataset folder)`);
  }
  if (o.target !== undefined && o.target === (o.attribute ?? (o.dataset === 'celeba' ? 'Male' : 'place'))) {
    throw new UsageError(`--target and --attribute are both '${o.target}': the class and the spurious attribute must be different columns`);
  }
  const kind = o.dataset;
  let target: string;
  let attribute: string;
  let metadataFile: string;
  let rows: MetadataRow[];
  let groupNames: string[];
  let lookedIn: string[] | undefined;
  let listing: Promise<FolderListing | undefined> | undefined;
  if (kind === 'celeba') {
    // CelebA's image folder (202,599 names) is read on a worker thread while its lists are parsed here
    const imageDir = findCelebaImageDir(root);
    const native = imageDir !== undefined && sep === '/' ? addonIfLoadable() : undefined;
    if (native) listing = native.listFolders({ dirs: [join(root, imageDir!)] }).catch(() => undefined);
    target = o.target ?? 'Blond_Hair';
    attribute = o.attribute ?? 'Male';
    const explicit = target !== 'Blond_Hair' || attribute !== 'Male';
    ({ file: metadataFile, rows, lookedIn } = celebaRows(root, target, attribute, explicit));
    groupNames = celebaGroupNames(target, attribute);
  } else {
    target = o.target ?? 'y';
    attribute = o.attribute ?? 'place';
    metadataFile = join(root, 'metadata.csv');
    if (!existsSync(metadataFile)) {
      throw new SpurmemError(`${root}: no metadata.csv (expected the Waterbirds layout: metadata.csv with img_filename,y,split,place and the images)`);
    }
    rows = readMetadataCsv(metadataFile, { target, attribute });
    groupNames =
      target !== 'y' || attribute !== 'place'
        ? genericGroupNames(target, attribute) // dataset.json names the default columns' groups
        : kind === 'waterbirds'
          ? [...WATERBIRDS_GROUP_NAMES]
          : folderGroupNames(root, target, attribute);
  }
  const { samples, skippedImages } = await buildSamples(metadataFile, root, rows, o.skipBadImages ?? false, lookedIn, listing);
  const defaultLabels = kind === 'celeba' ? target === 'Blond_Hair' && attribute === 'Male' : target === 'y' && attribute === 'place';
  const warnings = kind !== 'folder' && defaultLabels ? compareWithPublished(kind, samples) : [];
  if (skippedImages.length > 0) warnings.push(`${skippedImages.length} rows skipped: image file missing`);
  for (const split of ['train', 'val', 'test'] as const) {
    if (samples[split].length === 0) continue;
    const counts = groupCounts(samples[split]);
    const empty = [0, 1, 2, 3].filter((g) => !counts[g]);
    for (const g of empty) warnings.push(`the ${split} split has no samples of group ${g} (${groupNames[g]}): its accuracy is reported as "no samples" and worst-group accuracy leaves it out`);
  }
  return {
    kind,
    root,
    metadataFile,
    groupNames,
    samples,
    trainGroupCounts: groupCounts(samples.train),
    warnings,
    skipped: skippedImages.length,
    skippedImages,
    target,
    attribute,
  };
}

/**
 * The per-split, per-group counts as a text table (printed when a dataset opens):
 * one row per group with its id, name and train/val/test counts, then the totals.
 */
export function countsTable(ds: Dataset): string {
  const counts = SPLITS.map((s) => groupCounts(ds.samples[s]));
  const nameW = Math.max(4, ...ds.groupNames.map((n) => n.length));
  const cols = SPLITS.map((s, i) => Math.max(s.length, ...counts[i].map((c) => String(c).length), String(ds.samples[s].length).length));
  const row = (a: string, b: string, vals: string[]) =>
    `${a.padEnd(5)}  ${b.padEnd(nameW)}  ${vals.map((v, i) => v.padStart(cols[i])).join('  ')}`;
  const lines = [
    `${ds.kind} dataset at ${ds.root} (${basename(ds.metadataFile)})`,
    row('group', 'name', [...SPLITS]),
    ...ds.groupNames.map((n, g) => row(String(g), n, counts.map((c) => String(c[g])))),
    row('all', '', SPLITS.map((s) => String(ds.samples[s].length))),
  ];
  if (ds.skipped > 0) lines.push(`skipped: ${ds.skipped} rows with a missing image`);
  return lines.join('\n');
}
