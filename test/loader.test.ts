import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ImageCache, loadBatches, openDataset, randomResizedCropBox, epochOrder, evalTransform, type Dataset, type ImageBatch, type Sample } from '../src/data/index.js';
import { Rng } from '../src/util/random.js';
import { tinyDataset } from './helpers/datasets.js';

let ds: Dataset;

beforeAll(async () => {
  const { root } = await tinyDataset({ perGroup: [4, 3, 3, 4], w: 50, h: 38, seed: 3 });
  ds = await openDataset({ dataset: 'folder', root });
});

async function collect(it: AsyncIterable<ImageBatch>): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function digest(batches: ImageBatch[]): string {
  const h = createHash('sha256');
  for (const b of batches) {
    h.update(JSON.stringify([b.shape, b.samples.map((s) => s.index)]));
    h.update(b.images);
  }
  return h.digest('hex');
}

describe('loader', () => {
  it('eval batches: metadata order, NHWC uint8 R x R, last batch partial, each image as evalTransform gives it', async () => {
    const batches = await collect(loadBatches(ds.samples.train, { resolution: 24, batchSize: 5 }));
    expect(batches.map((b) => b.shape)).toEqual([[5, 24, 24, 3], [5, 24, 24, 3], [4, 24, 24, 3]]);
    expect(batches.flatMap((b) => b.samples.map((s) => s.index))).toEqual([...Array(14).keys()]);
    const one = await evalTransform(ds.samples.train[7].file, 24);
    expect(Buffer.from(batches[1].images.subarray(2 * 24 * 24 * 3, 3 * 24 * 24 * 3)).equals(Buffer.from(one))).toBe(true);
  });

  it('same seed and epoch give the same shuffled, augmented batches; another epoch does not', async () => {
    const o = { resolution: 20, batchSize: 4, shuffle: true, augment: true, seed: 7, concurrency: 3 };
    const a = digest(await collect(loadBatches(ds.samples.train, { ...o, epoch: 1 })));
    const b = digest(await collect(loadBatches(ds.samples.train, { ...o, epoch: 1, concurrency: 8, prefetch: 4 })));
    const c = digest(await collect(loadBatches(ds.samples.train, { ...o, epoch: 2 })));
    const d = digest(await collect(loadBatches(ds.samples.train, { ...o, epoch: 1, seed: 8 })));
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(d).not.toBe(a);
    expect(epochOrder(14, { shuffle: true, seed: 7, epoch: 1 })).not.toEqual([...Array(14).keys()]);
    expect([...epochOrder(14, { shuffle: true, seed: 7, epoch: 1 })].sort((x, y) => x - y)).toEqual([...Array(14).keys()]);
  });

  it('augmentation changes the pixels (crop and flip), the eval transform does not depend on the seed', async () => {
    const aug = await collect(loadBatches(ds.samples.val, { resolution: 20, batchSize: 14, augment: true, seed: 1 }));
    const ev = await collect(loadBatches(ds.samples.val, { resolution: 20, batchSize: 14, seed: 1 }));
    const ev2 = await collect(loadBatches(ds.samples.val, { resolution: 20, batchSize: 14, seed: 2 }));
    expect(Buffer.from(aug[0].images).equals(Buffer.from(ev[0].images))).toBe(false);
    expect(Buffer.from(ev2[0].images).equals(Buffer.from(ev[0].images))).toBe(true);
  });

  it('the cache: a second eval pass over the same split decodes nothing and gives the same bytes', async () => {
    const cache = new ImageCache();
    const first = await collect(loadBatches(ds.samples.test, { resolution: 16, batchSize: 6, cache }));
    expect([cache.hits, cache.misses, cache.size]).toEqual([0, 14, 14]);
    expect(cache.bytes).toBe(14 * 16 * 16 * 3);
    const second = await collect(loadBatches(ds.samples.test, { resolution: 16, batchSize: 6, cache }));
    expect([cache.hits, cache.misses]).toEqual([14, 14]);
    expect(digest(second)).toBe(digest(first));
    // another resolution is another key; augmented batches bypass the cache
    await collect(loadBatches(ds.samples.test, { resolution: 12, batchSize: 6, cache }));
    expect(cache.misses).toBe(28);
    await collect(loadBatches(ds.samples.test, { resolution: 16, batchSize: 6, cache, augment: true }));
    expect([cache.hits, cache.misses]).toEqual([14, 28]);
    // a full cache keeps what it has
    const small = new ImageCache(3 * 16 * 16 * 3);
    await collect(loadBatches(ds.samples.test, { resolution: 16, batchSize: 6, cache: small }));
    await collect(loadBatches(ds.samples.test, { resolution: 16, batchSize: 6, cache: small }));
    expect([small.size, small.hits]).toEqual([3, 3]);
  });

  it('an undecodable image: an error naming the file and metadata line, or skipped and reported', async () => {
    const bad: Sample = { ...ds.samples.val[4] };
    bad.file = bad.file.replace(/\.jpg$/, '_broken.jpg');
    writeFileSync(bad.file, Buffer.from('this is not a JPEG file'));
    const list = [...ds.samples.val.slice(0, 4), bad, ...ds.samples.val.slice(5)];
    await expect(collect(loadBatches(list, { resolution: 16, batchSize: 4 }))).rejects.toThrow(
      new RegExp(`${bad.file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: cannot decode image \\(.*\\) \\(metadata line ${bad.line}, val split; use --skip-bad-images`),
    );
    const skipped: [number, string][] = [];
    const batches = await collect(loadBatches(list, { resolution: 16, batchSize: 4, skipBadImages: true, onSkip: (s, r) => skipped.push([s.line, r]) }));
    expect(skipped).toHaveLength(1);
    expect(skipped[0][0]).toBe(bad.line);
    expect(batches.map((b) => b.shape[0])).toEqual([4, 3, 4, 2]);
    expect(batches.flatMap((b) => b.samples.map((s) => s.index))).toEqual(list.filter((s) => s !== bad).map((s) => s.index));
  });

  it('refuses bad options', async () => {
    await expect(collect(loadBatches(ds.samples.val, { resolution: 0, batchSize: 4 }))).rejects.toThrow(/resolution must be a positive integer, got 0/);
    await expect(collect(loadBatches(ds.samples.val, { resolution: 8, batchSize: 2.5 }))).rejects.toThrow(/batchSize must be a positive integer/);
  });
});

