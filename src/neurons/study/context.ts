/**
 * A loaded study base: model, data, image cache and checkpoints, reused by every setting of a sweep;
 * the unmodified evaluation of a split (computed once) and the rewind sources (read once).
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { sharedImageCache, type ImageCache, loadBatches, openDataset, type Dataset, type ResizeMethod } from '../../data/index.js';
import type { Sample, Split } from '../../data/types.js';
import { evaluateSplit, type EvaluateOptions } from '../../eval/evaluate-split.js';
import type { GroupMetrics, LabelOrder } from '../../metrics/groups.js';
import { intervalOptions } from '../../metrics/intervals.js';
import { readCheckpoint, stateDictPath } from '../../checkpoint.js';
import { createModel, loadWeights, setThreads, type Model } from '../../model/index.js';
import { resolveBase, runEpochs } from '../../base.js';
import { addon, type NativeCheckpoint } from '../../native.js';
import { SpurmemError, UsageError, optionsError } from '../../util/errors.js';
import type { StudyResult } from './result.js';
import { studyBaseSchema, type StudyBaseInput } from './settings.js';

/** A loaded base: model, data, cache and checkpoints, reused by every setting of a sweep. */
export interface StudyContext {
  base: z.output<typeof studyBaseSchema>;
  model: Model;
  ds: Dataset;
  cache: ImageCache;
  checkpointPath: string;
  checkpoint: NativeCheckpoint;
  labelOrder: LabelOrder;
  resolution: number;
  resize: ResizeMethod;
  arch: string;
  /** Run folder (with --run): rewind checkpoints are found there. */
  runDir: string | null;
  epoch: number | null;
  defaultOut: string;
  unmodified: Map<Split, { outputs: Float32Array; metrics: GroupMetrics }>;
  rewindCache: Map<string, NativeCheckpoint>;
  /**
   * `activated`'s gradient norms of the base model on a source group's poorest samples, by split, loss and
   * samples: every setting of a sweep that ranks from the same samples (another top-k or mode) reads them
   * here instead of running the same backward pass again (the weights are the base's for every setting).
   */
  gradientCache: Map<string, { scaleLog2: number; norms: Record<string, Float32Array> }>;
  /** Dataset warnings and settings that contradict what the run or checkpoint records. */
  warnings: string[];
  /** What was assumed about the checkpoint (see ResolvedBase.notes). */
  notes: string[];
}

/**
 * Loads the model, the dataset and the checkpoint of a study base.
 * @throws UsageError for missing or conflicting options; SpurmemError for unreadable files.
 */
export async function prepareStudy(input: StudyBaseInput): Promise<StudyContext> {
  const parsed = studyBaseSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const base = parsed.data;
  setThreads(base.threads, { decodeThreads: base.decodeThreads });
  addon().checkDevice(base.device);
  const r = await resolveBase(base);
  const checkpoint = r.checkpoint;
  const model = createModel({ arch: r.arch, head: r.head, device: base.device, imageSize: r.resolution, lnEps: r.lnEps });
  await loadWeights(model, checkpoint, { strict: true, path: stateDictPath(checkpoint), archReason: r.archReason });
  const ds = await openDataset({ dataset: r.dataset, root: r.root, target: r.target, attribute: r.attribute, skipBadImages: base.skipBadImages });
  const stem = basename(r.checkpointPath).replace(/\.pth(\.tar)?$/, '');
  return {
    base,
    model,
    ds,
    cache: sharedImageCache(base.cacheMb * 1024 * 1024),
    checkpointPath: r.checkpointPath,
    checkpoint,
    labelOrder: r.labelOrder,
    resolution: r.resolution,
    resize: r.resize,
    arch: r.arch,
    runDir: r.runDir,
    epoch: r.epoch,
    defaultOut: r.runDir ? join(r.runDir, 'studies') : join('experiments', 'studies', stem),
    unmodified: new Map(),
    rewindCache: new Map(),
    gradientCache: new Map(),
    warnings: [...r.warnings, ...ds.warnings],
    notes: [...r.notes],
  };
}

