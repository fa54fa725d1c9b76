/**
 * loadPretrained: torchvision ResNet files (fc.* dropped and reported) and training checkpoints (strict,
 * LayerNorm eps checked). The DeiT and in21k layouts are covered by parity-vit.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon, type Batch } from '../src/native.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { checkpointLnEps, describePretrained, loadPretrained } from '../src/weights.js';
import { numbers } from './helpers/native.js';
import { pythonCode } from './helpers/python.js';

const dir = mkdtempSync(join(tmpdir(), 'spurmem-weights-'));

function batch(n: number, size: number, seed: number): Batch {
  const data = new Float32Array(n * 3 * size * size);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = s / 2147483648 - 0.5;
  }
  return { tensor: data, shape: [n, 3, size, size] };
}

describe('loadPretrained', () => {
  it('torchvision ResNet ImageNet layout: fc.* (1000 classes) skipped and reported, the rest strict and equal', async () => {
    const file = join(dir, 'resnet18-imagenet.pth');
    pythonCode(`import torch, torchvision\ntorch.manual_seed(5)\ntorch.save(torchvision.models.resnet18().state_dict(), ${JSON.stringify(file)})`);
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    const rep = await loadPretrained(m, file);
    expect(rep.kind).toBe('torchvision');
    expect(rep.path).toEqual([]);
    expect(rep.skipped).toEqual(['fc.weight', 'fc.bias']);
    expect(rep.fresh).toEqual(['fc.0.weight', 'fc.0.bias']);
    expect(rep.missing).toEqual([]);
    expect(rep.unexpected).toEqual([]);
    expect(rep.loaded).toHaveLength(120);
    expect(describePretrained(rep)).toMatch(/^loaded 120 tensors from .*resnet18-imagenet\.pth \(torchvision\); skipped fc\.weight, fc\.bias; new fc\.0\.weight, fc\.0\.bias$/);
    const ck = await addon().readCheckpoint(file);
    for (const k of ['conv1.weight', 'layer4.1.bn2.running_var', 'layer3.0.downsample.0.weight']) {
      expect(numbers(m.tensor(k)), k).toEqual(numbers(ck.tensor([k])));
    }
    // a ViT cannot take it: strict loading names what is missing, and which architecture the file is
    await expect(loadPretrained(createModel({ arch: 'deit_tiny', depth: 1, imageSize: 32, device: 'cpu' }), file)).rejects.toThrow(/resnet18-imagenet\.pth: .*Missing key\(s\) in state_dict: "cls_token".*its keys and shapes are those of --arch resnet18/);
    // loaded as a 2-class model's own weights, the 1000-class head is named for what it is
    await expect(loadWeights(createModel({ arch: 'resnet18', head: 'linear', device: 'cpu' }), ck)).rejects.toThrow(/its head has 1000 classes: an ImageNet classifier, which --pretrained FILE loads/);
  });

  it('training checkpoints (model_state_dict) load strictly, head included, and the LayerNorm eps they record is checked', async () => {
    const o = { arch: 'deit_tiny', depth: 2, imageSize: 32, device: 'cpu' } as const;
    const a = createModel({ ...o, seed: 1 });
    const file = join(dir, 'epoch_3_checkpoints.pth.tar');
    await a.save(file, { epoch: 3, loss: 0.5, optimizer: false, extra: { ln_eps: 1e-6 } });
    expect(checkpointLnEps(await addon().readCheckpoint(file))).toBe(1e-6);
    const b = createModel({ ...o, seed: 2 });
    const x = batch(2, 32, 9);
    const before = await b.forward(x);
    const rep = await loadPretrained(b, file);
    expect(rep.kind).toBe('checkpoint');
    expect(rep.path).toEqual(['model_state_dict']);
    expect(rep.skipped).toEqual([]);
    expect(rep.fresh).toEqual([]);
    expect(rep.lnEps).toBe(1e-6);
    expect(rep.loaded).toContain('head.0.weight');
    const after = await b.forward(x);
    expect(Array.from(after)).toEqual(Array.from(await a.forward(x)));
    expect(Array.from(after)).not.toEqual(Array.from(before));
    await expect(loadPretrained(createModel({ ...o, lnEps: 1e-5 }), file)).rejects.toThrow(/epoch_3_checkpoints\.pth\.tar: this checkpoint was trained with LayerNorm eps 0\.000001, the model is built with 0\.00001.*--vit-ln-eps/);
    await expect(loadPretrained(createModel({ ...o, head: 'linear' }), file)).rejects.toThrow(/Missing key\(s\) in state_dict: "head\.weight", "head\.bias"\. Unexpected key\(s\) in state_dict: "head\.0\.weight", "head\.0\.bias"/);
  });

  it('a file without a state dict is refused with its name', async () => {
    const file = join(dir, 'not-weights.pth');
    await addon().writeCheckpoint(file, { epoch: 1, note: 'no tensors here' });
    await expect(loadPretrained(createModel({ arch: 'resnet18', device: 'cpu' }), file)).rejects.toThrow(/not-weights\.pth: no state dict found/);
  });
});
