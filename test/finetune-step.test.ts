import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { addon } from '../src/native.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { prunableNames } from '../src/neurons/rank.js';
import { fixturesDir } from './helpers/python.js';
import { maxAbsDiff, numbers, read, relErr } from './helpers/native.js';

const fx = (f: string) => join(fixturesDir, 'finetune', f);

describe('NT-Xent', () => {
  it('equals the row-by-row PyTorch reference (two views, 2B rows, self and partner excluded) within 1e-6', async () => {
    const ck = await addon().readCheckpoint(fx('ntxent.pth'));
    for (const name of ck.keys([])) {
      const a = ck.tensor([name, 'a']);
      const b = ck.tensor([name, 'b']);
      const t = numbers(ck.tensor([name, 't']))[0];
      const want = numbers(ck.tensor([name, 'loss']))[0];
      const got = addon().ntXent({ a: a.data as Float32Array, b: b.data as Float32Array, rows: a.shape[0], cols: a.shape[1], temperature: t });
      expect(Math.abs(got - want), name).toBeLessThan(1e-6);
    }
  });
});

describe('finetune-prune step', () => {
  it('masks exactly ceil(P*N) weights (ties to the lower index) and one step equals PyTorch (three passes, combined loss, Adam)', async () => {
    const ref = await addon().readCheckpoint(fx('step.pth'));
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    await loadWeights(m, await read('resnet18.zip.pth'));
    m.setOptimizer({ type: 'adam', lr: 2e-4 });
    const names = prunableNames(m.info());
    expect(names).toHaveLength(20); // every conv of resnet18, downsample convs included
    const { k } = await m.maskMagnitude({ names, fraction: 0.01 });
    expect(k).toBe(numbers(ref.tensor(['k']))[0]);
    const stats = m.maskStats();
    const sizes = Object.fromEntries(m.info().parameters.map((p) => [p.name, p.shape.reduce((a, b) => a * b, 1)]));
    const maskedCount = Object.entries(stats).reduce((a, [n, share]) => a + Math.round(share * sizes[n]), 0);
    expect(maskedCount).toBe(k);
    // the same elements as PyTorch's stable sort picks
    const want = numbers(ref.tensor(['masked']));
    let off = 0;
    for (const n of names) {
      const w = numbers(m.tensor(n));
      const share = want.slice(off, off + w.length).reduce((a, b) => a + b, 0) / w.length;
      expect(Math.abs(stats[n] - share), n).toBeLessThan(1e-9);
      off += w.length;
    }
    const x = ref.tensor(['inputs']);
    const r = await m.finetuneStep(
      { tensor: x.data as Float32Array, shape: x.shape as [number, 3, number, number] },
      { targets: new Int32Array(numbers(ref.tensor(['targets']))), temperature: 0.5, ceWeight: 0.2, bnUpdate: 'all' },
    );
    expect(Math.abs(r.total - numbers(ref.tensor(['total']))[0])).toBeLessThan(1e-5);
    expect(Math.abs(r.ntxent - numbers(ref.tensor(['ntxent']))[0])).toBeLessThan(1e-5);
    expect(Math.abs(r.ce - numbers(ref.tensor(['ce']))[0])).toBeLessThan(1e-6);
    let worst = 0;
    for (const n of ref.keys(['after'])) {
      const got = numbers(m.tensor(n));
      const exp = numbers(ref.tensor(['after', n]));
      const e = n.endsWith('num_batches_tracked') ? maxAbsDiff(got, exp) : relErr(got, exp);
      worst = Math.max(worst, e);
      expect(e, n).toBeLessThan(1e-4);
    }
    console.log(`finetune step: worst relative error over ${ref.keys(['after']).length} tensors ${worst.toExponential(2)}`);
  });

  it('AND-s two criteria and never changes the stored weights', async () => {
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    await loadWeights(m, await read('resnet18.zip.pth'));
    const names = prunableNames(m.info());
    const before = numbers(m.tensor('layer1.0.conv1.weight'));
    await m.maskMagnitude({ names, fraction: 0.01 });
    const a = m.maskStats()['layer1.0.conv1.weight'];
    m.maskChannels({ channels: [{ name: 'layer1.0.conv1.weight', index: 3 }] });
    const b = m.maskStats()['layer1.0.conv1.weight'];
    // channel 3 holds 1/64 of the layer; the union can only be larger than either part
    expect(b).toBeGreaterThan(a);
    expect(b).toBeLessThanOrEqual(a + 1 / 64 + 1e-12);
    expect(b).toBeGreaterThanOrEqual(1 / 64);
    expect(numbers(m.tensor('layer1.0.conv1.weight'))).toEqual(before);
    m.clearMasks();
    expect(m.maskStats()).toEqual({});
  });
});
