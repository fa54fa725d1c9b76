import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { demoCounts, makeDemoDataset } from '../src/data/demo.js';
import { openDataset, SPLITS, groupCounts, imageSize } from '../src/data/index.js';
import { tempDir } from './helpers/datasets.js';

function treeDigest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(root);
  return out;
}

describe('make-demo (Fashion-Waterbirds)', () => {
  it("Waterbirds' group counts times the scale, at least 1 per group", () => {
    expect(demoCounts(1)).toEqual({ train: [3498, 184, 56, 1057], val: [467, 466, 133, 133], test: [2255, 2255, 642, 642] });
    expect(demoCounts(0.01)).toEqual({ train: [35, 2, 1, 11], val: [5, 5, 1, 1], test: [23, 23, 6, 6] });
    expect(demoCounts(0.0001)).toEqual({ train: [1, 1, 1, 1], val: [1, 1, 1, 1], test: [1, 1, 1, 1] });
  });

  it('writes the Waterbirds layout that openDataset reads; same seed, same bytes; no source image twice', async () => {
    const a = tempDir();
    const r = await makeDemoDataset({ out: a, scale: 0.02, width: 40, height: 30, seed: 5 });
    expect(r.images).toBe(236);
    const ds = await openDataset({ dataset: 'folder', root: a });
    for (const s of SPLITS) expect(groupCounts(ds.samples[s])).toEqual(demoCounts(0.02)[s]);
    expect(ds.groupNames).toEqual(['top on land', 'top on water', 'dress or coat on land', 'dress or coat on water']);
    const header = readFileSync(join(a, 'metadata.csv'), 'utf8').split('\n')[0];
    expect(header).toBe('img_id,img_filename,y,split,place,place_filename');
    // class sub-folders, one per Fashion-MNIST class; y follows the class sets
    const folders = new Set(ds.samples.train.map((s) => relative(a, s.file).split('/')[0]));
    expect([...folders].sort()).toEqual(['001.T_shirt_top', '003.Pullover', '004.Dress', '005.Coat', '007.Shirt']);
    for (const s of [...ds.samples.train, ...ds.samples.test]) {
      const folder = relative(a, s.file).split('/')[0];
      expect(s.y).toBe(['004.Dress', '005.Coat'].includes(folder) ? 1 : 0);
    }
    const files = [...ds.samples.train, ...ds.samples.val, ...ds.samples.test].map((s) => s.file);
    expect(new Set(files).size).toBe(files.length);
    expect(await imageSize(files[0])).toEqual({ width: 40, height: 30 });

    const b = tempDir();
    await makeDemoDataset({ out: b, scale: 0.02, width: 40, height: 30, seed: 5 });
    const da = treeDigest(a);
    expect(treeDigest(b)).toEqual(da);
    const c = tempDir();
    await makeDemoDataset({ out: c, scale: 0.02, width: 40, height: 30, seed: 6 });
    const dc = treeDigest(c);
    expect(dc['metadata.csv']).not.toBe(da['metadata.csv']);
  });

  it('the background is the easy cue: land is green/brown, water is blue', async () => {
    const root = tempDir();
    await makeDemoDataset({ out: root, scale: 0.005, width: 32, height: 32, seed: 1 });
    const ds = await openDataset({ dataset: 'folder', root });
    const sharp = (await import('sharp')).default;
    for (const s of ds.samples.test) {
      const st = await sharp(s.file).stats();
      const [r, , b] = st.channels.map((c) => c.mean);
      if (s.a === 1) expect(b).toBeGreaterThan(r + 40);
      else expect(b).toBeLessThan(r);
    }
  });

  it('refuses a non-empty --out, too large a scale, bad options and missing IDX files', async () => {
    const root = tempDir();
    writeFileSync(join(root, 'x.txt'), 'x');
    await expect(makeDemoDataset({ out: root, scale: 0.001 })).rejects.toThrow(/--out .* is not empty \(expected a new or empty folder\)/);
    await expect(makeDemoDataset({ out: tempDir(), scale: 3 })).rejects.toThrow(/--scale 3 needs 27375 images of class y = 0 .*there are 21000; the largest scale is 2\.3/);
    await expect(makeDemoDataset({ out: tempDir(), classes0: [1, 3], classes1: [3] })).rejects.toThrow(/must be non-empty and disjoint/);
    await expect(makeDemoDataset({ out: tempDir(), scale: 0.01, fashionMnistDir: tempDir() })).rejects.toThrow(/train-images-idx3-ubyte\.gz: no such file \(install Debian's dataset-fashion-mnist/);
    const prev = tempDir();
    await makeDemoDataset({ out: prev, scale: 0.001, width: 16 });
    await expect(makeDemoDataset({ out: prev, scale: 0.001, width: 16 })).rejects.toThrow(/an earlier demo dataset: add --force/);
    await makeDemoDataset({ out: prev, scale: 0.001, width: 16, force: true });
  });
});
