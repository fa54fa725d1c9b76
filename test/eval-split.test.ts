import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { createModel, loadWeights, type Model } from '../src/model/index.js';
import { ImageCache, loadBatches, openDataset, type Dataset } from '../src/data/index.js';
import { groupMetrics } from '../src/metrics/groups.js';
import { evaluateSplit } from '../src/eval/evaluate-split.js';
import { read } from './helpers/native.js';
import { tinyDataset } from './helpers/datasets.js';

let ds: Dataset;
let model: Model;

beforeAll(async () => {
  const { root } = await tinyDataset({ perGroup: [3, 2, 2, 4], w: 48, h: 40, seed: 11 });
  ds = await openDataset({ dataset: 'waterbirds', root });
  model = createModel({ arch: 'resnet18', device: 'cpu' });
  await loadWeights(model, await read('resnet18.zip.pth'));
});

describe('evaluateSplit', () => {
  it('one pass: outputs in split order equal the model on the loader batches, metrics from them', async () => {
    const cache = new ImageCache();
    const progress: [number, number][] = [];
    const r = await evaluateSplit(model, ds, 'test', { resolution: 32, batchSize: 4, cache, onProgress: (d, t) => progress.push([d, t]) });
    expect(r.outputs.length).toBe(11 * 2);
    expect(progress.at(-1)).toEqual([11, 11]);
    const want: number[] = [];
    for await (const b of loadBatches(ds.samples.test, { resolution: 32, batchSize: 4 })) {
      want.push(...(await model.forward({ images: b.images, shape: b.shape })));
    }
    expect(Array.from(r.outputs)).toEqual(want);
    expect(r.metrics).toEqual(
      groupMetrics({ split: 'test', outputs: r.outputs, numClasses: 2, samples: ds.samples.test, trainGroupCounts: ds.trainGroupCounts, groupNames: ds.groupNames, labelOrder: 'original' }),
    );
    expect(r.metrics.groups.map((g) => g.count)).toEqual([3, 2, 2, 4]);
    expect(r.metrics.skipped).toBeUndefined();
    // second pass: every image from the cache, the same outputs
    const misses = cache.misses;
    const again = await evaluateSplit(model, ds, 'test', { resolution: 32, batchSize: 4, cache });
    expect(cache.misses).toBe(misses);
    expect(cache.hits).toBe(11);
    expect(Array.from(again.outputs)).toEqual(want);
    // the natural label order flips which output is correct
    const nat = await evaluateSplit(model, ds, 'test', { resolution: 32, batchSize: 4, cache, labelOrder: 'natural' });
    for (const g of nat.metrics.groups) expect(g.correct).toBe(g.count - r.metrics.groups[g.id].correct);
  });

  it('skipBadImages: an undecodable image gets a NaN row, the metrics leave it out and count it', async () => {
    const broken = { ...ds, samples: { ...ds.samples, val: ds.samples.val.map((s) => ({ ...s })) } };
    const bad = broken.samples.val[2];
    bad.file = bad.file.replace(/\.jpg$/, '_bad.jpg');
    writeFileSync(bad.file, Buffer.alloc(100, 7));
    await expect(evaluateSplit(model, broken, 'val', { resolution: 32, batchSize: 4 })).rejects.toThrow(/_bad\.jpg: cannot decode image .*metadata line/);
    const r = await evaluateSplit(model, broken, 'val', { resolution: 32, batchSize: 4, skipBadImages: true });
    expect(r.metrics.skipped).toBe(1);
    expect(Number.isNaN(r.outputs[4])).toBe(true);
    expect(r.metrics.groups.reduce((a, g) => a + g.count, 0)).toBe(10);
    expect(r.metrics.groups[bad.group].count).toBe([3, 2, 2, 4][bad.group] - 1);
  });
});
