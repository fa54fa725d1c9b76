import { describe, expect, it } from 'vitest';
import { countFlips, holm, mcnemarExact, sampleOutcomes, tInterval } from '../src/metrics/paired.js';
import { pythonCode } from './helpers/python.js';

/** Flip counts (to_wrong, to_right): none, ties, one-sided, small and large groups. */
const FLIPS: [number, number][] = [
  [0, 0], [1, 0], [0, 1], [3, 3], [5, 0], [6, 0], [0, 7], [7, 2], [2, 9], [12, 30], [40, 41], [100, 70], [1, 19], [250, 180], [3, 17], [0, 200],
];

/** Repeat samples for the t-interval: 2 to 10 values. */
const SAMPLES: number[][] = [
  [0.01, 0.03],
  [0.1, 0.12, 0.08],
  [0.0714, 0.0357, 0.0714, 0.1071, 0.0],
  [-0.02, 0.01, 0.005, -0.004, 0.03, 0.011, 0.0, -0.007, 0.02, 0.013],
  [5, 5, 5, 5],
];

describe('paired results of a change', () => {
  it('counts flips, and before - after accuracy is (to_wrong - to_right) / n', () => {
    const before = [1, 1, 0, 0, 1, 0, 1, 1];
    const after = [0, 1, 1, 0, 0, 0, 1, 1];
    expect(countFlips(before, after)).toEqual({ to_wrong: 2, to_right: 1 });
    expect(countFlips(before, after, (i) => i < 3)).toEqual({ to_wrong: 1, to_right: 1 });
    const acc = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    expect(acc(before) - acc(after)).toBeCloseTo((2 - 1) / 8, 12);
    expect(() => countFlips([1], [1, 0])).toThrow(/1 samples before, 2 after/);
  });

  it('McNemar exact p-values equal scipy.stats.binomtest(b, b + c, 0.5) to 1e-9', () => {
    const ref = JSON.parse(
      pythonCode(
        `import json\nfrom scipy.stats import binomtest\nout=[]\nfor b,c in ${JSON.stringify(FLIPS)}:\n  out.append(1.0 if b+c==0 else binomtest(b,b+c,0.5).pvalue)\nprint(json.dumps(out))`,
      ),
    ) as number[];
    FLIPS.forEach(([b, c], i) => expect(Math.abs(mcnemarExact({ to_wrong: b, to_right: c }) - ref[i]), `${b}, ${c}`).toBeLessThan(1e-9));
    expect(mcnemarExact({ to_wrong: 0, to_right: 0 })).toBe(1);
    expect(() => mcnemarExact({ to_wrong: -1, to_right: 2 })).toThrow(/non-negative integers/);
  });

  it('t-intervals equal mean -+ scipy.stats.t.ppf(0.975, n - 1) x s / sqrt(n) to 1e-9', () => {
    const ref = JSON.parse(
      pythonCode(
        'import json, math\nfrom scipy.stats import t\nimport numpy as np\nout=[]\n' +
          `for xs in ${JSON.stringify(SAMPLES)}:\n  x=np.array(xs,dtype=float); m=x.mean(); h=t.ppf(0.975,len(x)-1)*x.std(ddof=1)/math.sqrt(len(x)); h90=t.ppf(0.95,len(x)-1)*x.std(ddof=1)/math.sqrt(len(x))\n  out.append([m,m-h,m+h,m-h90,m+h90])\nprint(json.dumps(out))`,
      ),
    ) as number[][];
    SAMPLES.forEach((xs, i) => {
      const r = tInterval(xs);
      expect(Math.abs(r.mean! - ref[i][0])).toBeLessThan(1e-9);
      expect(Math.abs(r.ci![0] - ref[i][1])).toBeLessThan(1e-9);
      expect(Math.abs(r.ci![1] - ref[i][2])).toBeLessThan(1e-9);
      const r90 = tInterval(xs, 0.9);
      expect(Math.abs(r90.ci![0] - ref[i][3])).toBeLessThan(1e-9);
      expect(Math.abs(r90.ci![1] - ref[i][4])).toBeLessThan(1e-9);
    });
    expect(tInterval([0.3])).toEqual({ mean: 0.3, ci: null });
    expect(tInterval([])).toEqual({ mean: null, ci: null });
    expect(() => tInterval([1, 2], 1)).toThrow(/level/);
  });

  it("Holm's step-down correction equals the direct computation, nulls left out of the family", () => {
    const ps = [0.01, 0.04, 0.03, 0.005, null, 0.9];
    // sorted: 0.005 (x5), 0.01 (x4), 0.03 (x3), 0.04 (x2), 0.9 (x1), each at least the one before
    const want = [0.04, 0.09, 0.09, 0.025, null, 0.9];
    holm(ps).forEach((p, i) => (want[i] === null ? expect(p).toBeNull() : expect(p!).toBeCloseTo(want[i]!, 12)));
    expect(holm([0.5, 0.6])).toEqual([1, 1]);
    expect(holm([])).toEqual([]);
    // against a direct computation on random p-values: the adjusted p is the max over the smaller ones of min(1, (m - rank) p)
    const rnd = Array.from({ length: 9 }, (_, i) => ((i * 7919) % 101) / 400);
    const order = rnd.map((p, i) => [p, i]).sort((a, b) => a[0] - b[0]);
    const adj = holm(rnd);
    order.forEach(([, i], rank) => {
      const direct = Math.max(...order.slice(0, rank + 1).map(([p], j) => Math.min(1, (rnd.length - j) * p)));
      expect(adj[i]!).toBeCloseTo(direct, 12);
    });
  });

  it('reads per-sample correctness and the probability of the true class from outputs, in either label order and head', () => {
    // 3 samples, 2 classes; the last image was skipped (NaN row)
    const logits = new Float32Array([2, 0, 0.5, 1, Number.NaN, Number.NaN]);
    const samples = [{ y: 0 as const }, { y: 1 as const }, { y: 1 as const }];
    const nat = sampleOutcomes(logits, 2, samples, { labelOrder: 'natural', softmaxHead: false });
    expect([...nat.valid]).toEqual([1, 1, 0]);
    expect([...nat.correct]).toEqual([1, 1, 0]);
    expect(nat.pTrue[0]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    expect(nat.pTrue[1]).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 6);
    expect(Number.isNaN(nat.pTrue[2])).toBe(true);
    // original order: output 0 is class 1
    const orig = sampleOutcomes(logits, 2, samples, { labelOrder: 'original', softmaxHead: false });
    expect([...orig.correct]).toEqual([0, 0, 0]);
    const probs = new Float32Array([0.25, 0.75, 0.5, 0.5, 0.9, 0.1]);
    const soft = sampleOutcomes(probs, 2, samples, { labelOrder: 'natural', softmaxHead: true });
    expect([...soft.pTrue]).toEqual([0.25, 0.5, 0.10000000149011612]);
    // a tie goes to the lower index, as torch.argmax
    expect([...soft.correct]).toEqual([0, 0, 0]);
  });
});
