/**
 * L1-regularised binary logistic regression, the problem that scikit-learn's
 * `LogisticRegression(penalty='l1', solver='liblinear', C)` solves (DFR's last-layer fit):
 *
 *   min_w,b  |w|_1 + |b| + C * sum_i log(1 + exp(-t_i (w . x_i + b))),   t_i = +1 for y_i = 1, -1 for y_i = 0
 *
 * The intercept is liblinear's: a constant feature 1 (intercept_scaling = 1) whose weight is penalised
 * like the others. Solved by coordinate descent with a one-dimensional Newton step and an Armijo line
 * search per coordinate (CDN, Yuan, Chang, Hsieh & Lin, "A Comparison of Optimization Methods and
 * Software for Large-scale L1-regularized Linear Classification", JMLR 2010, section 4.1.2 — the method
 * liblinear used before its newGLMNET), with an active set: coordinates at 0 whose subgradient holds are
 * skipped until a full pass finds none that moves. It stops when the largest minimum-norm subgradient is
 * below `tol` times its value at w = 0. Plain TypeScript on float64 arrays: DFR's problems are small
 * (hundreds of samples, 512-2048 features), and a hand-written solver lets a test hold it to sklearn's.
 */
import { SpurmemError } from '../util/errors.js';

/** A fitted model: decision function w . x + b (> 0: class 1). */
export interface LogReg {
  /** Feature weights [d]. */
  coef: Float64Array;
  intercept: number;
  /** Coordinate passes made, and whether the tolerance was met. */
  passes: number;
  converged: boolean;
}

const log1pexp = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/**
 * Fits the L1-regularised logistic regression on rows `x` [n, d] (row-major) and labels `y` (0/1).
 * @param c the inverse regularisation strength C (> 0)
 * @param o tol: relative stopping tolerance (default 1e-7); maxPasses (default 10000)
 * @throws SpurmemError for mismatched sizes, a label that is not 0 or 1, or C <= 0
 */
export function fitL1LogReg(x: Float64Array | Float32Array, y: ArrayLike<number>, n: number, d: number, c: number, o: { tol?: number; maxPasses?: number } = {}): LogReg {
  if (x.length !== n * d || y.length !== n) throw new SpurmemError(`logistic regression: ${x.length} values and ${y.length} labels for ${n} rows of ${d} features`);
  if (!(c > 0)) throw new SpurmemError(`logistic regression: C must be > 0, got ${c}`);
  const tol = o.tol ?? 1e-7;
  const maxPasses = o.maxPasses ?? 10000;
  const D = d + 1; // the last coordinate is the intercept's constant feature
  // column-major copy: coordinate j's values over the samples are contiguous
  const cols = new Float64Array(n * D);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) cols[j * n + i] = x[i * d + j];
    cols[d * n + i] = 1;
  }
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (y[i] !== 0 && y[i] !== 1) throw new SpurmemError(`logistic regression: label ${y[i]} of row ${i} is not 0 or 1`);
    t[i] = y[i] === 1 ? 1 : -1;
  }
  const w = new Float64Array(D);
  const margin = new Float64Array(n); // t_i * (w . x_i)
  const tau = new Float64Array(n); // sigma(-margin_i)

  const refresh = () => {
    for (let i = 0; i < n; i++) tau[i] = 1 / (1 + Math.exp(margin[i]));
  };
  const gradHess = (j: number): [number, number] => {
    let g = 0;
    let h = 0;
    const off = j * n;
    for (let i = 0; i < n; i++) {
      const v = cols[off + i];
      if (v === 0) continue;
      g -= t[i] * v * tau[i];
      h += v * v * tau[i] * (1 - tau[i]);
    }
    return [c * g, c * h + 1e-12];
  };
  /** Minimum-norm subgradient of coordinate j. */
  const violation = (j: number, g: number): number => {
    if (w[j] > 0) return Math.abs(g + 1);
    if (w[j] < 0) return Math.abs(g - 1);
    return Math.max(0, Math.abs(g) - 1);
  };

  refresh();
  let v0 = 0;
  for (let j = 0; j < D; j++) v0 = Math.max(v0, violation(j, gradHess(j)[0]));
  const stop = Math.max(tol * v0, 1e-12);
  let active = Array.from({ length: D }, (_, j) => j);
  let passes = 0;
  let converged = false;
  let full = true;
  while (passes < maxPasses) {
    passes += 1;
    let worst = 0;
    const next: number[] = [];
    for (const j of active) {
      const [g, h] = gradHess(j);
      const viol = violation(j, g);
      worst = Math.max(worst, viol);
      if (w[j] === 0 && viol === 0) continue; // inactive: stays at 0
      next.push(j);
      if (viol <= stop * 0.1) continue;
      let dj: number;
      if (g + 1 <= h * w[j]) dj = -(g + 1) / h;
      else if (g - 1 >= h * w[j]) dj = -(g - 1) / h;
      else dj = -w[j];
      // Armijo line search on the exact objective along coordinate j
      const off = j * n;
      const delta = g * dj + Math.abs(w[j] + dj) - Math.abs(w[j]);
      let step = 1;
      for (let k = 0; k < 30; k++) {
        const wj = w[j] + step * dj;
        let change = Math.abs(wj) - Math.abs(w[j]);
        let lossChange = 0;
        for (let i = 0; i < n; i++) {
          const v = cols[off + i];
          if (v === 0) continue;
          lossChange += log1pexp(-(margin[i] + step * dj * t[i] * v)) - log1pexp(-margin[i]);
        }
        change += c * lossChange;
        if (change <= 0.01 * step * delta) break;
        step /= 2;
      }
      const move = step * dj;
      if (move !== 0) {
        w[j] += move;
        for (let i = 0; i < n; i++) {
          const v = cols[off + i];
          if (v === 0) continue;
          margin[i] += move * t[i] * v;
          tau[i] = 1 / (1 + Math.exp(margin[i]));
        }
      }
    }
    if (worst <= stop) {
      if (full) {
        converged = true;
        break;
      }
      // converged on the active set: check every coordinate once more
      active = Array.from({ length: D }, (_, j) => j);
      full = true;
    } else {
      active = full ? next : active;
      full = false;
    }
  }
  return { coef: w.slice(0, d), intercept: w[d], passes, converged };
}

/** Class predictions (0/1) of rows `x` [n, d]: 1 where w . x + b > 0 (sklearn's predict). */
export function predictLogReg(m: LogReg, x: Float64Array | Float32Array, n: number, d: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let z = m.intercept;
    for (let j = 0; j < d; j++) z += m.coef[j] * x[i * d + j];
    out[i] = z > 0 ? 1 : 0;
  }
  return out;
}
