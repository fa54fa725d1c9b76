/**
 * Evaluation inside a training run: every split with the eval transform after each epoch (and once
 * before the first, as epoch -1), and the short form of its metrics in the log lines.
 */
import type { Dataset, ImageCache, ResizeMethod } from '../data/index.js';
import type { Split } from '../data/types.js';
import { evaluateSplit } from '../eval/evaluate-split.js';
import type { GroupMetrics, LabelOrder } from '../metrics/groups.js';
import type { IntervalOptions } from '../metrics/intervals.js';
import type { Model } from '../model/index.js';
import { progress } from '../util/progress.js';
import type { RunDir } from './run-dir.js';

/**
 * How a run evaluates: image side (px), resize, batch size, the decoded-image cache, label order, the
 * bad-image policy and the intervals metrics.jsonl gets (--ci, --ci-level, --bootstrap). The training
 * batches use the same resolution, resize, cache and policy.
 */
export interface EvalSettings {
  resolution: number;
  resize?: ResizeMethod;
  batchSize: number;
  cache: ImageCache;
  labelOrder: LabelOrder;
  skipBadImages?: boolean;
  intervals?: IntervalOptions;
}

/** Evaluates train, val and test with the eval transform, in order; `label` names the progress bars. */
export async function evaluateAll(model: Model, ds: Dataset, o: EvalSettings & { label?: string }): Promise<Record<Split, GroupMetrics> & { seconds: number }> {
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
      intervals: o.intervals,
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
