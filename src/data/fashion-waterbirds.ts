/**
 * Fashion-Waterbirds: a small dataset with a spurious background, built from the real Fashion-MNIST images
 * that Debian's `dataset-fashion-mnist` package installs (IDX files under /usr/share/datasets/fashion-mnist),
 * in exactly the Waterbirds layout (metadata.csv + JPEGs in class sub-folders).
 *
 * Construction (the README's "Built-in dataset" section explains the choices):
 * - class y = 0 ("top"): T-shirt/top, Pullover; y = 1 ("shoe"): Sandal, Sneaker, Ankle boot. The item is a
 *   shape-only cue that a small network learns, but only after the background: it is needed only for the
 *   5 % of training images whose background goes against their class;
 * - place a = 0 ("land"): a green/brown mottled texture; a = 1 ("water"): a blue texture with waves. Colour
 *   alone separates them, so the background is the easy cue;
 * - the item is drawn as a light, colourless silhouette (Fashion-MNIST intensity as opacity) at a random
 *   position, about half the image's shorter side;
 * - per split and group, Waterbirds' counts times --scale (at least 1 each), so the train split has
 *   Waterbirds' 95 % correlation between class and place; no source image is used twice;
 * - everything is drawn from a generator seeded by --seed and the image's source id: the same seed gives
 *   the same bytes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { Rng } from '../util/random.js';
import { PUBLISHED_COUNTS } from './dataset.js';
import { SPLITS, type Split } from './types.js';

/**
 * Default classes: y = 0 tops (T-shirt/top, Pullover), y = 1 shoes (Sandal, Sneaker, Ankle boot). An
 * earlier choice, tops against dresses and coats (Fashion-MNIST's most confused classes), left the item
 * unlearnable at the demo's 32 px: ERM never fitted the minority groups at all, so there was no
 * memorisation to study.
 */
export const DEMO_CLASSES0 = [0, 2];
export const DEMO_CLASSES1 = [5, 7, 9];

/** The name of a class in group names: the default sets' short names, else the class names joined. */
function classLabel(classes: number[], dflt: number[], name: string): string {
  if (classes.length === dflt.length && classes.every((c, i) => c === dflt[i])) return name;
  return classes.map((c) => FASHION_MNIST_CLASSES[c]).join(' or ');
}

/** Where Debian's dataset-fashion-mnist package puts the IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** Fashion-MNIST's class names, by label. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/**
 * The defaults of {@link makeDemoDataset} (and of `spurmem data make-demo`): Waterbirds' counts, 96 x 96
 * images, items half the image's side, opaque, JPEG quality 90.
 */
export const DEMO_DATASET_DEFAULTS = { scale: 1, size: 96, seed: 0, itemSize: 0.5, itemOpacity: 1, quality: 90 } as const;
/** The smallest and largest image side of the demo dataset (pixels). */
export const DEMO_SIZE_RANGE = [16, 4096] as const;

/** Options of {@link makeDemoDataset}. */
export interface DemoOptions {
  /** Output folder (created; must be empty or an earlier demo dataset with `force`). */
  out: string;
  /** Multiplies Waterbirds' per-group counts (default 1: 11,788 images). */
  scale?: number;
  /** Image width and height in pixels (default 96 x 96). */
  width?: number;
  height?: number;
  seed?: number;
  /** Folder of the Fashion-MNIST IDX files (default Debian's). */
  fashionMnistDir?: string;
  /** Fashion-MNIST labels of class y = 0 and y = 1 (defaults {@link DEMO_CLASSES0} [0, 2] and {@link DEMO_CLASSES1} [5, 7, 9]). */
  classes0?: number[];
  classes1?: number[];
  /** Item side as a fraction of the image's shorter side (default 0.5). */
  itemSize?: number;
  /** Item opacity in (0, 1] (default 1). */
  itemOpacity?: number;
  /** Replace an earlier demo dataset in `out`. */
  force?: boolean;
  /** JPEG quality (default 90). */
  quality?: number;
  onProgress?: (done: number, total: number) => void;
}

/** What {@link makeDemoDataset} wrote. */
export interface DemoResult {
  root: string;
  counts: Record<Split, number[]>;
  images: number;
  groupNames: string[];
}

interface Idx {
  images: Uint8Array;
  labels: Uint8Array;
  n: number;
}

