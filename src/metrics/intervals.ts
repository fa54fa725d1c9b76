/**
 * Confidence intervals of accuracies. Per group, an interval for k correct of n samples: the Wilson
 * score interval (the default) or the Clopper-Pearson ("exact", beta) interval, as statsmodels'
 * `proportion_confint(k, n, alpha, method='wilson' | 'beta')` computes them. For the aggregates
 * (worst-group, average, mean-of-groups and overall accuracy), a seeded, group-stratified bootstrap:
 * the samples of every group are drawn again with replacement, each group keeping its size, and the
 * interval is the percentile interval of the aggregate over the draws.
 *
 * The key of an interval says its level: `ci95` at 0.95, `ci90` at 0.9, `ci99.9` at 0.999 (the level in
 * percent, as few digits as it needs); aggregates get `<name>_ci95`.
 */
import { SpurmemError } from '../util/errors.js';
import { addon } from '../native.js';
import { betaQuantile, normalQuantile } from './distributions.js';
import { Rng } from '../util/random.js';

/** An interval [lower, upper] of a fraction in [0, 1]. */
export type Interval = [number, number];

/** The per-group interval methods (`none`: no per-group interval). */
export const CI_METHODS = ['wilson', 'clopper-pearson', 'none'] as const;
/** One of {@link CI_METHODS}. */
export type CiMethod = (typeof CI_METHODS)[number];

/** The aggregates that get a bootstrap interval, named as the metrics name them. */
export const AGGREGATES = ['worst_group_accuracy', 'average_accuracy', 'mean_accuracy', 'overall_accuracy'] as const;
/** One of {@link AGGREGATES}. */
export type Aggregate = (typeof AGGREGATES)[number];

/** What intervals to give: the per-group method, the level, the bootstrap draws (0: none) and the bootstrap's seed. */
export interface IntervalOptions {
  /** Default 'wilson'. */
  method?: CiMethod;
  /** Confidence level in (0, 1); default 0.95. */
  level?: number;
  /** Bootstrap draws for the aggregates; 0 turns the bootstrap off; default 2000. */
  bootstrap?: number;
  /** Seed of the bootstrap's generator (default 0): the same counts and seed give the same interval. */
  seed?: number;
}

/** The intervals the options --ci, --ci-level and --bootstrap ask for (the option table's keys). */
export function intervalOptions(o: { ci: CiMethod; ciLevel: number; bootstrap: number }): IntervalOptions {
  return { method: o.ci, level: o.ciLevel, bootstrap: o.bootstrap };
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new SpurmemError(`confidence level must be in (0, 1), got ${level}`);
}

function checkCounts(k: number, n: number): void {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(k) || k < 0 || k > n) throw new SpurmemError(`interval: expected integers 0 <= k <= n, got k = ${k}, n = ${n}`);
}

/**
 * The key of an interval at `level`: `ci95` (0.95), `ci90` (0.9), `ci97.5` (0.975).
 * @throws SpurmemError for a level outside (0, 1)
 */
export function ciKey(level: number): `ci${string}` {
  checkLevel(level);
  return `ci${String(Number((level * 100).toFixed(10)))}`;
}

const clip01 = (x: number) => Math.min(1, Math.max(0, x));

/**
 * Wilson score interval of k successes in n trials at `level` (statsmodels' proportion_confint
 * method='wilson', clipped to [0, 1]); null for n = 0.
 * @throws SpurmemError for counts that are not integers 0 <= k <= n or a level outside (0, 1)
 */
export function wilsonInterval(k: number, n: number, level = 0.95): Interval | null {
  checkCounts(k, n);
  checkLevel(level);
  if (n === 0) return null;
  const crit = normalQuantile(1 - (1 - level) / 2, 0, 1);
  const crit2 = crit * crit;
  const q = k / n;
  const denom = 1 + crit2 / n;
  const center = (q + crit2 / (2 * n)) / denom;
  const dist = (crit * Math.sqrt((q * (1 - q)) / n + crit2 / (4 * n * n))) / denom;
  return [clip01(center - dist), clip01(center + dist)];
}

/**
 * Clopper-Pearson interval of k successes in n trials at `level`: the beta quantiles
 * Beta(α/2; k, n-k+1) and Beta(1-α/2; k+1, n-k), 0 for k = 0 and 1 for k = n (statsmodels'
 * proportion_confint method='beta'); null for n = 0.
 * @throws SpurmemError for counts that are not integers 0 <= k <= n or a level outside (0, 1)
 */
export function clopperPearsonInterval(k: number, n: number, level = 0.95): Interval | null {
  checkCounts(k, n);
  checkLevel(level);
  if (n === 0) return null;
  const a2 = (1 - level) / 2;
  const lo = k === 0 ? 0 : betaQuantile(a2, k, n - k + 1);
  const hi = k === n ? 1 : betaQuantile(1 - a2, k + 1, n - k);
  return [clip01(lo), clip01(hi)];
}

