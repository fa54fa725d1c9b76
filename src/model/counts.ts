/**
 * How many weights a fraction of a pool means: decided here once (native code is handed the count).
 */

/**
 * ceil(P * N) without being pushed up by the rounding error of P * N (the threshold count, original-behaviour
 * §4.3; the original's `int(np.ceil(P * N))`, which gives one more where P * N is an integer that floating
 * point misses by an ulp).
 */
export function ceilCount(fraction: number, n: number): number {
  const x = fraction * n;
  const r = Math.round(x);
  return Math.abs(x - r) < 1e-9 * Math.max(1, x) ? r : Math.ceil(x);
}
