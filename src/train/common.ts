/**
 * Helpers shared by the training commands (train, finetune-prune) and the study.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import type { Dataset, ImageCache, ResizeMethod } from '../data/index.js';
import type { Sample, Split } from '../data/types.js';
import { evaluateSplit } from '../eval.js';
import { targetIndex, type GroupMetrics, type LabelOrder } from '../metrics/groups.js';
import { loadWeights, setThreads, type Model } from '../model/index.js';
import { readCheckpoint } from '../checkpoint.js';
import type { RunDir } from './run-dir.js';
import { addon, packageRoot } from '../native.js';
import { progress } from '../util/progress.js';
import type { SchedulerState } from './schedule.js';

/**
 * Options of a run folder shared by `train` and `finetune-prune` (zod shape): where it goes, how it
 * continues (`resume`, `force`), which checkpoints stay, and the data-side memory and error policy.
 */
export const runFolderFields = {
  out: z.string().optional(),
  resume: z.boolean().default(false),
  force: z.boolean().default(false),
  skipBadImages: z.boolean().default(false),
  cacheMb: z.number().int().min(0).default(4096),
  keepCheckpoints: z.number().int().positive().optional(),
  /** No counts table, no per-epoch lines: only warnings (each said once) and errors. */
  quiet: z.boolean().default(false),
};

/** Options of {@link runFolderFields} (and the device ones) that may differ when a run is resumed. */
export const RESUMABLE_FIELDS = ['out', 'epochs', 'device', 'threads', 'resume', 'force', 'cacheMb', 'evalBatchSize', 'skipBadImages', 'keepCheckpoints', 'resize', 'quiet'];

/** Versions recorded in every config.json. */
export function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const v = addon().versions();
  return { spurmem: pkg.version, libtorch: v.libtorch, node: process.versions.node, sharp: sharp.versions.sharp ?? '', vips: sharp.versions.vips };
}

/** Sets libtorch's CPU threads: `threads`, else every available core (see setThreads). Returns the count. */
export function applyThreads(threads?: number): number {
  return setThreads(threads);
}

/** Per-sample weights N / |group| of the training split (the original's reweight=True). */
export function groupWeights(samples: readonly Sample[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s.group, (counts.get(s.group) ?? 0) + 1);
  const w = new Map<number, number>();
  for (const [g, c] of counts) w.set(g, samples.length / c);
  return w;
}

/** Target class indices of a batch's samples. */
export function batchTargets(samples: readonly Sample[], order: LabelOrder): Int32Array {
  return Int32Array.from(samples, (s) => targetIndex(s.y, order));
}

/** Evaluates train, val and test with the eval transform, in order. */
export async function evaluateAll(
  model: Model,
  ds: Dataset,
  o: { resolution: number; resize?: ResizeMethod; batchSize: number; cache: ImageCache; labelOrder: LabelOrder; skipBadImages?: boolean; label?: string },
): Promise<Record<Split, GroupMetrics> & { seconds: number }> {
  const t0 = Date.now();
  const out = {} as Record<Split, GroupMetrics>;
  for (const split of ['train', 'val', 'test'] as const) {
    const bar = progress(`${o.label ?? 'eval'} ${split}`, ds.samples[split].length);
    let last = 0;
    const r = await evaluateSplit(model, ds, split, {
      resolution: o.resolution,
      resize: o.resize,
      batchSize: o.batchSize,
      cache: o.cache,
      labelOrder: o.labelOrder,
      skipBadImages: o.skipBadImages,
      onProgress: (done) => {
        bar.tick(done - last);
        last = done;
      },
    });
    bar.stop();
    out[split] = r.metrics;
  }
  return { ...out, seconds: (Date.now() - t0) / 1000 };
}

/** "wga 0.512 avg 0.873" for log lines. */
export function brief(m: GroupMetrics): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  return `wga ${f(m.worst_group_accuracy)} avg ${f(m.average_accuracy)}`;
}

/** The `spurmem` entry of a checkpoint: how to rebuild the model, and the scheduler for --resume. */
export function checkpointMeta(cfg: { arch: string; head: string; labelOrder: string; resolution: number; dataset: string; seed: number }, scheduler: SchedulerState, model: Model): Record<string, unknown> {
  const info = model.info();
  return {
    format: 'spurmem',
    arch: cfg.arch,
    head: cfg.head,
    label_order: cfg.labelOrder,
    resolution: cfg.resolution,
    dataset: cfg.dataset,
    seed: cfg.seed,
    ln_eps: { __float__: info.lnEps },
    scheduler: { ...scheduler, lr: { __float__: scheduler.lr }, ...(scheduler.best != null ? { best: { __float__: scheduler.best } } : {}) },
  };
}

/** Samples per group (4 groups). */
export function countGroups(samples: readonly Sample[]): number[] {
  const c = [0, 0, 0, 0];
  for (const s of samples) c[s.group] += 1;
  return c;
}

/** Callbacks of the long-running commands (train, finetune-prune). */
export interface RunHooks {
  /** One line of progress text (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Restores a run for --resume from the checkpoint of epoch `start - 1`: model weights (strictly),
 * optimizer state, and returns the scheduler state; metrics.jsonl is cut back to that epoch.
 * @throws SpurmemError when the checkpoint does not fit the model.
 */
export async function resumeRun(model: Model, run: RunDir, start: number, log: (l: string) => void): Promise<SchedulerState | undefined> {
  const ck = await readCheckpoint(run.checkpoint(start - 1));
  await loadWeights(model, ck, { strict: true, path: ['model_state_dict'] });
  model.loadOptimizerState({ checkpoint: ck, path: ['optimizer_state_dict'] });
  const state = (ck.toObject(['spurmem']) as { scheduler?: SchedulerState }).scheduler;
  run.truncate(start - 1);
  log(`resuming ${run.dir} after epoch ${start - 1}`);
  return state;
}

/** Evaluates the model before training and records it as epoch -1 of metrics.jsonl. */
export async function recordInitial(
  model: Model,
  ds: Dataset,
  run: RunDir,
  o: Parameters<typeof evaluateAll>[2],
  log: (l: string) => void,
): Promise<void> {
  const m = await evaluateAll(model, ds, o);
  run.append({ epoch: -1, loss: null, lr: null, seconds: 0, eval_seconds: m.seconds, train: m.train, val: m.val, test: m.test });
  log(`${o.label ?? 'initial'} model: train ${brief(m.train)} | val ${brief(m.val)} | test ${brief(m.test)}`);
}