/** The per-group interval of `method` (null for `none` or n = 0). */
export function proportionInterval(k: number, n: number, method: CiMethod = 'wilson', level = 0.95): Interval | null {
  if (method === 'none') return null;
  return method === 'wilson' ? wilsonInterval(k, n, level) : clopperPearsonInterval(k, n, level);
}

/** The counts one aggregate is computed from: per group (id order) samples, correct, and the training split's count. */
export interface GroupCounts {
  count: ArrayLike<number>;
  correct: ArrayLike<number>;
  trainCount: ArrayLike<number>;
}

/**
 * The four aggregates of per-group counts, as src/metrics/groups.ts defines them, over the groups that
 * have samples: worst-group (min), average (weighted by the training counts), mean of the groups and
 * overall (correct / samples); null where undefined.
 */
export function aggregates(c: GroupCounts): Record<Aggregate, number | null> {
  let min = Infinity;
  let wsum = 0;
  let wacc = 0;
  let sum = 0;
  let present = 0;
  let n = 0;
  let k = 0;
  for (let g = 0; g < c.count.length; g++) {
    if (c.count[g] === 0) continue;
    const acc = c.correct[g] / c.count[g];
    present += 1;
    if (acc < min) min = acc;
    sum += acc;
    wsum += c.trainCount[g];
    wacc += c.trainCount[g] * acc;
    n += c.count[g];
    k += c.correct[g];
  }
  if (present === 0) return { worst_group_accuracy: null, average_accuracy: null, mean_accuracy: null, overall_accuracy: null };
  return { worst_group_accuracy: min, average_accuracy: wsum > 0 ? wacc / wsum : null, mean_accuracy: sum / present, overall_accuracy: k / n };
}

/** The q-quantile of sorted values, linear between order statistics (numpy.percentile's default). */
function quantileSorted(xs: Float64Array, q: number): number {
  const h = (xs.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(xs.length - 1, lo + 1);
  return xs[lo] + (h - lo) * (xs[hi] - xs[lo]);
}

/**
 * Group-stratified bootstrap intervals of the four aggregates. Each of `draws` replicates draws every
 * group's samples again with replacement (n_g draws from its n_g samples, so each group keeps its size;
 * a draw is correct when the drawn sample was), recomputes the aggregates with the same training
 * weights, and the interval is the percentile interval at `level` (numpy's linear quantiles of the
 * replicates), widened where needed to hold the point estimate (the bootstrap distribution of a minimum
 * lies below it when several groups are close). Seeded with the project's generator: the same counts,
 * draws, level and seed give the same intervals. Null for an aggregate that is undefined.
 * Cost: draws x (samples of the groups that are neither all right nor all wrong) generator calls, made by
 * the addon (native/metrics/bootstrap.h): about 0.1 s for 2000 draws of 20,000 samples.
 * @throws SpurmemError for bad counts, draws that are not a positive integer, or a level outside (0, 1)
 */
export function bootstrapIntervals(c: GroupCounts, o: { draws: number; level?: number; seed?: number }): Record<Aggregate, Interval | null> {
  const level = o.level ?? 0.95;
  checkLevel(level);
  if (!Number.isInteger(o.draws) || o.draws < 1) throw new SpurmemError(`bootstrap: draws must be a positive integer, got ${o.draws}`);
  const G = c.count.length;
  if (c.correct.length !== G || c.trainCount.length !== G) throw new SpurmemError(`bootstrap: ${G} group counts, ${c.correct.length} correct counts, ${c.trainCount.length} training counts`);
  for (let g = 0; g < G; g++) checkCounts(c.correct[g], c.count[g]);
  const point = aggregates(c);
  const rng = new Rng(o.seed ?? 0, 0x6b6f6f62);
  const reps: Record<Aggregate, Float64Array> = {
    worst_group_accuracy: new Float64Array(o.draws),
    average_accuracy: new Float64Array(o.draws),
    mean_accuracy: new Float64Array(o.draws),
    overall_accuracy: new Float64Array(o.draws),
  };
  // per replicate and group, the correct draws: count[g] indices drawn from the group's samples (correct
  // ones first, so an index below correct[g] is a correct sample) with rng.int(0, count[g]), replicate by
  // replicate, group by group; groups all right or all wrong take no draws. The addon runs this loop on
  // the same generator state, number for number (about 7x faster than V8 runs it).
  const correct = addon().bootstrapCorrect({ state: rng.state(), count: Int32Array.from(c.count), correct: Int32Array.from(c.correct), draws: o.draws });
  for (let b = 0; b < o.draws; b++) {
    const drawn = correct.subarray(b * G, (b + 1) * G);
    const a = aggregates({ count: c.count, correct: drawn, trainCount: c.trainCount });
    for (const name of AGGREGATES) reps[name][b] = a[name] ?? Number.NaN;
  }
  const lowQ = (1 - level) / 2;
  const out = {} as Record<Aggregate, Interval | null>;
  for (const name of AGGREGATES) {
    const p = point[name];
    if (p === null) {
      out[name] = null;
      continue;
    }
    const xs = reps[name].sort();
    out[name] = [Math.min(p, quantileSorted(xs, lowQ)), Math.max(p, quantileSorted(xs, 1 - lowQ))];
  }
  return out;
}
