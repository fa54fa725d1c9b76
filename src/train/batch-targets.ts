/**
 * What a training step takes besides the images: the target class of each sample in the run's label
 * order, and the per-sample group weights of the original's reweighting.
 */
import type { Sample } from '../data/types.js';
import { targetIndex, type LabelOrder } from '../metrics/groups.js';

/** Target class indices of a batch's samples. */
export function batchTargets(samples: readonly Sample[], order: LabelOrder): Int32Array {
  return Int32Array.from(samples, (s) => targetIndex(s.y, order));
}

/** Per-sample weights N / |group| of the training split (the original's reweight=True). */
export function groupWeights(samples: readonly Sample[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s.group, (counts.get(s.group) ?? 0) + 1);
  const w = new Map<number, number>();
  for (const [g, c] of counts) w.set(g, samples.length / c);
  return w;
}
