import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { groupMetrics, withIntervals, type GroupMetrics } from '../src/metrics/groups.js';
import {
  aggregates, bootstrapIntervals, ciKey, clopperPearsonInterval, proportionInterval, wilsonInterval, type GroupCounts,
} from '../src/metrics/intervals.js';
import { runCli } from './helpers/cli.js';
import { tinyDataset } from './helpers/datasets.js';
import { fixturesDir, pythonCode } from './helpers/python.js';
import { addon } from '../src/native.js';
import { Rng } from '../src/util/random.js';

/** Many (k, n, level): k = 0, k = n, n = 1, small and large groups (CelebA's blond-male test group has 180 images). */
const CASES: [number, number, number][] = [];
for (const level of [0.95, 0.9, 0.99, 0.5, 0.999]) {
  for (const [k, n] of [[0, 1], [1, 1], [0, 5], [5, 5], [3, 7], [1, 14], [13, 14], [0, 180], [180, 180], [91, 180], [179, 180], [1, 2], [44, 1057], [1000, 1057], [5000, 20000]]) {
    CASES.push([k, n, level]);
  }
}

/** statsmodels' proportion_confint on every case, for one method. */
function statsmodels(method: 'wilson' | 'beta', cases: [number, number, number][]): [number, number][] {
  const code = `
import json, sys
from statsmodels.stats.proportion import proportion_confint
cases = json.loads(${JSON.stringify(JSON.stringify(cases))})
print(json.dumps([[float(v) for v in proportion_confint(k, n, alpha=1 - level, method='${method}')] for k, n, level in cases]))
`;
  return JSON.parse(pythonCode(code)) as [number, number][];
}

describe('per-group intervals against statsmodels proportion_confint', () => {
  it("Wilson score = method='wilson', Clopper-Pearson = method='beta', to 1e-9", () => {
    for (const [method, ours] of [['wilson', wilsonInterval], ['beta', clopperPearsonInterval]] as const) {
      const ref = statsmodels(method, CASES);
      CASES.forEach(([k, n, level], i) => {
        const got = ours(k, n, level)!;
        expect(Math.abs(got[0] - ref[i][0]), `${method} lower k=${k} n=${n} level=${level}: ${got[0]} vs ${ref[i][0]}`).toBeLessThan(1e-9);
        expect(Math.abs(got[1] - ref[i][1]), `${method} upper k=${k} n=${n} level=${level}: ${got[1]} vs ${ref[i][1]}`).toBeLessThan(1e-9);
      });
    }
  });

  it('n = 0 gives null; bad counts and levels are refused; the key says the level', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(clopperPearsonInterval(0, 0)).toBeNull();
    expect(proportionInterval(3, 5, 'none')).toBeNull();
    expect(() => wilsonInterval(6, 5)).toThrow(/0 <= k <= n/);
    expect(() => wilsonInterval(1.5, 5)).toThrow(/integers/);
    expect(() => clopperPearsonInterval(1, 5, 1)).toThrow(/level must be in \(0, 1\)/);
    expect(ciKey(0.95)).toBe('ci95');
    expect(ciKey(0.9)).toBe('ci90');
    expect(ciKey(0.975)).toBe('ci97.5');
    expect(ciKey(0.999)).toBe('ci99.9');
  });
});

