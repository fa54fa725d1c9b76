import { describe, expect, it } from 'vitest';
import { createModel, loadWeights } from '../src/model/index.js';
import type { Batch } from '../src/native.js';
import { maxAbsDiff, numbers, read, relErr } from './helpers/native.js';

async function inputs(): Promise<Batch> {
  const t = (await read('inputs.pth')).tensor([]);
  return { tensor: t.data as Float32Array, shape: t.shape as [number, 3, number, number] };
}

describe('ResNet parity with torchvision', () => {
  for (const [name, arch, head] of [
    ['resnet18', 'resnet18', 'softmax'],
    ['resnet50', 'resnet50', 'softmax'],
    ['resnet18_linear', 'resnet18', 'linear'],
  ] as const) {
    for (const format of ['zip', 'legacy']) {
      it(`${name} (${format} file): eval outputs match PyTorch within 1e-4`, async () => {
        const m = createModel({ arch, head, device: 'cpu' });
        const rep = await loadWeights(m, await read(`${name}.${format}.pth`));
        expect(rep.missing).toEqual([]);
        expect(rep.unexpected).toEqual([]);
        const out = await m.forward(await inputs());
        const want = numbers((await read('expected.pth')).tensor([name]));
        expect(maxAbsDiff(out, want)).toBeLessThan(1e-4);
      });
    }
  }

  it('one training step of resnet18: loss, every gradient (1e-4 relative) and BatchNorm buffers match', async () => {
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    await loadWeights(m, await read('resnet18.zip.pth'));
    const ref = await read('grads_resnet18.pth');
    const targets = new Int32Array(numbers(ref.tensor(['targets'])));
    const g = await m.gradients(await inputs(), { targets, train: true, raw: true });
    expect(Math.abs(g.loss - numbers(ref.tensor(['loss']))[0])).toBeLessThan(1e-6);
    const names = ref.keys(['grads']);
    expect(Object.keys(g.grads!)).toEqual(names);
    let worst = 0;
    for (const n of names) {
      const e = relErr(numbers(g.grads![n]), numbers(ref.tensor(['grads', n])));
      worst = Math.max(worst, e);
      expect(e, n).toBeLessThan(1e-4);
    }
    for (const n of ref.keys(['buffers_after'])) {
      expect(maxAbsDiff(numbers(m.tensor(n)), numbers(ref.tensor(['buffers_after', n]))), n).toBeLessThan(1e-5);
    }
    console.log(`worst relative gradient error: ${worst.toExponential(2)}`);
  });

  it('reports missing, unexpected and mismatched keys like load_state_dict', async () => {
    const m = createModel({ arch: 'resnet50', device: 'cpu' });
    await expect(loadWeights(m, await read('resnet18.zip.pth'))).rejects.toThrow(/Size mismatch for "layer1\.0\.conv1\.weight: checkpoint \[64, 64, 3, 3\], model \[64, 64, 1, 1\]"/);
    const r18 = createModel({ arch: 'resnet18', head: 'linear', device: 'cpu' });
    await expect(loadWeights(r18, await read('resnet18.zip.pth'))).rejects.toThrow(/Missing key\(s\) in state_dict: "fc\.weight", "fc\.bias"\. Unexpected key\(s\) in state_dict: "fc\.0\.weight", "fc\.0\.bias"/);
    const rep = await loadWeights(r18, await read('resnet18.zip.pth'), { skip: ['fc.'] });
    expect(rep.skipped).toEqual(['fc.0.weight', 'fc.0.bias']);
    expect(rep.loaded).toHaveLength(120);
  });
});
