import { describe, expect, it } from 'vitest';
import { createModel, loadWeights } from '../src/model/index.js';
import { candidateParams, ceilCount, poorestSamples, positiveChannels, prunableNames, rankingProblem, topChannels } from '../src/neurons/rank.js';
import { originalFileName, studySettingSchema } from '../src/neurons/study.js';
import { numbers, read } from './helpers/native.js';

describe('topChannels (the original greedy search)', () => {
  it('breaks ties by parameter order, then by the lower index, and skips zero scores', () => {
    const scores = { a: new Float32Array([1, 3, 3]), b: new Float32Array([3, 2, 0]) };
    expect(topChannels(scores, ['a', 'b'], 4)).toEqual([
      { name: 'a', index: 1, value: 3 },
      { name: 'a', index: 2, value: 3 },
      { name: 'b', index: 0, value: 3 },
      { name: 'b', index: 1, value: 2 },
    ]);
    // parameter order decides, not the name
    expect(topChannels(scores, ['b', 'a'], 1)).toEqual([{ name: 'b', index: 0, value: 3 }]);
    expect(() => topChannels(scores, ['a', 'b'], 6)).toThrow(/only 5 channels have a positive score/);
  });

  it('poorestSamples keeps the group, lowest true-class probability first, stable on ties', () => {
    const groups = [0, 1, 0, 0, 1, 0];
    const trueClass = [1, 0, 1, 0, 1, 1];
    // probabilities [p0, p1] per sample
    const probs = new Float32Array([0.3, 0.7, 0.5, 0.5, 0.9, 0.1, 0.7, 0.3, 0.2, 0.8, 0.3, 0.7]);
    // group 0: samples 0 (p=0.7), 2 (0.1), 3 (0.7), 5 (0.7)
    expect(poorestSamples(groups, trueClass, probs, 2, 0)).toEqual([2, 0, 3, 5]);
    expect(poorestSamples(groups, trueClass, probs, 2, 0, 2)).toEqual([2, 0]);
  });

  it('ceilCount is ceil(P*N) without rounding noise', () => {
    expect(ceilCount(0.05, 23454912)).toBe(1172746);
    expect(ceilCount(1e-5, 23454912)).toBe(235);
    expect(ceilCount(0.01, 100)).toBe(1);
    expect(ceilCount(0.07, 100)).toBe(7);
    expect(ceilCount(0, 23454912)).toBe(0);
    expect(ceilCount(1e-9, 10)).toBe(1);
  });
});

describe('candidate sets', () => {
  it('match the original for ResNet-50: 49 main convs for largest, 53 convs for activated and threshold', () => {
    const info = createModel({ arch: 'resnet50', device: 'cpu' }).info();
    const largest = candidateParams(info, 'largest');
    const all = candidateParams(info, 'activated');
    expect(largest).toHaveLength(49);
    expect(largest.reduce((a, p) => a + p.shape[0], 0)).toBe(22720);
    expect(largest.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)).toBe(20686016);
    expect(all).toHaveLength(53);
    expect(all.reduce((a, p) => a + p.shape[0], 0)).toBe(26560);
    expect(prunableNames(info).length).toBe(53);
    expect(all.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0)).toBe(23454912);
  });
});

describe('threshold selection (native)', () => {
  async function model() {
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    await loadWeights(m, await read('resnet18.zip.pth'));
    return m;
  }

  it('selects exactly ceil(P*N): nothing at P = 0, the k largest or smallest |w| otherwise', async () => {
    const m = await model();
    const names = prunableNames(m.info());
    const flat = (model: typeof m) => {
      const parts = names.map((n) => model.tensor(n).data as Float32Array);
      const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
      return out;
    };
    const pool = flat(m).map(Math.abs);
    const sorted = pool.slice().sort();
    const snap = m.snapshot(names);
    const zero = await m.modifyThreshold({ names, fraction: 0, mode: 'zero' });
    expect(zero.k).toBe(0);
    expect(Object.values(zero.selected).reduce((a, b) => a + b, 0)).toBe(0);
    for (const [fraction, smallest] of [[1e-6, false], [1e-6, true], [0.3, false]] as const) {
      m.restore(snap);
      const r = await m.modifyThreshold({ names, fraction, smallest, mode: 'zero' });
      expect(r.k).toBe(Math.ceil(fraction * pool.length));
      expect(Object.values(r.selected).reduce((a, b) => a + b, 0)).toBe(r.k);
      const t = smallest ? sorted[r.k - 1] : sorted[pool.length - r.k];
      expect(r.threshold).toBeCloseTo(t, 7);
      // every selected weight is now zero, and it was at or beyond the threshold
      const after = flat(m);
      let zeroed = 0;
      let beyond = 0;
      for (let i = 0; i < pool.length; i++) {
        if (after[i] === 0 && pool[i] !== 0) {
          zeroed += 1;
          if (smallest ? pool[i] <= t : pool[i] >= t) beyond += 1;
        }
      }
      expect(zeroed).toBe(r.k);
      expect(beyond).toBe(r.k);
    }
    m.restore(snap);
  });

  it('gives ties to the lower index, so the count stays exact', async () => {
    const m = await model();
    const name = 'layer1.0.conv1.weight';
    const t = m.tensor(name);
    const n = t.data.length;
    m.setTensor(name, { ...t, data: new Float32Array(n).fill(0.5) });
    const r = await m.modifyThreshold({ names: [name], fraction: 10 / n, mode: 'zero' });
    expect(r.k).toBe(10);
    const after = numbers(m.tensor(name));
    expect(after.slice(0, 10)).toEqual(new Array(10).fill(0));
    expect(after.slice(10).every((v) => v === 0.5)).toBe(true);
  });

  it('--faithful-threshold reproduces the original: P = 0 selects everything, smallest takes k + 1, BatchNorm is hit', async () => {
    const m = await model();
    const names = prunableNames(m.info());
    const poolSize = names.reduce((a, n) => a + m.tensor(n).data.length, 0);
    const all = await m.modifyThreshold({ names, fraction: 0, mode: 'zero', faithful: true });
    expect(all.selected['conv1.weight']).toBe(m.tensor('conv1.weight').data.length);
    expect(names.reduce((a, n) => a + all.selected[n], 0)).toBe(poolSize);
    const m2 = await model();
    const s = await m2.modifyThreshold({ names, fraction: 1e-6, smallest: true, mode: 'zero', faithful: true });
    expect(names.reduce((a, n) => a + s.selected[n], 0)).toBe(s.k + 1);
    expect(Object.keys(s.selected)).toContain('bn1.weight');
  });
});

