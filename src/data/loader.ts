/**
 * Batches of decoded images for the native model: seeded shuffling, the original's transforms, the JPEGs of
 * a batch read, decoded and resized in one native call on the addon's threads (as many as the CPU budget
 * gives), other images decoded concurrently on libuv's thread pool (sharp) and resized as PIL in one native
 * call, and a prefetch queue of whole batches, so decoding overlaps the model's forward and backward passes. The deterministic eval transform is cached
 * (ImageCache), so a split evaluated again (a study evaluates 11+ times, ERM every epoch) decodes nothing.
 */
import { statSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import sharp from 'sharp';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import { Rng } from '../util/random.js';
import { cpuBudget } from '../util/cpu-budget.js';
import { readFile } from 'node:fs/promises';
import { headerInfo } from './image-header.js';
import {
  checkResizeMethod,
  decodeImage,
  evalPlan,
  evalTransform,
  nativeJpegDecoder,
  pilTransformImages,
  trainPlan,
  trainTransform,
  transformFiles,
  transformFilesPooled,
  backgroundDecoding,
  type DecodedImage,
  type FileTransform,
  type ResizeMethod,
  type TransformPlan,
} from './images.js';
import type { Sample } from './types.js';

// libuv's pool runs sharp's decodes and the model's AsyncWorkers; its size is read once, at the first
// queued task. Give it one thread per core (at least 4) unless the user chose.
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.max(4, availableParallelism() + 1));
// Images are small: run many of them side by side, one libvips thread each.
sharp.concurrency(1);
sharp.cache(false);

/**
 * A cache of eval-transform results (uint8 RGB, R·R·3 bytes) keyed by file, resolution and resize method.
 * It admits images until `maxBytes` is reached and then keeps what it has (no eviction), which suits
 * the access pattern of repeated passes over the same split: a split larger than the cache still gets
 * the same share of hits on every pass, where an LRU policy would get none. With `validate`, an entry
 * remembers its file's size and modification time and is dropped when the file has changed since (the
 * process-wide cache, {@link sharedImageCache}, lives as long as the process does).
 */
export class ImageCache {
  private readonly map = new Map<string, { px: Uint8Array; size: number; mtimeMs: number }>();
  private bytesUsed = 0;
  private limit: number;
  readonly validate: boolean;
  hits = 0;
  misses = 0;

  /**
   * @param maxBytes the most bytes of pixels to keep (default: a quarter of the machine's memory)
   * @param o validate: check each hit against the file's size and modification time (default false)
   * @throws UsageError when maxBytes is negative
   */
  constructor(maxBytes: number = Math.floor(totalmem() / 4), o: { validate?: boolean } = {}) {
    if (!(maxBytes >= 0)) throw new UsageError(`ImageCache: maxBytes must be >= 0, got ${maxBytes}`);
    this.limit = maxBytes;
    this.validate = o.validate ?? false;
  }

  /** The most bytes of pixels kept. */
  get maxBytes(): number {
    return this.limit;
  }

  /** Raises the limit to `maxBytes` when it is larger (never lowers it: what is cached stays). */
  grow(maxBytes: number): void {
    if (maxBytes > this.limit) this.limit = maxBytes;
  }

  static key(file: string, resolution: number, resize: ResizeMethod = 'pil'): string {
    return `${resolution}\u0000${resize}\u0000${file}`;
  }

  private stamp(file: string): { size: number; mtimeMs: number } {
    if (!this.validate) return { size: 0, mtimeMs: 0 };
    try {
      const st = statSync(file);
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch {
      return { size: -1, mtimeMs: -1 };
    }
  }

  get(file: string, resolution: number, resize: ResizeMethod = 'pil'): Uint8Array | undefined {
    const k = ImageCache.key(file, resolution, resize);
    let v = this.map.get(k);
    if (v && this.validate) {
      const st = this.stamp(file);
      if (st.size !== v.size || st.mtimeMs !== v.mtimeMs) {
        this.map.delete(k);
        this.bytesUsed -= v.px.byteLength;
        v = undefined;
      }
    }
    if (v) this.hits += 1;
    else this.misses += 1;
    return v?.px;
  }

  /** Stores a result if it fits; returns whether it was stored. */
  set(file: string, resolution: number, pixels: Uint8Array, resize: ResizeMethod = 'pil'): boolean {
    const k = ImageCache.key(file, resolution, resize);
    if (this.map.has(k)) return true;
    if (this.bytesUsed + pixels.byteLength > this.limit) return false;
    this.map.set(k, { px: pixels, ...this.stamp(file) });
    this.bytesUsed += pixels.byteLength;
    return true;
  }

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.bytesUsed;
  }

  clear(): void {
    this.map.clear();
    this.bytesUsed = 0;
    this.hits = 0;
    this.misses = 0;
  }
}

