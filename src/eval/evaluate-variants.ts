/**
 * Evaluation of many variants of one model on one split in a single pass over its batches, each variant
 * a weight edit that touches the network from some stage on (Model.forward's stages: stem, residual
 * blocks, head). Per batch the unchanged prefix runs once, keeping the input of every stage a variant
 * starts at; then each variant in turn puts its edit in place, runs only the suffix from its stage, and
 * takes the edit out. A variant whose weights equal another's up to some stage (Variant.shares: e.g. the
 * top-3 channels of a ranking after the top-2 with the same seed, the third one deeper in the network)
 * runs only from that stage, on the input the other variant computed; two variants that are the same
 * edit take one pass. The outputs are those of a full forward pass of the edited model: the prefix sees
 * the same weights either way, and the suffix runs the same kernels on the same input.
 */
import type { Model } from '../model/index.js';
import { SpurmemError, messageOf } from '../util/errors.js';
import { loadBatches, type ImageCache } from '../data/loader.js';
import type { ResizeMethod } from '../data/images.js';
import type { Dataset, Sample, Split } from '../data/types.js';
import { groupMetrics, type GroupMetrics, type LabelOrder } from '../metrics/groups.js';
import type { IntervalOptions } from '../metrics/intervals.js';

/** Options of {@link evaluateVariants} and evaluateSplit. */
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
 * The group metrics of a split's outputs over the samples that were evaluated (evaluateVariants, evaluateSplit).
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


/** One variant: the first stage its edit touches, and how to put the edit in place and take it out. */
export interface Variant {
  /** The first stage (Model.stageOf) whose weights the edit changes; 0 runs the whole network. */
  start: number;
  /** Puts the edit in place (a synchronous restore of saved weights: no random values are drawn here). */
  enter: () => void;
  /** Takes the edit out again (the model as before enter). */
  leave: () => void;
  /**
   * The weights of this variant equal those of variant `variant` (an index into the same list, itself
   * without `shares`) on every stage before `from`, so the input of stage `from` is the same for both
   * (`from` = the number of stages: the two variants are the same edit). evaluateVariants may then run
   * this variant only from stage `from`, on the input that variant `variant` computed, or take its
   * outputs as they are.
   */
  shares?: { variant: number; from: number };
}

/** What {@link evaluateVariants} gives for each variant: as evaluateSplit's outputs and metrics. */
export interface VariantEvaluation {
  /** [n, numClasses] row-major, row i = sample i of the split (NaN rows for skipped images). */
  outputs: Float32Array;
  metrics: GroupMetrics;
}

/**
 * Evaluates every variant on `ds.samples[split]` in one pass over the batches, the variants innermost.
 * Variants with `shares` run first (the variant they share with from the batch, keeping the inputs they
 * start from, then each of them), then the unchanged prefix and the other variants.
 * Memory: one batch of activations per distinct start stage (the kept stage inputs), released at the end.
 * Batches are decoded once each (with a cache, not at all after the first pass over the split).
 * @returns per variant (in order) its outputs and metrics; seconds: wall time, of which dataSeconds
 *   waiting for decoded batches and computeSeconds in the model
 * @throws SpurmemError naming the image of a batch that does not decode (unless skipBadImages), or the
 *   model's error; every variant is left out of the model (leave) also then
 */
