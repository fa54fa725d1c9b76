import { describe, expect, it } from 'vitest';
import { groupMetrics, predictions, targetIndex } from '../src/metrics/groups.js';
import type { Sample } from '../src/data/types.js';

function sample(index: number, y: 0 | 1, a: 0 | 1): Sample {
  return { index, line: index + 2, file: `/x/${index}.jpg`, y, a, group: 2 * y + a, split: 'test' };
}

// group 0: 3 samples, group 1: none, group 2: 2 samples, group 3: 4 samples
const samples: Sample[] = [
  sample(0, 0, 0), sample(1, 0, 0), sample(2, 0, 0),
  sample(3, 1, 0), sample(4, 1, 0),
  sample(5, 1, 1), sample(6, 1, 1), sample(7, 1, 1), sample(8, 1, 1),
];
const outputs = new Float32Array([
  0.2, 0.8, /**/ 0.6, 0.4, /**/ 0.5, 0.5, // group 0
  0.9, 0.1, /**/ 0.5, 0.5, // group 2
  0.7, 0.3, /**/ 0.1, 0.9, /**/ 0.8, 0.2, /**/ 0.3, 0.7, // group 3
]);
const names = ['g0', 'g1', 'g2', 'g3'];
const train = [10, 5, 2, 3];

describe('group metrics', () => {
  it('targetIndex: the original [y, 1-y] order puts class 1 at output 0', () => {
    expect(targetIndex(1, 'original')).toBe(0);
    expect(targetIndex(0, 'original')).toBe(1);
    expect(targetIndex(1, 'natural')).toBe(1);
    expect(targetIndex(0, 'natural')).toBe(0);
  });

  it('predictions: argmax with ties to the lower index (torch.argmax), NaN rows predict nothing', () => {
    expect(Array.from(predictions(new Float32Array([0.5, 0.5, 0.1, 0.9, 3, 1, 3, Number.NaN, 0]), 3))).toEqual([0, 1, -1]);
    expect(Array.from(predictions(new Float32Array([1, 2, 2, 0, 5, 5]), 3))).toEqual([1, 1]);
    expect(Array.from(predictions(new Float32Array([0.5, 0.5, 0.2, 0.8]), 2))).toEqual([0, 1]);
    expect(() => predictions(new Float32Array(5), 2)).toThrow(/not a multiple of 2/);
  });

  it('original label order: hand-computed group, worst-group, weighted average and mean accuracies', () => {
    const m = groupMetrics({ split: 'test', outputs, numClasses: 2, samples, trainGroupCounts: train, groupNames: names, labelOrder: 'original' });
    expect(m.split).toBe('test');
    expect(m.groups.map((g) => [g.id, g.name, g.count, g.correct])).toEqual([
      [0, 'g0', 3, 1],
      [1, 'g1', 0, 0],
      [2, 'g2', 2, 2],
      [3, 'g3', 4, 2],
    ]);
    expect(m.groups[0].accuracy).toBeCloseTo(1 / 3, 12);
    expect(m.groups[1].accuracy).toBeNull(); // "no samples", not 0 or NaN
    expect(m.groups[2].accuracy).toBe(1);
    expect(m.groups[3].accuracy).toBe(0.5);
    expect(m.worst_group_accuracy).toBeCloseTo(1 / 3, 12);
    // (10·1/3 + 2·1 + 3·0.5) / (10 + 2 + 3): the empty group's training weight is left out
    expect(m.average_accuracy).toBeCloseTo(41 / 90, 12);
    expect(m.mean_accuracy).toBeCloseTo(11 / 18, 12);
  });

  it('natural label order: output index = y', () => {
    const m = groupMetrics({ split: 'test', outputs, numClasses: 2, samples, trainGroupCounts: train, groupNames: names, labelOrder: 'natural' });
    expect(m.groups.map((g) => g.correct)).toEqual([2, 0, 0, 2]);
    expect(m.worst_group_accuracy).toBe(0);
    expect(m.average_accuracy).toBeCloseTo(49 / 90, 12);
    expect(m.mean_accuracy).toBeCloseTo(7 / 18, 12);
  });

  it('on the train split the weighted average equals the overall accuracy', () => {
    const counts = [3, 0, 2, 4];
    const m = groupMetrics({ split: 'train', outputs, numClasses: 2, samples, trainGroupCounts: counts, groupNames: names, labelOrder: 'original' });
    expect(m.average_accuracy).toBeCloseTo(5 / 9, 12);
  });

  it('no samples at all: every summary is null', () => {
    const m = groupMetrics({ split: 'val', outputs: new Float32Array(0), numClasses: 2, samples: [], trainGroupCounts: train, groupNames: names, labelOrder: 'original' });
    expect(m.groups.every((g) => g.accuracy === null && g.count === 0)).toBe(true);
    expect([m.worst_group_accuracy, m.average_accuracy, m.mean_accuracy]).toEqual([null, null, null]);
  });

  it('refuses outputs that do not match the samples', () => {
    expect(() => groupMetrics({ split: 'val', outputs: new Float32Array(3), numClasses: 2, samples: samples.slice(0, 2), trainGroupCounts: train, groupNames: names, labelOrder: 'original' })).toThrow(/3 outputs for 2 samples/);
  });
});