let shared: ImageCache | undefined;

/**
 * The process's cache of eval-transform results, shared by evaluate(), studies, sweeps and training, so a
 * split evaluated again in one process decodes nothing (keyed by file, resolution and resize method, and
 * checked against each file's size and modification time). Its limit is the largest asked for so far.
 * @param maxBytes the limit wanted (default: a quarter of the machine's memory); 0 asks for no caching
 * @returns the shared cache, or (maxBytes 0) a new cache that keeps nothing
 */
export function sharedImageCache(maxBytes: number = Math.floor(totalmem() / 4)): ImageCache {
  if (!(maxBytes > 0)) return new ImageCache(0);
  if (!shared) shared = new ImageCache(maxBytes, { validate: true });
  else shared.grow(maxBytes);
  return shared;
}

/** One batch: uint8 RGB images [n, R, R, 3] (NHWC) and their samples, in batch order. */
export interface ImageBatch {
  images: Uint8Array;
  shape: [number, number, number, 3];
  samples: Sample[];
}

/** Options of {@link loadBatches}. */
export interface LoadBatchesOptions {
  /** Output side R in pixels. */
  resolution: number;
  batchSize: number;
  /** Shuffle the order (seeded by seed and epoch). */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Train transform (RandomResizedCrop + flip, seeded by seed, epoch and the sample's position) instead of the eval transform. */
  augment?: boolean;
  /** `pil` (default): torchvision + PIL's bytes; `sharp`: libvips' faster approximation (see images.ts). */
  resize?: ResizeMethod;
  /** Cache of eval-transform results (ignored with augment). */
  cache?: ImageCache;
  /** Batches decoded ahead of the consumer (default 4 on the decoding pool, which decodes while the model runs; else 2). */
  prefetch?: number;
  /** Images decoded at the same time (default: 2 per core, at least 4). */
  concurrency?: number;
  /** Leave out images that cannot be read or decoded (reported through onSkip) instead of failing. */
  skipBadImages?: boolean;
  onSkip?: (s: Sample, reason: string) => void;
}

/** The sample order of one epoch: identity, or a Fisher-Yates shuffle seeded by (seed, epoch). */
export function epochOrder(n: number, o: { shuffle?: boolean; seed?: number; epoch?: number }): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (o.shuffle) new Rng(o.seed ?? 0, o.epoch ?? 0, 0x5eed).shuffle(order);
  return order;
}