function readIdx(dir: string, prefix: 'train' | 't10k'): Idx {
  const read = (name: string, magic: number): Buffer => {
    const path = join(dir, name);
    let buf: Buffer;
    try {
      buf = gunzipSync(readFileSync(path));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SpurmemError(
        code === 'ENOENT'
          ? `${path}: no such file (install Debian's dataset-fashion-mnist package, or pass --fashion-mnist DIR)`
          : `${path}: not a gzip'd IDX file (${messageOf(e)})`,
      );
    }
    if (buf.length < 8 || buf.readUInt32BE(0) !== magic) {
      throw new SpurmemError(`${path}: bad IDX header (expected magic ${magic})`);
    }
    return buf;
  };
  const img = read(`${prefix}-images-idx3-ubyte.gz`, 2051);
  const lab = read(`${prefix}-labels-idx1-ubyte.gz`, 2049);
  const n = img.readUInt32BE(4);
  if (img.readUInt32BE(8) !== 28 || img.readUInt32BE(12) !== 28 || img.length !== 16 + n * 784 || lab.readUInt32BE(4) !== n || lab.length !== 8 + n) {
    throw new SpurmemError(`${join(dir, prefix)}-*-ubyte.gz: sizes do not match (expected ${n} images of 28 x 28 and ${n} labels)`);
  }
  return { images: img.subarray(16), labels: lab.subarray(8), n };
}

/** Per split and group: max(1, round(Waterbirds count · scale)). */
export function demoCounts(scale: number): Record<Split, number[]> {
  const out = {} as Record<Split, number[]>;
  for (const s of SPLITS) out[s] = PUBLISHED_COUNTS.waterbirds[s].map((c) => Math.max(1, Math.round(c * scale)));
  return out;
}

/** A smooth random field in [0, 1]: bilinear interpolation (smoothstep) of a random grid with `cells` cells per side. */
function valueNoise(w: number, h: number, cells: number, rng: Rng): Float32Array {
  const gw = cells + 2;
  const gh = Math.ceil((cells * h) / w) + 2;
  const g = new Float32Array(gw * gh).map(() => rng.next());
  const out = new Float32Array(w * h);
  const step = w / cells;
  const ox = rng.next();
  const oy = rng.next();
  for (let y = 0; y < h; y++) {
    const fy = y / step + oy;
    const iy = Math.floor(fy);
    let ty = fy - iy;
    ty = ty * ty * (3 - 2 * ty);
    for (let x = 0; x < w; x++) {
      const fx = x / step + ox;
      const ix = Math.floor(fx);
      let tx = fx - ix;
      tx = tx * tx * (3 - 2 * tx);
      const a = g[iy * gw + ix] + (g[iy * gw + ix + 1] - g[iy * gw + ix]) * tx;
      const b = g[(iy + 1) * gw + ix] + (g[(iy + 1) * gw + ix + 1] - g[(iy + 1) * gw + ix]) * tx;
      out[y * w + x] = a + (b - a) * ty;
    }
  }
  return out;
}

const clamp8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/** A land (a = 0) or water (a = 1) background, RGB HWC float. */
function background(place: 0 | 1, w: number, h: number, rng: Rng): Float32Array {
  const px = new Float32Array(w * h * 3);
  if (place === 0) {
    // grass and soil patches with darker shrubs and grain
    const grass = [70 + rng.uniform(-10, 10), 115 + rng.uniform(-15, 15), 45 + rng.uniform(-10, 10)];
    const soil = [130 + rng.uniform(-15, 15), 100 + rng.uniform(-12, 12), 62 + rng.uniform(-10, 10)];
    const n1 = valueNoise(w, h, 4, rng);
    const n2 = valueNoise(w, h, 12, rng);
    for (let i = 0; i < w * h; i++) {
      const t = Math.min(1, Math.max(0, (n1[i] - 0.35) * 2));
      const shade = 0.75 + 0.45 * n2[i];
      for (let c = 0; c < 3; c++) px[i * 3 + c] = (grass[c] * (1 - t) + soil[c] * t) * shade + rng.uniform(-10, 10);
    }
  } else {
    // blue water with horizontal waves and glints
    const deep = [30 + rng.uniform(-8, 8), 70 + rng.uniform(-12, 12), 140 + rng.uniform(-15, 15)];
    const light = [85 + rng.uniform(-10, 10), 145 + rng.uniform(-12, 12), 205 + rng.uniform(-12, 12)];
    const fy = rng.uniform(0.25, 0.6) * (96 / h);
    const fx = rng.uniform(0.03, 0.09) * (96 / w);
    const p1 = rng.uniform(0, 2 * Math.PI);
    const p2 = rng.uniform(0, 2 * Math.PI);
    const n1 = valueNoise(w, h, 5, rng);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const wave = 0.5 + 0.5 * Math.sin(fy * y + p1 + 1.5 * Math.sin(fx * x + p2));
        const t = Math.min(1, Math.max(0, 0.6 * wave + 0.6 * n1[i] - 0.1));
        for (let c = 0; c < 3; c++) px[i * 3 + c] = deep[c] * (1 - t) + light[c] * t + rng.uniform(-8, 8);
      }
    }
  }
  return px;
}

interface Planned {
  cls: number;
  source: 'train' | 't10k';
  index: number;
  y: 0 | 1;
  a: 0 | 1;
  split: Split;
  relPath: string;
}

