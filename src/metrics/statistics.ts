/**
 * The statistics of repeated measurements, one module for the study and the sweep: the mean, the
 * standard deviation with ddof 0 (numpy.std's default, as the original's averaging would give), and the
 * summary of one accuracy over the repeats of a modification.
 */

/** Mean of the values, or null for none. */
export function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** Standard deviation with ddof 0 (numpy.std's default), or null for no values. */
export function std(xs: readonly number[]): number | null {
  const m = mean(xs);
  return m === null ? null : Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}

/** Statistics of one group (or of worst-group / average accuracy) over the repeats; fractions in [0, 1]. */
export interface Stat {
  unmodified: number | null;
  mean: number | null;
  std: number | null;
  /** unmodified - mean (the original README's "change"). */
  change: number | null;
}

/** The summary of an accuracy over repeats: null values (a group without samples) are left out. */
export function stat(unmodified: number | null, values: readonly (number | null)[]): Stat {
  const v = values.filter((x): x is number => x !== null);
  const m = mean(v);
  return { unmodified, mean: m, std: std(v), change: unmodified !== null && m !== null ? unmodified - m : null };
}
