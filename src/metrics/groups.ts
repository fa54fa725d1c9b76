/**
 * Group metrics from one inference pass: per-group accuracy with counts, worst-group accuracy, the average
 * accuracy weighted by the training split's group counts (the Waterbirds convention the original uses for
 * every split, reference §7.2) and the plain mean of the group accuracies.
 */
import { SpurmemError } from '../util/errors.js';
import type { Sample, Split } from '../data/types.js';

/**
 * Which output index stands for which class.
 * - `original`: the original code's target vector [y, 1-y]: output index 0 is class 1 (waterbird / blond).
 * - `natural`: output index = y.
 */
export type LabelOrder = 'original' | 'natural';
/** The label orders, as a list. */
export const LABEL_ORDERS: readonly LabelOrder[] = ['original', 'natural'];

/** The output index that is correct for class y: 1 - y (original) or y (natural). */
export function targetIndex(y: 0 | 1, order: LabelOrder): number {
  return order === 'original' ? 1 - y : y;
}

/**
 * Argmax per row of `outputs` ([n, numClasses] row-major); ties go to the lower index, as torch.argmax.
 * A row with NaN predicts -1 (never correct).
 */
export function predictions(outputs: Float32Array, numClasses: number): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new SpurmemError(`predictions: numClasses must be a positive integer, got ${numClasses}`);
  if (outputs.length % numClasses !== 0) {
    throw new SpurmemError(`predictions: ${outputs.length} outputs are not a multiple of ${numClasses} classes`);
  }
  const n = outputs.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bv = -Infinity;
    for (let c = 0; c < numClasses; c++) {
      const v = outputs[i * numClasses + c];
      if (Number.isNaN(v)) {
        best = -1;
        break;
      }
      if (best < 0 || v > bv) {
        best = c;
        bv = v;
      }
    }
    out[i] = best;
  }
  return out;
}

/** One group's result; `accuracy` is null when the split has no samples of the group. */
export interface GroupResult {
  id: number;
  name: string;
  count: number;
  correct: number;
  accuracy: number | null;
}

/** Metrics of one split; every accuracy is a fraction in [0, 1], null when undefined. */
export interface GroupMetrics {
  split: Split;
  groups: GroupResult[];
  /** min over the groups that have samples. */
  worst_group_accuracy: number | null;
  /** Σ_g n_train[g]·acc[g] / Σ_g n_train[g] over the groups that have samples in this split. */
  average_accuracy: number | null;
  /** Plain mean of the accuracies of the groups that have samples. */
  mean_accuracy: number | null;
  /** Images left out with --skip-bad-images. */
  skipped?: number;
  /** The first images left out: `file (metadata line N): reason` (at most 20). */
  skipped_files?: string[];
}

/**
 * Computes group metrics. `outputs` holds one row of `numClasses` values per sample, in the order of
 * `samples`; a sample is correct when argmax(output) equals `targetIndex(y, labelOrder)` (the original's
 * argmax(pred) == argmax(target), §7.1). Groups are 0..groupNames.length-1.
 * @throws SpurmemError when the sizes do not match
 */
export function groupMetrics(o: {
  split: Split;
  outputs: Float32Array;
  numClasses: number;
  samples: readonly Sample[];
  trainGroupCounts: number[];
  groupNames: string[];
  labelOrder: LabelOrder;
}): GroupMetrics {
  const nGroups = o.groupNames.length;
  if (o.outputs.length !== o.samples.length * o.numClasses) {
    throw new SpurmemError(`groupMetrics: ${o.outputs.length} outputs for ${o.samples.length} samples x ${o.numClasses} classes`);
  }
  if (o.trainGroupCounts.length !== nGroups) {
    throw new SpurmemError(`groupMetrics: ${o.trainGroupCounts.length} training group counts for ${nGroups} groups`);
  }
  const pred = predictions(o.outputs, o.numClasses);
  const count = new Array<number>(nGroups).fill(0);
  const correct = new Array<number>(nGroups).fill(0);
  o.samples.forEach((s, i) => {
    if (!(s.group >= 0 && s.group < nGroups)) throw new SpurmemError(`groupMetrics: sample ${s.file} has group ${s.group}, expected 0..${nGroups - 1}`);
    count[s.group] += 1;
    if (pred[i] === targetIndex(s.y, o.labelOrder)) correct[s.group] += 1;
  });
  const groups: GroupResult[] = o.groupNames.map((name, g) => ({
    id: g,
    name,
    count: count[g],
    correct: correct[g],
    accuracy: count[g] > 0 ? correct[g] / count[g] : null,
  }));
  const present = groups.filter((g) => g.accuracy !== null);
  if (present.length === 0) {
    return { split: o.split, groups, worst_group_accuracy: null, average_accuracy: null, mean_accuracy: null };
  }
  const accs = present.map((g) => g.accuracy as number);
  const wsum = present.reduce((a, g) => a + o.trainGroupCounts[g.id], 0);
  return {
    split: o.split,
    groups,
    worst_group_accuracy: Math.min(...accs),
    average_accuracy: wsum > 0 ? present.reduce((a, g) => a + o.trainGroupCounts[g.id] * (g.accuracy as number), 0) / wsum : null,
    mean_accuracy: accs.reduce((a, b) => a + b, 0) / accs.length,
  };
}

/**
 * The minority groups: within each class y (groups 2y and 2y+1), the group with fewer training samples,
 * none on a tie — the groups whose spurious attribute goes against the majority of their class
 * (Waterbirds: 1 landbird on water and 2 waterbird on land). The others are the majority groups.
 */
export function minorityGroups(trainCounts: readonly number[]): number[] {
  const out: number[] = [];
  for (let y = 0; 2 * y + 1 < trainCounts.length; y++) {
    const a = trainCounts[2 * y];
    const b = trainCounts[2 * y + 1];
    if (a < b) out.push(2 * y);
    else if (b < a) out.push(2 * y + 1);
  }
  return out;
}

/** Accuracy over the samples of a set of groups: Σ correct / Σ count (null without samples). */
export function pooledAccuracy(m: GroupMetrics, groups: readonly number[]): number | null {
  let n = 0;
  let c = 0;
  for (const g of m.groups) {
    if (!groups.includes(g.id)) continue;
    n += g.count;
    c += g.correct;
  }
  return n > 0 ? c / n : null;
}