export async function evaluateVariants(
  model: Model,
  ds: Dataset,
  split: Split,
  variants: Variant[],
  o: EvaluateOptions,
): Promise<{ results: VariantEvaluation[]; seconds: number; dataSeconds: number; computeSeconds: number; skipped: number; skippedFiles: string[] }> {
  const t0 = performance.now();
  const samples: Sample[] = ds.samples[split];
  const numClasses = model.info().numClasses;
  const outputs = variants.map(() => new Float32Array(samples.length * numClasses).fill(Number.NaN));
  const done = new Uint8Array(samples.length);
  const groups = sharingGroups(variants, model.stages());
  const grouped = new Set([...groups].flatMap(([u, list]) => [u, ...list.map((f) => f.v)]));
  const plain = variants.map((_, v) => v).filter((v) => !grouped.has(v));
  // stage 0 reads the batch itself; later starts read the inputs kept by the prefix pass
  const starts = [...new Set(plain.map((v) => variants[v].start).filter((s) => s > 0))].sort((a, b) => a - b);
  const last = starts.length ? starts[starts.length - 1] : 0;
  const stages = model.stages();
  let skipped = 0;
  const skippedFiles: string[] = [];
  let processed = 0;
  let dataSeconds = 0;
  let computeSeconds = 0;
  let waitFrom = performance.now();
  try {
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
      const tf = performance.now();
      dataSeconds += (tf - waitFrom) / 1000;
      const input = { images: batch.images, shape: batch.shape };
      const put = (v: number, out: Float32Array) => batch.samples.forEach((s, k) => outputs[v].set(out.subarray(k * numClasses, (k + 1) * numClasses), s.index * numClasses));
      const run = async (x: Variant, b: typeof input | null, o: { from?: number; keep?: number[] }) => {
        x.enter();
        try {
          return await model.forward(b, o);
        } finally {
          x.leave();
        }
      };
      try {
        // variants that share a prefix with another: that one runs the whole network, keeping the input of
        // each stage where one of them departs from it; each of them runs from there
        for (const [u, list] of groups) {
          const keep = [...new Set(list.map((f) => f.from).filter((f) => f < stages))].sort((a, b) => a - b);
          const lead = await run(variants[u], input, keep.length ? { keep } : {});
          put(u, lead);
          for (const f of list) put(f.v, f.from < stages ? await run(variants[f.v], null, { from: f.from }) : lead);
        }
        // the unchanged prefix, once: up to the last start, keeping the input of every start
        if (last > 0) await model.forward(input, { to: last, keep: starts });
        for (const v of plain) {
          const x = variants[v];
          put(v, x.start > 0 ? await run(x, null, { from: x.start }) : await run(x, input, {}));
        }
      } catch (e) {
        throw new SpurmemError(`evaluation on the ${split} split failed: ${messageOf(e)}`);
      }
      for (const s of batch.samples) done[s.index] = 1;
      processed += batch.samples.length;
      o.onProgress?.(processed + skipped, samples.length);
      waitFrom = performance.now();
      computeSeconds += (waitFrom - tf) / 1000;
    }
  } finally {
    if (last > 0 || groups.size > 0) model.releaseActivations();
  }
  const results = outputs.map((out) => {
    const metrics = splitMetrics(ds, split, out, done, numClasses, o);
    if (o.skipBadImages) {
      metrics.skipped = skipped;
      if (skippedFiles.length) metrics.skipped_files = [...skippedFiles];
    }
    return { outputs: out, metrics };
  });
  return { results, seconds: (performance.now() - t0) / 1000, dataSeconds, computeSeconds, skipped, skippedFiles };
}

/**
 * The variants that run on another's kept input (Variant.shares), by the variant whose input they take:
 * a follower whose `from` lies after its own start (it saves stages [start, from)), and only for a
 * variant whose followers save more stages in all than its own extra stages [0, start) (it runs from the
 * batch, to keep its inputs). The rest run as plain variants.
 * @throws SpurmemError for a `shares` that names no variant, a variant that shares itself, or a stage
 *   outside [1, stages]
 */
function sharingGroups(variants: Variant[], stages: number): Map<number, { v: number; from: number }[]> {
  const groups = new Map<number, { v: number; from: number }[]>();
  variants.forEach((x, v) => {
    const sh = x.shares;
    if (!sh) return;
    const u = sh.variant;
    if (!Number.isInteger(u) || u < 0 || u >= variants.length || u === v || variants[u].shares) {
      throw new SpurmemError(`evaluateVariants: variant ${v} shares the input of variant ${u}, which is not another variant without shares`);
    }
    if (!Number.isInteger(sh.from) || sh.from < 1 || sh.from > stages) throw new SpurmemError(`evaluateVariants: variant ${v} shares up to stage ${sh.from}, outside [1, ${stages}]`);
    if (sh.from <= x.start) return;
    const list = groups.get(u) ?? [];
    list.push({ v, from: sh.from });
    groups.set(u, list);
  });
  for (const [u, list] of [...groups]) {
    const saved = list.reduce((a, f) => a + f.from - variants[f.v].start, 0);
    if (saved <= variants[u].start) groups.delete(u);
  }
  return groups;
}
