/**
 * The distribution functions the statistics use, from @stdlib, each loaded on its first call: the four
 * packages are about 600 files and took 0.15 s of every command's start, though most runs call one of them
 * once, at the end (an eval's Wilson intervals) or never.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** A function of `id`'s package, required on first use. */
function lazy<F extends (...args: never[]) => number>(id: string): F {
  let f: F | undefined;
  return ((...args: Parameters<F>) => {
    f ??= load(id) as F;
    return f(...args);
  }) as F;
}

/** The beta distribution's quantile function: betaQuantile(p, alpha, beta). */
export const betaQuantile = lazy<(p: number, alpha: number, beta: number) => number>('@stdlib/stats-base-dists-beta-quantile');
/** The normal distribution's quantile function: normalQuantile(p, mu, sigma). */
export const normalQuantile = lazy<(p: number, mu: number, sigma: number) => number>('@stdlib/stats-base-dists-normal-quantile');
/** The binomial distribution's CDF: binomialCdf(x, n, p). */
export const binomialCdf = lazy<(x: number, n: number, p: number) => number>('@stdlib/stats-base-dists-binomial-cdf');
/** Student's t distribution's quantile function: tQuantile(p, v). */
export const tQuantile = lazy<(p: number, v: number) => number>('@stdlib/stats-base-dists-t-quantile');