/** The base's evaluation options: transform, batch size, cache, label order, intervals. */
export function evaluateOptions(ctx: StudyContext): EvaluateOptions {
  return {
    resolution: ctx.resolution,
    resize: ctx.resize,
    batchSize: ctx.base.batchSize,
    cache: ctx.cache,
    labelOrder: ctx.labelOrder,
    skipBadImages: ctx.base.skipBadImages,
    intervals: intervalOptions(ctx.base),
  };
}

/** One evaluation of a split with the base's transform, batch size, cache and label order. */
export function evaluateOn(ctx: StudyContext, split: Split) {
  return evaluateSplit(ctx.model, ctx.ds, split, evaluateOptions(ctx));
}

/** Adds an evaluation's wall seconds to a setting's timing. */
export function addTiming(timing: StudyResult['timing'], ev: { dataSeconds: number; computeSeconds: number }): void {
  timing.data_seconds += ev.dataSeconds;
  timing.compute_seconds += ev.computeSeconds;
  timing.evaluations += 1;
}

/** The unmodified model's outputs and metrics on a split (evaluated once per base). */
export async function unmodifiedOf(ctx: StudyContext, split: Split, timing: StudyResult['timing']) {
  let u = ctx.unmodified.get(split);
  if (!u) {
    const r = await evaluateOn(ctx, split);
    u = { outputs: r.outputs, metrics: r.metrics };
    ctx.unmodified.set(split, u);
    addTiming(timing, r);
  }
  return u;
}

/**
 * The checkpoint a rewind mode copies from: the rewind checkpoint given, else the run folder's
 * checkpoint `rewindEpochs` before the studied epoch (read once per base).
 * @throws UsageError without a source or before epoch 0; SpurmemError for a missing checkpoint
 */
export async function rewindSource(
  ctx: StudyContext,
  s: { mode: string; rewindEpochs: number },
  input: { rewindCheckpoint?: string },
): Promise<{ ck: NativeCheckpoint; path: string }> {
  let path: string;
  if (input.rewindCheckpoint ?? ctx.base.rewindCheckpoint) {
    path = resolve((input.rewindCheckpoint ?? ctx.base.rewindCheckpoint)!);
  } else if (ctx.runDir !== null && ctx.epoch !== null) {
    const e = ctx.epoch - s.rewindEpochs;
    if (e < 0) throw new UsageError(`--rewind-epochs ${s.rewindEpochs} reaches before epoch 0 (the study uses epoch ${ctx.epoch})`);
    path = join(ctx.runDir, `epoch_${e}_checkpoints.pth.tar`);
    if (!existsSync(path)) {
      throw new SpurmemError(
        `${path}: missing (rewind ${s.rewindEpochs} epochs from epoch ${ctx.epoch}); the run folder has checkpoints of epochs ${runEpochs(ctx.runDir).join(', ')}` +
          ' (a run trained with --keep-checkpoints keeps only its newest ones)',
      );
    }
  } else {
    throw new UsageError(`--mode ${s.mode} needs --rewind-checkpoint FILE (or --run DIR with --rewind-epochs N)`);
  }
  let ck = ctx.rewindCache.get(path);
  if (!ck) {
    ck = await readCheckpoint(path);
    ctx.rewindCache.set(path, ck);
  }
  return { ck, path };
}

/** Decoded eval-transform batch of chosen split positions (for the gradient of `activated`). */
export async function batchOf(ctx: StudyContext, samples: Sample[]) {
  for await (const b of loadBatches(samples, { resolution: ctx.resolution, resize: ctx.resize, batchSize: samples.length, cache: ctx.cache, skipBadImages: ctx.base.skipBadImages })) {
    return b;
  }
  throw new SpurmemError('no images for the gradient batch');
}
