/**
 * Evaluation of a model on one split: one inference pass (eval mode, eval transform, metadata order) and
 * the group metrics of src/metrics/groups.ts. Decoding overlaps the forward passes (loader prefetch), and
 * a shared ImageCache makes every pass after the first decode nothing.
 */
import type { Model } from '../model/index.js';
import { SpurmemError, messageOf } from '../util/errors.js';
import { loadBatches, type ImageCache } from '../data/loader.js';
import type { ResizeMethod } from '../data/images.js';
import type { Dataset, Split } from '../data/types.js';
import { groupMetrics, type GroupMetrics, type LabelOrder } from '../metrics/groups.js';
import type { IntervalOptions } from '../metrics/intervals.js';

/** Options of {@link evaluateSplit}. */
export interface EvaluateOptions {
  /** Crop side R (224 in the original). */
  resolution: number;
  /** How images are resized: pil (default, torchvision + PIL's exact bytes) or sharp (libvips, faster, about 0.2/255 off). */
  resize?: ResizeMethod;
  batchSize: number;
  cache?: ImageCache;
  /** Default 'original' (output 0 = class 1). */
  labelOrder?: LabelOrder;
  onProgress?: (done: number, total: number) => void;
  /** Leave out images that do not decode; the count is in `metrics.skipped`. */
  skipBadImages?: boolean;
  /** Batches decoded ahead of the model (default 2). */
  prefetch?: number;
  /** Images decoded at the same time (default: 2 per core, at least 4). */
  concurrency?: number;
  /** Confidence intervals to add to the metrics (per group and bootstrap for the aggregates); none when left out. */
  intervals?: IntervalOptions;
}

/**
 * The group metrics of a split's outputs over the samples that were evaluated (as evaluateSplit).
 * @param done 1 for each split position that has an output
 */
export function splitMetrics(ds: Dataset, split: Split, outputs: Float32Array, done: Uint8Array, numClasses: number, o: Pick<EvaluateOptions, 'labelOrder' | 'intervals'>): GroupMetrics {
  const samples = ds.samples[split];
  const kept = samples.filter((s) => done[s.index] === 1);
  const keptOutputs = kept.length === samples.length ? outputs : new Float32Array(kept.length * numClasses);
  if (keptOutputs !== outputs) kept.forEach((s, k) => keptOutputs.set(outputs.subarray(s.index * numClasses, (s.index + 1) * numClasses), k * numClasses));
  return groupMetrics({
    split,
    outputs: keptOutputs,
    numClasses,
    samples: kept,
    trainGroupCounts: ds.trainGroupCounts,
    groupNames: ds.groupNames,
    labelOrder: o.labelOrder ?? 'original',
    intervals: o.intervals,
  });
}

/**
 * Runs the model over `ds.samples[split]` and computes the group metrics.
 * @returns outputs: [n, numClasses] row-major, row i = sample i of the split (NaN rows for skipped
 *   images); metrics over the images that were evaluated; seconds: wall time of the pass, of which
 *   dataSeconds waiting for decoded batches (decoding overlaps the model) and computeSeconds in forward
 * @throws SpurmemError naming the image and metadata line of an image that does not decode (unless
 *   skipBadImages), or the model's error
 */
export async function evaluateSplit(
  model: Model,
  ds: Dataset,
  split: Split,
  o: EvaluateOptions,
): Promise<{ outputs: Float32Array; metrics: GroupMetrics; seconds: number; dataSeconds: number; computeSeconds: number }> {
  const t0 = performance.now();
  const samples = ds.samples[split];
  const numClasses = model.info().numClasses;
  const outputs = new Float32Array(samples.length * numClasses).fill(Number.NaN);
  const done = new Uint8Array(samples.length);
  let skipped = 0;
  const skippedFiles: string[] = [];
  let processed = 0;
  // wall time spent waiting for decoded batches, and in the model's forward passes
  let dataSeconds = 0;
  let computeSeconds = 0;
  let waitFrom = performance.now();
  for await (const batch of loadBatches(samples, {
    resolution: o.resolution,
    resize: o.resize,
    batchSize: o.batchSize,
    cache: o.cache,
    skipBadImages: o.skipBadImages,
    prefetch: o.prefetch,
    concurrency: o.concurrency,
    onSkip: (s, reason) => {
      if (skipped < 20) skippedFiles.push(`${s.file} (metadata line ${s.line}): ${reason}`);
      skipped += 1;
    },
  })) {
    let out: Float32Array;
    const tf = performance.now();
    dataSeconds += (tf - waitFrom) / 1000;
    try {
      out = await model.forward({ images: batch.images, shape: batch.shape }, { train: false });
    } catch (e) {
      throw new SpurmemError(`evaluation on the ${split} split failed: ${messageOf(e)}`);
    }
    batch.samples.forEach((s, k) => {
      outputs.set(out.subarray(k * numClasses, (k + 1) * numClasses), s.index * numClasses);
      done[s.index] = 1;
    });
    processed += batch.samples.length;
    o.onProgress?.(processed + skipped, samples.length);
    waitFrom = performance.now();
    computeSeconds += (waitFrom - tf) / 1000;
  }
  const metrics = splitMetrics(ds, split, outputs, done, numClasses, o);
  if (o.skipBadImages) {
    metrics.skipped = skipped;
    if (skippedFiles.length) metrics.skipped_files = skippedFiles;
  }
  return { outputs, metrics, seconds: (performance.now() - t0) / 1000, dataSeconds, computeSeconds };
}