describe('RandomResizedCrop parameters (torchvision get_params)', () => {
  it('boxes lie inside the image with scale 0.7-1.0 and ratio 3/4-4/3', () => {
    const rng = new Rng(5);
    for (let t = 0; t < 2000; t++) {
      const W = 40 + (t % 300);
      const H = 30 + ((t * 7) % 200);
      const b = randomResizedCropBox(W, H, rng);
      expect(b.i >= 0 && b.j >= 0 && b.i + b.h <= H && b.j + b.w <= W).toBe(true);
      const area = (b.w * b.h) / (W * H);
      if (W / H >= 0.75 && W / H <= 4 / 3) expect(area).toBeGreaterThan(0.6);
      expect(area).toBeLessThanOrEqual(1);
    }
  });

  it('falls back to a centre crop clamped to the ratio range when 10 tries fail', () => {
    // a 1000 x 10 strip: no box of >= 70% area and ratio <= 4/3 fits, so h = 10 and w = round(10·4/3) = 13
    expect(randomResizedCropBox(1000, 10, new Rng(1))).toEqual({ i: 0, j: Math.floor((1000 - 13) / 2), h: 10, w: 13 });
    expect(randomResizedCropBox(10, 1000, new Rng(1))).toEqual({ i: Math.floor((1000 - 13) / 2), j: 0, h: 13, w: 10 });
  });
});