describe('the group-stratified bootstrap of the aggregates', () => {
  const counts: GroupCounts = { count: [40, 12, 9, 30], correct: [38, 7, 4, 27], trainCount: [3498, 184, 56, 1057] };

  it('reproducible with a seed, another seed gives another interval, each holds its point estimate', () => {
    const a = bootstrapIntervals(counts, { draws: 500, seed: 3 });
    expect(bootstrapIntervals(counts, { draws: 500, seed: 3 })).toEqual(a);
    expect(bootstrapIntervals(counts, { draws: 500, seed: 4 })).not.toEqual(a);
    const point = aggregates(counts);
    expect(point.overall_accuracy).toBeCloseTo(76 / 91, 15);
    expect(point.mean_accuracy).toBeCloseTo((38 / 40 + 7 / 12 + 4 / 9 + 27 / 30) / 4, 15);
    for (const name of ['worst_group_accuracy', 'average_accuracy', 'mean_accuracy', 'overall_accuracy'] as const) {
      const [lo, hi] = a[name]!;
      expect(lo, name).toBeLessThanOrEqual(point[name]!);
      expect(hi, name).toBeGreaterThanOrEqual(point[name]!);
      expect(hi - lo, name).toBeGreaterThan(0);
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
    }
    // a higher level gives a wider interval from the same draws
    const wide = bootstrapIntervals(counts, { draws: 500, seed: 3, level: 0.99 });
    expect(wide.mean_accuracy![0]).toBeLessThanOrEqual(a.mean_accuracy![0]);
    expect(wide.mean_accuracy![1]).toBeGreaterThanOrEqual(a.mean_accuracy![1]);
  });

  it('gives the intervals it gave when the TypeScript loop drew the numbers (seed 0, CelebA-sized groups)', () => {
    const iv = bootstrapIntervals({ count: [9767, 7535, 2480, 180], correct: [9500, 7400, 1900, 80], trainCount: [71629, 66874, 22880, 1387] }, { draws: 2000 });
    expect(iv).toEqual({
      worst_group_accuracy: [0.37222222222222223, 0.5166666666666667],
      average_accuracy: [0.9400382978066428, 0.9461922277191707],
      mean_accuracy: [0.7727497020107343, 0.8101965186402171],
      overall_accuracy: [0.9429415890191364, 0.9488528203586815],
    });
  });

  it('the addon draws what the TypeScript loop draws from the same generator, number for number', () => {
    // the loop bootstrapIntervals describes: per replicate, per group, count draws of rng.int(0, count)
    const reference = (count: number[], correct: number[], draws: number, rng: Rng): number[] => {
      const out: number[] = [];
      for (let b = 0; b < draws; b++) {
        for (let g = 0; g < count.length; g++) {
          const [n, k] = [count[g], correct[g]];
          if (k === 0 || k === n) {
            out.push(k);
            continue;
          }
          let hits = 0;
          for (let i = 0; i < n; i++) if (rng.int(0, n) < k) hits += 1;
          out.push(hits);
        }
      }
      return out;
    };
    const cases: [number[], number[], number][] = [
      [[40, 12, 9, 30], [38, 7, 4, 27], 300],
      [[1, 2, 3], [0, 1, 3], 50], // a group of one, half right, all right
      [[9767, 7535, 2480, 180], [9500, 7400, 1900, 80], 3], // CelebA's test groups
      [[1000003], [999999], 1], // a group whose drawn index rounds near the correct count
      [[7, 0, 5], [3, 0, 0], 20],
    ];
    for (const [seed, [count, correct, draws]] of cases.entries()) {
      const native = addon().bootstrapCorrect({ state: new Rng(seed, 0x6b6f6f62).state(), count: Int32Array.from(count), correct: Int32Array.from(correct), draws });
      expect(Array.from(native), `case ${seed}`).toEqual(reference(count, correct, draws, new Rng(seed, 0x6b6f6f62)));
    }
    expect(() => addon().bootstrapCorrect({ state: new Rng(0).state(), count: Int32Array.of(3), correct: Int32Array.of(4), draws: 1 })).toThrow(/group 0: expected 0 <= correct <= count, got correct 4 of 3/);
    expect(() => addon().bootstrapCorrect({ state: new Uint32Array(3), count: Int32Array.of(3), correct: Int32Array.of(1), draws: 1 })).toThrow(/'state' must be a Uint32Array of 4 words/);
  });

  it('keeps group sizes: groups all right or all wrong never move, and with every group so the interval is the point', () => {
    const fixed = bootstrapIntervals({ count: [10, 3, 0, 5], correct: [10, 0, 0, 5], trainCount: [5, 1, 1, 3] }, { draws: 200 });
    expect(fixed.worst_group_accuracy).toEqual([0, 0]);
    expect(fixed.overall_accuracy).toEqual([15 / 18, 15 / 18]);
    expect(fixed.mean_accuracy).toEqual([2 / 3, 2 / 3]);
    // no samples at all: nothing to bound
    expect(bootstrapIntervals({ count: [0, 0], correct: [0, 0], trainCount: [1, 1] }, { draws: 10 }).worst_group_accuracy).toBeNull();
  });

  it('the bootstrap distribution of a group accuracy matches the binomial: its variance is p(1-p)/n', () => {
    // 90% interval of one group of 200 with 120 right: the normal approximation of the binomial
    const iv = bootstrapIntervals({ count: [200], correct: [120], trainCount: [1] }, { draws: 4000, level: 0.9, seed: 1 }).overall_accuracy!;
    const half = 1.6448536269514722 * Math.sqrt((0.6 * 0.4) / 200);
    expect(Math.abs(iv[0] - (0.6 - half))).toBeLessThan(0.01);
    expect(Math.abs(iv[1] - (0.6 + half))).toBeLessThan(0.01);
  });
});

describe('group metrics with intervals', () => {
  const base: GroupMetrics = groupMetrics({
    split: 'test',
    // rows: output 0 high = class 1 (original order)
    outputs: new Float32Array([0.1, 0.9, 0.8, 0.2, 0.9, 0.1, 0.2, 0.8, 0.3, 0.7]),
    numClasses: 2,
    samples: [
      { y: 0, a: 0, group: 0 }, { y: 0, a: 0, group: 0 }, { y: 1, a: 0, group: 2 }, { y: 1, a: 1, group: 3 }, { y: 0, a: 1, group: 1 },
    ].map((s, index) => ({ ...s, file: `f${index}.jpg`, index, line: index + 2, split: 'test' })) as never,
    trainGroupCounts: [10, 2, 2, 10],
    groupNames: ['a', 'b', 'c', 'd'],
    labelOrder: 'original',
  });

  it('adds ci95 per group, <aggregate>_ci95 and overall_accuracy, keeping every field', () => {
    expect(base.overall_accuracy).toBeCloseTo(3 / 5, 15);
    const m = withIntervals(base, [10, 2, 2, 10]);
    for (const k of Object.keys(base)) expect(m[k as keyof GroupMetrics]).toEqual(k === 'groups' ? m.groups : base[k as keyof GroupMetrics]);
    expect(m.groups.map((g) => g.ci95)).toEqual(base.groups.map((g) => wilsonInterval(g.correct, g.count)));
    expect(m.worst_group_accuracy_ci95).toBeDefined();
    expect(m.overall_accuracy_ci95).toBeDefined();
    expect(m.ci).toEqual({ method: 'wilson', level: 0.95, bootstrap: 2000 });
    const cp = withIntervals(base, [10, 2, 2, 10], { method: 'clopper-pearson', level: 0.9, bootstrap: 0 });
    expect(cp.groups[0].ci90).toEqual(clopperPearsonInterval(base.groups[0].correct, base.groups[0].count, 0.9));
    expect(Object.keys(cp).some((k) => k.endsWith('_ci90'))).toBe(false);
    const none = withIntervals(base, [10, 2, 2, 10], { method: 'none', bootstrap: 0 });
    expect(Object.keys(none.groups[0])).toEqual(['id', 'name', 'count', 'correct', 'accuracy']);
  });
});

