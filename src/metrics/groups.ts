/**
 * Group metrics from one inference pass: per-group accuracy with counts, worst-group accuracy, the average
 * accuracy weighted by the training split's group counts (the Waterbirds convention the original uses for
 * every split, reference §7.2), the plain mean of the group accuracies (SubpopBench's "adjusted") and the
 * overall accuracy (correct / samples, SubpopBench's "avg"); with intervals asked for, a confidence
 * interval on each (src/metrics/intervals.ts).
 */
import { SpurmemError } from '../util/errors.js';
import type { Sample, Split } from '../data/types.js';
import { AGGREGATES, bootstrapIntervals, ciKey, proportionInterval, type Aggregate, type CiMethod, type Interval, type IntervalOptions } from './intervals.js';

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

/**
 * One group's result; `accuracy` is null when the split has no samples of the group. With intervals asked
 * for (method other than none), `ci95` (the key says the level: `ci90` at 0.9) holds the interval of
 * `correct` of `count`, null without samples.
 */
export interface GroupResult {
  id: number;
  name: string;
  count: number;
  correct: number;
  accuracy: number | null;
  [ci: `ci${string}`]: Interval | null | undefined;
}

/** How the intervals of a metrics object were made (present when intervals were asked for). */
export interface IntervalsUsed {
  /** The per-group interval. */
  method: CiMethod;
  /** Confidence level of every interval. */
  level: number;
  /** Bootstrap draws of the aggregates' intervals (0: none). */
  bootstrap: number;
}

/** Metrics of one split; every accuracy is a fraction in [0, 1], null when undefined. */
export interface GroupMetrics {
  split: Split;
  groups: GroupResult[];
  /** min over the groups that have samples. */
  worst_group_accuracy: number | null;
  /** Σ_g n_train[g]·acc[g] / Σ_g n_train[g] over the groups that have samples in this split. */
  average_accuracy: number | null;
  /** Plain mean of the accuracies of the groups that have samples (SubpopBench's "adjusted" accuracy). */
  mean_accuracy: number | null;
  /** Correct / samples of the split (SubpopBench's "avg" accuracy). */
  overall_accuracy?: number | null;
  /** The intervals' method, level and bootstrap draws (present when intervals were asked for). */
  ci?: IntervalsUsed;
  /** `<aggregate>_ci95` (the key says the level): the bootstrap interval of each aggregate, null where it is undefined. */
  [aggregateCi: `${Aggregate}_ci${string}`]: Interval | null | undefined;
  /** Images left out with --skip-bad-images. */
  skipped?: number;
  /** The first images left out: `file (metadata line N): reason` (at most 20). */
  skipped_files?: string[];
}

/**
 * Computes group metrics. `outputs` holds one row of `numClasses` values per sample, in the order of
 * `samples`; a sample is correct when argmax(output) equals `targetIndex(y, labelOrder)` (the original's
 * argmax(pred) == argmax(target), §7.1). Groups are 0..groupNames.length-1. With `intervals`, each group
 * gets its interval and each aggregate its bootstrap interval ({@link withIntervals}).
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
  intervals?: IntervalOptions;
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
  let m: GroupMetrics;
  if (present.length === 0) {
    m = { split: o.split, groups, worst_group_accuracy: null, average_accuracy: null, mean_accuracy: null, overall_accuracy: null };
  } else {
    const accs = present.map((g) => g.accuracy as number);
    const wsum = present.reduce((a, g) => a + o.trainGroupCounts[g.id], 0);
    const n = present.reduce((a, g) => a + g.count, 0);
    m = {
      split: o.split,
      groups,
      worst_group_accuracy: Math.min(...accs),
      average_accuracy: wsum > 0 ? present.reduce((a, g) => a + o.trainGroupCounts[g.id] * (g.accuracy as number), 0) / wsum : null,
      mean_accuracy: accs.reduce((a, b) => a + b, 0) / accs.length,
      overall_accuracy: present.reduce((a, g) => a + g.correct, 0) / n,
    };
  }
  return o.intervals ? withIntervals(m, o.trainGroupCounts, o.intervals) : m;
}

/**
 * Group metrics with their intervals added (a new object; the metrics' own fields are kept): per group
 * `ci95` from {@link proportionInterval} (none with method `none`), per aggregate `<name>_ci95` from the
 * seeded group-stratified bootstrap (none with bootstrap 0), `overall_accuracy` where missing, and `ci`
 * saying how. Defaults: Wilson, level 0.95, 2000 draws, seed 0.
 * @throws SpurmemError for a level outside (0, 1), draws that are not an integer >= 0, or training counts
 *   that do not match the groups
 */
export function withIntervals(m: GroupMetrics, trainGroupCounts: readonly number[], o: IntervalOptions = {}): GroupMetrics {
  const method = o.method ?? 'wilson';
  const level = o.level ?? 0.95;
  const draws = o.bootstrap ?? 2000;
  if (!Number.isInteger(draws) || draws < 0) throw new SpurmemError(`bootstrap: draws must be an integer >= 0, got ${draws}`);
  if (trainGroupCounts.length !== m.groups.length) throw new SpurmemError(`withIntervals: ${trainGroupCounts.length} training group counts for ${m.groups.length} groups`);
  const key = ciKey(level);
  const groups = method === 'none' ? m.groups : m.groups.map((g) => ({ ...g, [key]: proportionInterval(g.correct, g.count, method, level) }));
  const n = m.groups.reduce((a, g) => a + g.count, 0);
  const { skipped, skipped_files, ...rest } = m;
  const out: GroupMetrics = { ...rest, groups, overall_accuracy: m.overall_accuracy ?? (n > 0 ? m.groups.reduce((a, g) => a + g.correct, 0) / n : null) };
  if (draws > 0) {
    const counts = { count: m.groups.map((g) => g.count), correct: m.groups.map((g) => g.correct), trainCount: trainGroupCounts };
    const iv = bootstrapIntervals(counts, { draws, level, seed: o.seed });
    for (const name of AGGREGATES) out[`${name}_${key}`] = iv[name];
  }
  out.ci = { method, level, bootstrap: draws };
  if (skipped !== undefined) out.skipped = skipped;
  if (skipped_files !== undefined) out.skipped_files = skipped_files;
  return out;
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
