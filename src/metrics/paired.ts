/**
 * Paired results of a change evaluated on the same samples before and after: the flips of each sample's
 * correctness, the two-sided exact McNemar test of those flips, the 95% t-interval of a mean change over
 * the repeats of a random change, and Holm's step-down correction of a family of p-values.
 *
 * The distribution functions are @stdlib's (binomial CDF, Student's t quantile); the tests compare them
 * with scipy.stats.binomtest and scipy.stats.t.ppf.
 */
import type { Sample } from '../data/types.js';
import { SpurmemError } from '../util/errors.js';
import { binomialCdf, tQuantile } from './distributions.js';
import { predictions, targetIndex, type LabelOrder } from './groups.js';
import { wilsonInterval, type Interval } from './intervals.js';

/** Samples whose correctness changed: right before and wrong after (`to_wrong`), wrong before and right after (`to_right`). */
export interface Flips {
  to_wrong: number;
  to_right: number;
}

/**
 * Counts the flips between two paired correctness vectors, over the positions `which` selects (default:
 * all). Accuracy before - accuracy after over those positions = (to_wrong - to_right) / count.
 * @throws SpurmemError when the vectors differ in length
 */
export function countFlips(before: ArrayLike<boolean | number>, after: ArrayLike<boolean | number>, which?: (i: number) => boolean): Flips {
  if (before.length !== after.length) throw new SpurmemError(`countFlips: ${before.length} samples before, ${after.length} after`);
  let toWrong = 0;
  let toRight = 0;
  for (let i = 0; i < before.length; i++) {
    if (which && !which(i)) continue;
    const b = Boolean(before[i]);
    const a = Boolean(after[i]);
    if (b && !a) toWrong += 1;
    else if (!b && a) toRight += 1;
  }
  return { to_wrong: toWrong, to_right: toRight };
}

/**
 * The two-sided exact McNemar p-value of paired flips: the binomial test of `to_wrong` successes in
 * `to_wrong + to_right` trials at p = 0.5, as scipy.stats.binomtest(b, b + c, 0.5).pvalue (for p = 0.5 the
 * distribution is symmetric: 2 x the smaller tail, at most 1). 1 when nothing flipped.
 * @throws SpurmemError for counts that are not non-negative integers
 */
export function mcnemarExact(f: Flips): number {
  const { to_wrong: b, to_right: c } = f;
  if (!Number.isInteger(b) || !Number.isInteger(c) || b < 0 || c < 0) throw new SpurmemError(`mcnemarExact: flips must be non-negative integers, got ${b} and ${c}`);
  const n = b + c;
  if (n === 0 || b === c) return 1;
  return Math.min(1, 2 * binomialCdf(Math.min(b, c), n, 0.5));
}

/**
 * The mean of `xs` with its two-sided t-interval at `level` (default 0.95): mean -+ t.ppf((1 + level) / 2,
 * n - 1) x s / sqrt(n), s the sample standard deviation (ddof 1). The interval is null for fewer than two
 * values (one repeat says nothing about the spread); everything is null for none.
 * @throws SpurmemError for a level outside (0, 1)
 */
export function tInterval(xs: readonly number[], level = 0.95): { mean: number | null; ci: [number, number] | null } {
  if (!(level > 0 && level < 1)) throw new SpurmemError(`tInterval: level must be in (0, 1), got ${level}`);
  const n = xs.length;
  if (n === 0) return { mean: null, ci: null };
  const mean = xs.reduce((a, x) => a + x, 0) / n;
  if (n < 2) return { mean, ci: null };
  const s = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const half = tQuantile((1 + level) / 2, n - 1) * (s / Math.sqrt(n));
  return { mean, ci: [mean - half, mean + half] };
}

/**
 * Holm's step-down adjusted p-values of a family, in the order given: sorted ascending, the i-th smallest
 * (0-based) gets max over j <= i of min(1, (m - j) p_(j)); null entries are not part of the family and stay null.
 */
export function holm(ps: readonly (number | null)[]): (number | null)[] {
  const idx = ps.map((p, i) => [p, i] as const).filter((x): x is readonly [number, number] => x[0] !== null);
  idx.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const m = idx.length;
  const out: (number | null)[] = ps.map(() => null);
  let running = 0;
  idx.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    out[i] = running;
  });
  return out;
}

/**
 * Per sample of a split, from one evaluation's outputs: whether it was evaluated (`valid`: its row has no
 * NaN, i.e. its image was not skipped), whether the prediction (argmax, ties to the lower index) is its
 * true class, and the probability of the true class (the softmax of a linear head's logits; a softmax
 * head's output as it is; NaN when not evaluated).
 * @param outputs [n, numClasses] row-major, row i = sample i of the split
 */