function folderName(cls: number): string {
  return `${String(cls + 1).padStart(3, '0')}.${FASHION_MNIST_CLASSES[cls].replace(/[^A-Za-z]+/g, '_')}`;
}

function checkOptions(o: DemoOptions): Required<Omit<DemoOptions, 'onProgress'>> {
  const D = DEMO_DATASET_DEFAULTS;
  const scale = o.scale ?? D.scale;
  const width = o.width ?? D.size;
  const height = o.height ?? width;
  const seed = o.seed ?? D.seed;
  const itemSize = o.itemSize ?? D.itemSize;
  const itemOpacity = o.itemOpacity ?? D.itemOpacity;
  const quality = o.quality ?? D.quality;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new UsageError(`--scale expects a number > 0, got ${o.scale}`);
  for (const [flag, v] of [['--size (width)', width], ['--size (height)', height]] as const) {
    const [lo, hi] = DEMO_SIZE_RANGE;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new UsageError(`${flag} expects an integer from ${lo} to ${hi}, got ${v}`);
  }
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed expects a non-negative integer, got ${o.seed}`);
  if (!(itemSize > 0 && itemSize <= 1)) throw new UsageError(`--item-size expects a fraction in (0, 1], got ${o.itemSize}`);
  if (!(itemOpacity > 0 && itemOpacity <= 1)) throw new UsageError(`--item-opacity expects a number in (0, 1], got ${o.itemOpacity}`);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new UsageError(`JPEG quality must be 1-100, got ${o.quality}`);
  const classes0 = o.classes0 ?? DEMO_CLASSES0;
  const classes1 = o.classes1 ?? DEMO_CLASSES1;
  for (const c of [...classes0, ...classes1]) {
    if (!Number.isInteger(c) || c < 0 || c > 9) throw new UsageError(`Fashion-MNIST classes are 0-9, got ${c}`);
  }
  if (classes0.length === 0 || classes1.length === 0 || classes0.some((c) => classes1.includes(c)) || new Set(classes0).size !== classes0.length || new Set(classes1).size !== classes1.length) {
    throw new UsageError(`the class sets of y = 0 (${classes0.join(',')}) and y = 1 (${classes1.join(',')}) must be non-empty and disjoint`);
  }
  return {
    out: resolve(o.out), scale, width, height, seed, itemSize, itemOpacity, quality, classes0, classes1,
    fashionMnistDir: o.fashionMnistDir ?? FASHION_MNIST_DIR, force: o.force ?? false,
  };
}

function prepareOut(out: string, force: boolean): void {
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (entries.length > 0) {
      let ours = false;
      try {
        ours = (JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8')) as { name?: string }).name === 'fashion-waterbirds';
      } catch {
        ours = false;
      }
      if (!force || !ours) {
        throw new UsageError(
          `--out ${out} is not empty` + (ours ? ' (an earlier demo dataset: add --force to replace it)' : ' (expected a new or empty folder)'),
        );
      }
      rmSync(out, { recursive: true, force: true });
    }
  }
  mkdirSync(out, { recursive: true });
}

/**
 * Builds Fashion-Waterbirds in `o.out`: metadata.csv (Waterbirds columns img_id, img_filename, y, split,
 * place, place_filename), the JPEGs in one sub-folder per Fashion-MNIST class, and dataset.json (group
 * names and the construction settings). metadata.csv is written last, atomically.
 * @throws UsageError for bad options, a non-empty --out or a --scale that needs more images than
 *   Fashion-MNIST has; SpurmemError for missing or corrupt IDX files
 */
export async function makeDemoDataset(opts: DemoOptions): Promise<DemoResult> {
  const o = checkOptions(opts);
  const counts = demoCounts(o.scale);
  const sets = [readIdx(o.fashionMnistDir, 'train'), readIdx(o.fashionMnistDir, 't10k')];
  // a shuffled pool of source images per class y, disjoint across splits and groups
  const pools: { cls: number; source: 'train' | 't10k'; index: number }[][] = [[], []];
  for (const y of [0, 1] as const) {
    const classes = y === 0 ? o.classes0 : o.classes1;
    sets.forEach((set, si) => {
      for (let i = 0; i < set.n; i++) if (classes.includes(set.labels[i])) pools[y].push({ cls: set.labels[i], source: si === 0 ? 'train' : 't10k', index: i });
    });
    new Rng(o.seed, 0x9001, y).shuffle(pools[y]);
    const need = SPLITS.reduce((a, s) => a + counts[s][2 * y] + counts[s][2 * y + 1], 0);
    if (need > pools[y].length) {
      const per = SPLITS.reduce((a, s) => a + PUBLISHED_COUNTS.waterbirds[s][2 * y] + PUBLISHED_COUNTS.waterbirds[s][2 * y + 1], 0);
      throw new UsageError(
        `--scale ${o.scale} needs ${need} images of class y = ${y} (Fashion-MNIST classes ${classes.join(', ')}), but there are ${pools[y].length}; ` +
          `the largest scale is ${Math.floor((pools[y].length / per) * 100) / 100}`,
      );
    }
  }
  const planned: Planned[] = [];
  const next = [0, 0];
  for (const split of SPLITS) {
    for (let g = 0; g < 4; g++) {
      const y = (g >> 1) as 0 | 1;
      for (let k = 0; k < counts[split][g]; k++) {
        const src = pools[y][next[y]++];
        const name = FASHION_MNIST_CLASSES[src.cls].replace(/[^A-Za-z]+/g, '_');
        planned.push({ ...src, y, a: (g & 1) as 0 | 1, split, relPath: `${folderName(src.cls)}/${name}_${src.source}_${String(src.index).padStart(5, '0')}.jpg` });
      }
    }
  }
  // Waterbirds' metadata is sorted by image id, which follows the class folders
  planned.sort((p, q) => (p.relPath < q.relPath ? -1 : p.relPath > q.relPath ? 1 : 0));

  prepareOut(o.out, o.force);
  for (const c of [...o.classes0, ...o.classes1]) mkdirSync(join(o.out, folderName(c)), { recursive: true });

  const W = o.width;
  const H = o.height;
  const side = Math.max(8, Math.round(o.itemSize * Math.min(W, H)));
  let done = 0;
  const render = async (p: Planned): Promise<void> => {
    const rng = new Rng(o.seed, p.source === 'train' ? 1 : 2, p.index);
    const bg = background(p.a, W, H, rng);
    const set = sets[p.source === 'train' ? 0 : 1];
    const item = await sharp(Buffer.from(set.images.subarray(p.index * 784, (p.index + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } })
      .resize(side, side, { kernel: 'linear', fit: 'fill' })
      .extractChannel(0)
      .raw()
      .toBuffer();
    if (item.length !== side * side) throw new SpurmemError(`Fashion-MNIST image ${p.source}:${p.index}: resize gave ${item.length} bytes, expected ${side * side}`);
    const x0 = rng.int(0, W - side + 1);
    const y0 = rng.int(0, H - side + 1);
    const tint = rng.uniform(-12, 12);
    const colour = [232 + tint, 230 + tint, 224 + tint];
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const alpha = (item[y * side + x] / 255) * o.itemOpacity;
        if (alpha === 0) continue;
        const i = ((y0 + y) * W + x0 + x) * 3;
        for (let c = 0; c < 3; c++) bg[i + c] = bg[i + c] * (1 - alpha) + colour[c] * alpha;
      }
    }
    const px = Buffer.alloc(W * H * 3);
    for (let i = 0; i < px.length; i++) px[i] = clamp8(bg[i]);
    await sharp(px, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: o.quality }).toFile(join(o.out, p.relPath));
    done += 1;
    opts.onProgress?.(done, planned.length);
  };
  let cursor = 0;
  const worker = async () => {
    while (cursor < planned.length) await render(planned[cursor++]);
  };
  await Promise.all(Array.from({ length: 8 }, worker));

  const n0 = classLabel(o.classes0, DEMO_CLASSES0, 'top');
  const n1 = classLabel(o.classes1, DEMO_CLASSES1, 'shoe');
  const groupNames = [`${n0} on land`, `${n0} on water`, `${n1} on land`, `${n1} on water`];
  writeJsonAtomic(join(o.out, 'dataset.json'), {
    name: 'fashion-waterbirds',
    description: 'Fashion-MNIST items on land or water backgrounds, in the Waterbirds layout (group = 2·y + place)',
    groupNames,
    classes: {
      y0: o.classes0.map((c) => FASHION_MNIST_CLASSES[c]),
      y1: o.classes1.map((c) => FASHION_MNIST_CLASSES[c]),
    },
    places: ['land', 'water'],
    counts,
    settings: { scale: o.scale, width: W, height: H, seed: o.seed, itemSize: o.itemSize, itemOpacity: o.itemOpacity, quality: o.quality },
    source: 'Fashion-MNIST (Xiao, Rasul and Vollgraf 2017), MIT licence',
  });
  const lines = ['img_id,img_filename,y,split,place,place_filename'];
  planned.forEach((p, i) => {
    lines.push(`${i + 1},${p.relPath},${p.y},${SPLITS.indexOf(p.split)},${p.a},/${p.a ? 'w/water' : 'l/land'}/${p.source}_${String(p.index).padStart(5, '0')}`);
  });
  writeFileAtomic(join(o.out, 'metadata.csv'), lines.join('\n') + '\n');
  return { root: o.out, counts, images: planned.length, groupNames };
}