/** A FIFO semaphore: earlier batches get their decode slots first. */
class Slots {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

function checkOptions(o: LoadBatchesOptions): void {
  const pos = (name: string, v: number | undefined, required: boolean) => {
    if (v === undefined && !required) return;
    if (!Number.isInteger(v) || (v as number) <= 0) throw new UsageError(`loadBatches: ${name} must be a positive integer, got ${v}`);
  };
  pos('resolution', o.resolution, true);
  pos('batchSize', o.batchSize, true);
  pos('prefetch', o.prefetch, false);
  pos('concurrency', o.concurrency, false);
}

/**
 * Yields batches of transformed images for `samples`, in epoch order (see {@link epochOrder}).
 * With `augment`, image i of the epoch order is transformed with an Rng seeded by (seed, epoch, its
 * position in `samples`), so the batches are the same for the same seed and epoch whatever order decodes finish in.
 * Batches hold `batchSize` images except the last (and batches that lost skipped images).
 * @throws SpurmemError naming the file and its metadata line when an image cannot be decoded (unless
 *   `skipBadImages`), UsageError for bad options
 */
export async function* loadBatches(samples: readonly Sample[], o: LoadBatchesOptions): AsyncGenerator<ImageBatch> {
  checkOptions(o);
  const R = o.resolution;
  const per = R * R * 3;
  const order = epochOrder(samples.length, o);
  const nBatches = Math.ceil(order.length / o.batchSize);
  const slots = new Slots(o.concurrency ?? Math.max(4, 2 * availableParallelism()));
  const seed = o.seed ?? 0;
  const epoch = o.epoch ?? 0;
  const resize = checkResizeMethod(o.resize, 'loadBatches: resize');
  const budget = cpuBudget();

  // pil: decode here (concurrently), resize the batch in one native call; sharp: the whole transform here
  const decodeOne = async (pos: number): Promise<Uint8Array | { image: DecodedImage; plan: TransformPlan } | string> => {
    const s = samples[pos];
    if (!o.augment && o.cache) {
      const hit = o.cache.get(s.file, R, resize);
      if (hit) return hit;
    }
    await slots.acquire();
    try {
      return await budget.decode(async () => {
        if (resize === 'pil') {
          const image = await decodeImage(s.file);
          const plan = o.augment ? trainPlan(image.width, image.height, R, new Rng(seed, epoch, pos, 0xa06)) : evalPlan(image.width, image.height, R);
          return { image, plan };
        }
        const px = o.augment ? await trainTransform(s.file, R, new Rng(seed, epoch, pos, 0xa06), { resize }) : await evalTransform(s.file, R, { resize });
        if (!o.augment && o.cache) o.cache.set(s.file, R, px, resize);
        return px;
      });
    } catch (e) {
      return failed(s, e);
    } finally {
      slots.release();
    }
  };

  const failed = (s: Sample, e: unknown): string => {
    if (o.skipBadImages) return messageOf(e);
    throw new SpurmemError(`${messageOf(e)} (metadata line ${s.line}, ${s.split} split; use --skip-bad-images to skip such images)`);
  };

  // pil: JPEGs go through the addon's decoder, a batch per call (the rest, and what it leaves, as above)
  const native = resize === 'pil' && nativeJpegDecoder();
  // where the OS allows, on the decoding pool: it decodes while the model runs (src/util/cpu-budget.ts)
  const pooled = native && backgroundDecoding();
  const prefetch = o.prefetch ?? (pooled ? 4 : 2);
  type Result = Uint8Array | { image: DecodedImage; plan: TransformPlan } | string;
  const nativeBatch = async (idx: number[]): Promise<(Result | undefined)[]> => {
    const results: (Result | undefined)[] = idx.map(() => undefined);
    const jobs: FileTransform[] = [];
    const at: number[] = [];
    // the train transform's box is drawn from the size in the file's header: read the files first
    const read = o.augment ? await Promise.all(idx.map((i) => readFile(samples[i].file).catch(() => undefined))) : [];
    for (let k = 0; k < idx.length; k++) {
      const s = samples[idx[k]];
      if (!o.augment) {
        const hit = o.cache?.get(s.file, R, resize);
        if (hit) results[k] = hit;
        else {
          jobs.push({ file: s.file, resolution: R });
          at.push(k);
        }
        continue;
      }
      const bytes = read[k];
      if (!bytes) continue; // decodeOne says why
      const h = headerInfo(bytes);
      if (h?.format !== 'jpeg') continue;
      jobs.push({ file: s.file, bytes, plan: trainPlan(h.width, h.height, R, new Rng(seed, epoch, idx[k], 0xa06)) });
      at.push(k);
    }
    if (jobs.length === 0) return results;
    const out = pooled
      ? (await budget.decodePooled(jobs.length, (threads) => transformFilesPooled(jobs, threads))).results
      : await budget.decodeWide(jobs.length, (threads) => transformFiles(jobs, threads));
    out.forEach((r, n) => {
      const k = at[n];
      const s = samples[idx[k]];
      if (r instanceof Uint8Array) {
        // a cached image gets its own copy (not a view keeping the whole batch's buffer)
        if (!o.augment && o.cache) o.cache.set(s.file, R, r.slice(), resize);
        results[k] = r;
      } else if (r) results[k] = failed(s, r);
    });
    return results;
  };

  const makeBatch = async (b: number): Promise<ImageBatch> => {
    const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
    const first = native ? await nativeBatch(idx) : idx.map(() => undefined);
    const results = await Promise.all(idx.map((i, k) => first[k] ?? decodeOne(i)));
    // one native call resizes every decoded image of the batch
    const todo: number[] = [];
    results.forEach((r, k) => {
      if (typeof r === 'object' && !(r instanceof Uint8Array)) todo.push(k);
    });
    if (todo.length > 0) {
      const items = todo.map((k) => results[k] as { image: DecodedImage; plan: TransformPlan });
      // the plans fit their images by construction: a failure here is not a bad image, so it always stops
      const px = await budget.compute(budget.appliedThreads, () => pilTransformImages(items));
      todo.forEach((k, n) => {
        const s = samples[idx[k]];
        const one = px.slice(n * per, (n + 1) * per);
        if (!o.augment && o.cache) o.cache.set(s.file, R, one, resize);
        results[k] = one;
      });
    }
    const kept: Sample[] = [];
    const images = new Uint8Array(results.filter((r) => r instanceof Uint8Array).length * per);
    results.forEach((r, k) => {
      const s = samples[idx[k]];
      if (typeof r === 'string') {
        o.onSkip?.(s, r);
        return;
      }
      images.set(r as Uint8Array, kept.length * per);
      kept.push(s);
    });
    return { images, shape: [kept.length, R, R, 3], samples: kept };
  };

  const queue: Promise<ImageBatch>[] = [];
  let started = 0;
  const fill = () => {
    while (started < nBatches && queue.length < prefetch + 1) {
      const p = makeBatch(started++);
      p.catch(() => undefined); // consumed below; avoids an unhandled rejection for batches never awaited
      queue.push(p);
    }
  };
  fill();
  while (queue.length > 0) {
    const batch = await queue.shift()!;
    fill();
    if (batch.samples.length > 0) yield batch;
  }
}