export function sampleOutcomes(
  outputs: Float32Array,
  numClasses: number,
  samples: readonly Pick<Sample, 'y'>[],
  o: { labelOrder: LabelOrder; softmaxHead: boolean },
): { valid: Uint8Array; correct: Uint8Array; pTrue: Float64Array } {
  const n = samples.length;
  if (outputs.length !== n * numClasses) throw new SpurmemError(`sampleOutcomes: ${outputs.length} outputs for ${n} samples of ${numClasses} classes`);
  const pred = predictions(outputs, numClasses);
  const valid = new Uint8Array(n);
  const correct = new Uint8Array(n);
  const pTrue = new Float64Array(n).fill(Number.NaN);
  for (let i = 0; i < n; i++) {
    if (pred[i] < 0) continue;
    valid[i] = 1;
    const t = targetIndex(samples[i].y, o.labelOrder);
    correct[i] = pred[i] === t ? 1 : 0;
    const row = outputs.subarray(i * numClasses, (i + 1) * numClasses);
    if (o.softmaxHead) {
      pTrue[i] = row[t];
    } else {
      let m = -Infinity;
      for (const v of row) m = Math.max(m, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - m);
      pTrue[i] = Math.exp(row[t] - m) / sum;
    }
  }
  return { valid, correct, pTrue };
}

// ---- the interval of a deterministic change (the demo's figure and table)
/*
 * The 95% interval of a deterministic change of accuracy measured on the same images before and after
 * (a paired difference of two proportions).
 *
 * A per-group Wilson interval is an interval of one proportion; a change of the same images is a
 * difference of two paired proportions, so it takes Newcombe's hybrid score interval for paired data
 * (Newcombe 1998, "Improved confidence intervals for the difference between binomial proportions based on
 * paired data", Statistics in Medicine 17:2635-2650, method 10; the worked example in Altman et al.,
 * "Statistics with Confidence", 2nd ed., p. 52): the Wilson intervals of the accuracy before and after,
 * combined with the correlation of the paired outcomes. It holds the estimate, holds 0 when nothing
 * flipped and stays inside [-1, 1]; it is an asymptotic interval, so near the 5% boundary it can exclude 0
 * where the exact McNemar test of the same flips is not significant (5 of 14 images right -> wrong and
 * none back: [+6.8, +61.2] points, exact p = 0.0625): the demo calls changes by the exact test and shows
 * this interval for the size of the change. A random change (random_init, random_noise) instead takes
 * the t-interval of the change over its repeats (`change_ci95` of the study). Checked against
 * Fagerland, Lydersen and Laake's implementation (R package contingencytables; Cavo et al.'s table
 * 59, 6, 16, 80: -0.1186 to -0.0046).
 */

/** The paired counts of a change on `n` images: correct before, right -> wrong and wrong -> right. */
export interface PairedCounts {
  n: number;
  correctBefore: number;
  toWrong: number;
  toRight: number;
}

/**
 * Newcombe's hybrid score interval (method 10) of the change = accuracy before - accuracy after =
 * (toWrong - toRight) / n, as a fraction (multiply by 100 for points); null for n = 0.
 * The 2x2 table is a = right before and after, b = toWrong, c = toRight, d = wrong before and after; the
 * correlation term is phi = C / sqrt((a+b)(c+d)(a+c)(b+d)) with C = ad - bc - n/2 when ad - bc > n/2,
 * C = ad - bc when it is negative, else 0, and phi = 0 when a margin is empty.
 * @throws SpurmemError for counts that do not make a 2x2 table (negative, not integers, flips beyond the
 *   correct or wrong images) or a level outside (0, 1)
 */
export function pairedChangeInterval(c: PairedCounts, level = 0.95): Interval | null {
  const { n, correctBefore, toWrong, toRight } = c;
  for (const [k, v] of Object.entries(c)) if (!Number.isInteger(v) || v < 0) throw new SpurmemError(`pairedChangeInterval: ${k} must be an integer >= 0, got ${v}`);
  if (correctBefore > n || toWrong > correctBefore || toRight > n - correctBefore) {
    throw new SpurmemError(`pairedChangeInterval: ${toWrong} right -> wrong and ${toRight} wrong -> right do not fit ${correctBefore} correct of ${n}`);
  }
  if (!(level > 0 && level < 1)) throw new SpurmemError(`pairedChangeInterval: level must be in (0, 1), got ${level}`);
  if (n === 0) return null;
  const a = correctBefore - toWrong;
  const b = toWrong;
  const cc = toRight;
  const d = n - correctBefore - toRight;
  const correctAfter = a + cc;
  const p1 = correctBefore / n;
  const p2 = correctAfter / n;
  const [l1, u1] = wilsonInterval(correctBefore, n, level)!;
  const [l2, u2] = wilsonInterval(correctAfter, n, level)!;
  const margins = (a + b) * (cc + d) * (a + cc) * (b + d);
  const det = a * d - b * cc;
  const corr = det > n / 2 ? det - n / 2 : det < 0 ? det : 0;
  const phi = margins > 0 ? corr / Math.sqrt(margins) : 0;
  const change = p1 - p2;
  const lower = change - Math.sqrt(Math.max(0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2));
  const upper = change + Math.sqrt(Math.max(0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2));
  return [Math.max(-1, lower), Math.min(1, upper)];
}