describe('spurmem eval with intervals', () => {
  it('--json: each group ci95 equals statsmodels Wilson interval of its correct / count; the table shows the interval column', async () => {
    const { root } = await tinyDataset({ perGroup: [6, 3, 2, 5], w: 48, h: 40, seed: 5 });
    const checkpoint = join(fixturesDir, 'evalnet', 'plain_linear.pth');
    const args = ['eval', '--checkpoint', checkpoint, '--arch', 'resnet18', '--dataset', 'waterbirds', '--root', root, '--split', 'test', '--resolution', '32', '--threads', '1'];
    const cli = await runCli([...args, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const r = JSON.parse(cli.stdout);
    expect(Object.keys(r)).toEqual([
      'split', 'groups', 'worst_group_accuracy', 'average_accuracy', 'mean_accuracy', 'overall_accuracy',
      'worst_group_accuracy_ci95', 'average_accuracy_ci95', 'mean_accuracy_ci95', 'overall_accuracy_ci95', 'ci',
    ]);
    expect(Object.keys(r.groups[0])).toEqual(['id', 'name', 'count', 'accuracy', 'ci95']);
    const cases = (r.groups as { count: number; accuracy: number }[]).map((g) => [Math.round(g.accuracy * g.count), g.count, 0.95] as [number, number, number]);
    const ref = statsmodels('wilson', cases);
    r.groups.forEach((g: { ci95: [number, number] }, i: number) => {
      expect(Math.abs(g.ci95[0] - ref[i][0])).toBeLessThan(1e-9);
      expect(Math.abs(g.ci95[1] - ref[i][1])).toBeLessThan(1e-9);
    });
    for (const name of ['worst_group_accuracy', 'average_accuracy', 'mean_accuracy', 'overall_accuracy']) {
      expect(r[`${name}_ci95`][0]).toBeLessThanOrEqual(r[name]);
      expect(r[`${name}_ci95`][1]).toBeGreaterThanOrEqual(r[name]);
    }
    // the same command gives the same bootstrap intervals
    expect(JSON.parse((await runCli([...args, '--json'])).stdout)).toEqual(r);
    // Clopper-Pearson at 0.9, no bootstrap
    const cp = JSON.parse((await runCli([...args, '--json', '--ci', 'clopper-pearson', '--ci-level', '0.9', '--bootstrap', '0'])).stdout);
    const refCp = statsmodels('beta', cases.map(([k, n]) => [k, n, 0.9]));
    cp.groups.forEach((g: { ci90: [number, number] }, i: number) => expect(Math.abs(g.ci90[1] - refCp[i][1])).toBeLessThan(1e-9));
    expect(Object.keys(cp).filter((k) => k.includes('_ci'))).toEqual([]);
    // --ci none --bootstrap 0: the fields of before, overall accuracy added
    const plain = JSON.parse((await runCli([...args, '--json', '--ci', 'none', '--bootstrap', '0'])).stdout);
    expect(Object.keys(plain.groups[0])).toEqual(['id', 'name', 'count', 'accuracy']);
    // the table: the interval column and the summaries' intervals
    const t = await runCli([...args, '--quiet']);
    expect(t.stdout).toMatch(/^group\s+name\s+count\s+accuracy\s+95% interval\n0\s+landbird on land\s+6\s+\d\.\d{4}\s+\[\d\.\d{4}, \d\.\d{4}\]\n/m);
    expect(t.stdout).toMatch(/^worst-group accuracy  \d\.\d{4}  \[\d\.\d{4}, \d\.\d{4}\]\n/m);
    expect(t.stdout).toMatch(/^overall accuracy      \d\.\d{4}  \[\d\.\d{4}, \d\.\d{4}\]  \(correct \/ images of the split\)\n/m);
    expect(t.stdout).toMatch(/^95% intervals \(groups: Wilson score; summaries: group-stratified bootstrap, 2000 draws\)$/m);
    expect((await runCli([...args, '--ci-level', '1'])).code).not.toBe(0);
  });
});