describe('result file names', () => {
  it('are the original scripts\' names', () => {
    const f = (o: object) => originalFileName(studySettingSchema.parse(o));
    expect(f({ ranking: 'largest', mode: 'zero', topK: 3 })).toBe('zero_global_top3_largest_neuron.txt');
    expect(f({ ranking: 'largest', mode: 'random_noise', std: 0.02, topK: 3 })).toBe('random_noise_std0.02_global_top3_largest_neuron.txt');
    expect(f({ ranking: 'largest', mode: 'rewind', rewindEpochs: 5, topK: 2 })).toBe('rewind_5epochs_back_global_top2_largest_neuron.txt');
    expect(f({ ranking: 'activated', mode: 'random_init', std: 0.005, topK: 4 })).toBe('random_init_poorest_random_batch200_std0.005_global_top4_most_activated_neuron.txt');
    expect(f({ ranking: 'threshold', mode: 'zero', fraction: 0.05 })).toBe('zero_0.05_global_largest_neuron.txt');
    expect(f({ ranking: 'threshold', mode: 'random_noise', fraction: 1e-5, std: 0.01, smallest: true })).toBe('random_noise_1e-05_std0.01_global_smallest_neuron.txt');
  });
});

describe('rankingProblem (why a group cannot rank channels)', () => {
  const base = { group: 2, k: 3, groupSize: 4, softmaxHead: true, loss: 'probabilities' as const };
  it('is null when k channels have a gradient', () => {
    expect(rankingProblem({ ...base, positive: 3, probsOfTrue: [1, 1, 1, 1] })).toBeNull();
    expect(positiveChannels({ a: new Float32Array([0, 1e-40, 0]), b: new Float32Array([2]) }, ['a', 'b'])).toBe(2);
  });
  it('names saturated samples, both ways, and the poorest of a larger group', () => {
    expect(rankingProblem({ ...base, positive: 0, probsOfTrue: [1, 1, 1, 1] })).toBe('group 2: all 4 samples are fitted with probability 1.0; the softmax head passes no gradient (--activated-loss logits ranks them)');
    expect(rankingProblem({ ...base, positive: 0, probsOfTrue: [0, 1, 1, 1], groupSize: 9 })).toBe(
      'group 2: all 4 poorest samples (of 9) have probability exactly 1.0 (3) or 0.0 (1) for their true class; the softmax head passes no gradient (--activated-loss logits ranks them)',
    );
    expect(rankingProblem({ ...base, positive: 0, probsOfTrue: [0, 0, 0, 0] })).toMatch(/have probability 0\.0 for their true class/);
  });
  it('says only what it knows otherwise', () => {
    expect(rankingProblem({ ...base, positive: 0, probsOfTrue: [0.5, 1, 1, 1] })).toBe('group 2: the gradients of its 4 poorest samples are all zero (--activated-loss logits ranks them)');
    expect(rankingProblem({ ...base, positive: 0, softmaxHead: false, probsOfTrue: [1, 1, 1, 1] })).toBe('group 2: the gradients of its 4 poorest samples are all zero');
    expect(rankingProblem({ ...base, positive: 2, probsOfTrue: [0.5, 1, 1, 1] })).toBe('group 2: only 2 channels have a nonzero gradient on its 4 poorest samples; cannot choose the top 3');
  });
});
