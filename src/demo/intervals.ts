/**
 * The 95% interval of a deterministic change of accuracy measured on the same images before and after
 * (a paired difference of two proportions), as the demo's figure and table draw it.
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
import { wilsonInterval, type Interval } from '../metrics/intervals.js';
import { SpurmemError } from '../util/errors.js';

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
