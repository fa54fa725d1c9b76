import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fitL1LogReg, predictLogReg } from '../src/train/logreg.js';
import { DFR_C_GRID, dfrFit, scalerOf } from '../src/train/dfr.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers/datasets.js';
import { runPython, testDir } from './helpers/python.js';

/** liblinear's objective: |w|_1 + |b| + C * sum log(1 + exp(-t (w.x + b))). */
function objective(coef: ArrayLike<number>, b: number, x: Float64Array, y: number[], n: number, d: number, c: number): number {
  let f = Math.abs(b);
  for (let j = 0; j < d; j++) f += Math.abs(coef[j]);
  for (let i = 0; i < n; i++) {
    let z = b;
    for (let j = 0; j < d; j++) z += coef[j] * x[i * d + j];
    const m = (y[i] === 1 ? 1 : -1) * z;
    f += c * (m > 0 ? Math.log1p(Math.exp(-m)) : -m + Math.log1p(Math.exp(m)));
  }
  return f;
}

/** Standardised features with a sparse signal: n rows of d. */
function problem(seed: number, n: number, d: number): { x: Float64Array; y: number[] } {
  const rng = new Rng(seed);
  const x = Float64Array.from({ length: n * d }, () => rng.normal());
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = 1.5 * x[i * d] - x[i * d + 1] + 0.5 * x[i * d + 2] + 0.3 + 0.8 * rng.normal();
    y.push(z > 0 ? 1 : 0);
  }
  return { x, y };
}

describe("L1 logistic regression matches scikit-learn's liblinear", () => {
  it('coefficients, intercept, predictions and objective on the same problems (n > d and d > n; C from 1 to 0.01)', () => {
    const cases = [
      { seed: 1, n: 200, d: 40, c: 1 },
      { seed: 2, n: 200, d: 40, c: 0.1 },
      { seed: 3, n: 120, d: 300, c: 0.3 },
      { seed: 4, n: 120, d: 300, c: 0.03 },
      { seed: 5, n: 80, d: 512, c: 0.1 },
    ];
    const probs = cases.map((k) => ({ ...k, ...problem(k.seed, k.n, k.d) }));
    const dir = tempDir('spurmem-logreg-');
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ fits: probs.map((p) => ({ x: Array.from({ length: p.n }, (_, i) => Array.from(p.x.subarray(i * p.d, (i + 1) * p.d))), y: p.y, c: p.c })) }));
    const ref = JSON.parse(runPython(join(testDir, 'fixtures', 'baselines_reference.py'), ['logreg', dir])) as { fits: { coef: number[]; intercept: number; pred: number[] }[] };
    for (const [k, p] of probs.entries()) {
      const m = fitL1LogReg(p.x, p.y, p.n, p.d, p.c);
      const want = ref.fits[k];
      const scale = Math.max(1, ...want.coef.map(Math.abs));
      let diff = Math.abs(m.intercept - want.intercept);
      for (let j = 0; j < p.d; j++) diff = Math.max(diff, Math.abs(m.coef[j] - want.coef[j]));
      const fo = objective(m.coef, m.intercept, p.x, p.y, p.n, p.d, p.c);
      const fs = objective(want.coef, want.intercept, p.x, p.y, p.n, p.d, p.c);
      const nonzero = Array.from(m.coef).filter((v) => v !== 0).length;
      console.log(`n ${p.n} d ${p.d} C ${p.c}: ${m.passes} passes, ${nonzero} non-zero weights (sklearn ${want.coef.filter((v) => v !== 0).length}); largest difference ${diff.toExponential(2)}; objective ${fo.toFixed(8)} vs sklearn ${fs.toFixed(8)}`);
      expect(m.converged).toBe(true);
      expect(diff / scale, `case ${k}`).toBeLessThan(1e-4);
      expect(Math.abs(fo - fs) / fs, `objective of case ${k}`).toBeLessThan(1e-7);
      expect(Array.from(predictLogReg(m, p.x, p.n, p.d)), `predictions of case ${k}`).toEqual(want.pred);
    }
  });

  it('refuses labels other than 0/1 and C <= 0', () => {
    expect(() => fitL1LogReg(new Float64Array(2), [0, 2], 2, 1, 1)).toThrow(/label 2 of row 1/);
    expect(() => fitL1LogReg(new Float64Array(2), [0, 1], 2, 1, 0)).toThrow(/C must be > 0/);
  });
});

describe('DFR on fixed embeddings matches the same procedure in scikit-learn', () => {
  it('tuning accuracies, C, averaged coefficients and test predictions on embeddings with a core and a spurious direction', () => {
    // validation groups of Waterbirds' shape: class y in feature 0 (weak), the spurious attribute in feature 1 (strong)
    const rng = new Rng(7);
    const d = 48;
    const make = (counts: number[]) => {
      const g: number[] = [];
      counts.forEach((c, k) => {
        for (let i = 0; i < c; i++) g.push(k);
      });
      const x = new Float32Array(g.length * d);
      g.forEach((gi, i) => {
        for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + 0.5;
        x[i * d] += 1.2 * ((gi >> 1) * 2 - 1);
        x[i * d + 1] += 2.5 * ((gi & 1) * 2 - 1);
      });
      return { x, n: g.length, d, y: g.map((k) => k >> 1), g };
    };
    const val = make([90, 30, 30, 90]);
    const test = make([50, 50, 50, 50]);
    const fit = dfrFit(val, { seed: 3, subsamples: 4 });
    const dir = tempDir('spurmem-dfr-emb-');
    const rows = (e: typeof val) => Array.from({ length: e.n }, (_, i) => Array.from(e.x.subarray(i * d, (i + 1) * d)));
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({
      x_val: rows(val), x_test: rows(test), val: { y: val.y, g: val.g }, grid: DFR_C_GRID, tune_fit: fit.rows.tuneFit, tune_check: fit.rows.tuneCheck, subsets: fit.rows.subsets,
    }));
    const want = JSON.parse(runPython(join(testDir, 'fixtures', 'baselines_reference.py'), ['dfr-embeddings', dir])) as { tuning: number[]; c: number; coef: number[]; intercept: number; pred_test: number[] };
    console.log(`DFR tuning: ${fit.tuning.map((t) => `C ${t.c}: ${t.val_worst_group_accuracy.toFixed(3)}`).join(', ')} -> C ${fit.c}`);
    expect(new Set(want.tuning).size).toBeGreaterThan(1);
    expect(fit.tuning.map((t) => t.val_worst_group_accuracy)).toEqual(want.tuning);
    expect(fit.c).toBe(want.c);
    const sc = scalerOf(Float64Array.from(val.x), val.n, d);
    let diff = Math.abs(fit.model.intercept + Array.from(fit.model.coef).reduce((a, v, j) => a + v * sc.mean[j], 0) - want.intercept);
    fit.model.coef.forEach((v, j) => (diff = Math.max(diff, Math.abs(v * sc.scale[j] - want.coef[j]))));
    expect(diff / Math.max(...want.coef.map(Math.abs))).toBeLessThan(1e-4);
    const pred = Array.from(predictLogReg(fit.model, Float64Array.from(test.x), test.n, d));
    expect(pred).toEqual(want.pred_test);
  });
});
