/**
 * Vision Transformer parity with a PyTorch reference that has timm's structure and names
 * (test/fixtures/reference.py, fixtures by test/fixtures/make_vit.py).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { addon, type Batch, type NativeCheckpoint } from '../src/native.js';
import { createModel, loadWeights, type Model } from '../src/model/index.js';
import { loadPretrained } from '../src/weights.js';
import { maxAbsDiff, numbers, relErr } from './helpers/native.js';
import { fixturesDir } from './helpers/python.js';

const vitFile = (name: string) => join(fixturesDir, 'vit', name);
const readVit = (name: string): Promise<NativeCheckpoint> => addon().readCheckpoint(vitFile(name));

/** The fixture's images of one size (2 of them, or the first `n`). */
async function input(size: number, n?: number): Promise<Batch> {
  const t = (await readVit('inputs.pth')).tensor([String(size)]);
  const [b, c, h, w] = t.shape;
  const k = n ?? b;
  return { tensor: (t.data as Float32Array).subarray(0, k * c * h * w), shape: [k, 3, h, w] };
}

/** Puts the 2-way head the reference used (head.0.* in the file) into the model's head. */
async function setHead(m: Model, file: string): Promise<void> {
  const h = await readVit(file);
  const name = m.info().head === 'softmax' ? 'head.0' : 'head';
  m.setTensor(`${name}.weight`, h.tensor(['head.0.weight']));
  m.setTensor(`${name}.bias`, h.tensor(['head.0.bias']));
}

const BACKBONE_KEYS = (depth: number) => {
  const keys = ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias'];
  for (let i = 0; i < depth; i++) {
    for (const m of ['norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2']) keys.push(`blocks.${i}.${m}.weight`, `blocks.${i}.${m}.bias`);
  }
  return [...keys, 'norm.weight', 'norm.bias'];
};

describe('ViT parity with the PyTorch reference (timm names)', () => {
  for (const head of ['softmax', 'linear'] as const) {
    it(`deit_tiny from the DeiT layout ({model: ...}), ${head} head: eval outputs within 1e-4`, async () => {
      const m = createModel({ arch: 'deit_tiny', head, device: 'cpu' });
      const rep = await loadPretrained(m, vitFile('deit_tiny.pth'));
      expect(rep.kind).toBe('deit');
      expect(rep.path).toEqual(['model']);
      expect(rep.skipped).toEqual(['head.weight', 'head.bias']);
      expect(rep.fresh).toEqual(head === 'softmax' ? ['head.0.weight', 'head.0.bias'] : ['head.weight', 'head.bias']);
      expect(rep.missing).toEqual([]);
      expect(rep.unexpected).toEqual([]);
      expect(rep.loaded).toEqual(BACKBONE_KEYS(12));
      await setHead(m, 'head_deit_tiny.pth');
      const want = numbers((await readVit('expected_deit_tiny.pth')).tensor([head]));
      const err = maxAbsDiff(await m.forward(await input(224)), want);
      console.log(`deit_tiny ${head}: max abs error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    });

    it(`ViT-L/16 (depth 2) from the in21k layout, ${head} head: pre_logits and the 21843-class head are reported, outputs within 1e-4`, async () => {
      const m = createModel({ arch: 'vit_large', depth: 2, head, device: 'cpu' });
      expect(m.info().depth).toBe(2);
      const rep = await loadPretrained(m, vitFile('vit_large_in21k.pth'));
      const exp = await readVit('expected_vit_large.pth');
      expect(rep.kind).toBe('in21k');
      expect(rep.path).toEqual([]);
      expect(rep.skipped).toEqual(['pre_logits.fc.weight', 'pre_logits.fc.bias', 'head.weight', 'head.bias']);
      // what the original's strict=False load dropped without a word is exactly what we report
      const pyUnexpected = exp.toObject(['unexpected']) as string[];
      expect(pyUnexpected).toEqual(['pre_logits.fc.weight', 'pre_logits.fc.bias']);
      for (const k of pyUnexpected) expect(rep.skipped).toContain(k);
      expect(rep.missing).toEqual([]);
      expect(rep.unexpected).toEqual([]);
      expect(rep.loaded).toEqual(BACKBONE_KEYS(2));
      await setHead(m, 'head_vit_large.pth');
      const err = maxAbsDiff(await m.forward(await input(224, 1)), numbers(exp.tensor([head])));
      console.log(`vit_large (depth 2) ${head}: max abs error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    });
  }

  it('one training step of deit_tiny (softmax head, CE on the probabilities): loss and every gradient within 1e-4 relative', async () => {
    const m = createModel({ arch: 'deit_tiny', device: 'cpu' });
    await loadPretrained(m, vitFile('deit_tiny.pth'));
    await setHead(m, 'head_deit_tiny.pth');
    const ref = await readVit('grads_deit_tiny.pth');
    const targets = new Int32Array(numbers(ref.tensor(['targets'])));
    const g = await m.gradients(await input(224), { targets, train: true, raw: true });
    const loss = numbers(ref.tensor(['loss']))[0];
    expect(Math.abs(g.loss - loss) / loss).toBeLessThan(1e-5);
    const names = ref.keys(['grads']);
    expect(Object.keys(g.grads!)).toEqual(names);
    let worst = 0;
    let worstName = '';
    for (const n of names) {
      const want = numbers(ref.tensor(['grads', n]));
      expect(want.some((v) => v !== 0), `${n} has a zero gradient in the reference`).toBe(true);
      const e = relErr(numbers(g.grads![n]), want);
      if (e > worst) [worst, worstName] = [e, n];
      expect(e, n).toBeLessThan(1e-4);
    }
    console.log(`deit_tiny gradients: worst relative error ${worst.toExponential(2)} (${worstName}) over ${names.length} tensors`);
  });

  it('LayerNorm eps: 1e-6 by default, 1e-5 on request, each equal to PyTorch with that eps', async () => {
    const ck = await readVit('eps.pth');
    const want6 = numbers(ck.tensor(['1e-06']));
    const want5 = numbers(ck.tensor(['1e-05']));
    expect(maxAbsDiff(want6, want5)).toBeGreaterThan(1e-3); // the fixture tells the two apart
    const x = await input(64);
    for (const [lnEps, want, other] of [[undefined, want6, want5], [1e-5, want5, want6]] as const) {
      const m = createModel({ arch: 'deit_tiny', depth: 2, imageSize: 64, head: 'linear', device: 'cpu', ...(lnEps ? { lnEps } : {}) });
      expect(m.info().lnEps).toBe(lnEps ?? 1e-6);
      const rep = await loadWeights(m, ck, { path: ['state_dict'] });
      expect(rep.missing).toEqual([]);
      const out = await m.forward(x);
      const err = maxAbsDiff(out, want);
      console.log(`LayerNorm eps ${lnEps ?? 1e-6}: max abs error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      expect(maxAbsDiff(out, other)).toBeGreaterThan(1e-3);
    }
  });

  for (const size of [64, 96, 320]) {
    it(`pos_embed for ${size} px: resampled as timm's resample_abs_pos_embed (bicubic, antialias) within 1e-5`, async () => {
      const m = createModel({ arch: 'deit_tiny', imageSize: size, head: 'linear', device: 'cpu' });
      const rep = await loadPretrained(m, vitFile('deit_tiny.pth'));
      const g = size / 16;
      expect(rep.resized).toEqual([`pos_embed 14x14 -> ${g}x${g}`]);
      const pe = await readVit('posembed.pth');
      const want = pe.tensor(['pos_embed', String(size)]);
      const got = m.tensor('pos_embed');
      expect(got.shape).toEqual([1, g * g + 1, 192]);
      expect(want.shape).toEqual(got.shape);
      const err = maxAbsDiff(numbers(got), numbers(want));
      console.log(`pos_embed ${size} px: max abs error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      if (size <= 96) {
        await setHead(m, 'head_deit_tiny.pth');
        const oerr = maxAbsDiff(await m.forward(await input(size)), numbers(pe.tensor(['linear', String(size)])));
        console.log(`deit_tiny at ${size} px: max abs output error ${oerr.toExponential(2)}`);
        expect(oerr).toBeLessThan(1e-4);
      }
    });
  }

  it('refuses what does not fit, naming the file and the keys', async () => {
    const small = createModel({ arch: 'deit_small', device: 'cpu' });
    await expect(loadPretrained(small, vitFile('deit_tiny.pth'))).rejects.toThrow(/deit_tiny\.pth: .*Size mismatch for "cls_token: checkpoint \[1, 1, 192\], model \[1, 1, 384\]"/);
    const deep = createModel({ arch: 'vit_large', depth: 3, device: 'cpu' });
    await expect(loadPretrained(deep, vitFile('vit_large_in21k.pth'))).rejects.toThrow(/vit_large_in21k\.pth: .*Missing key\(s\) in state_dict: "blocks\.2\.norm1\.weight"/);
    expect(() => createModel({ arch: 'deit_tiny', imageSize: 100 })).toThrow(/multiple of 16 \(patch size\), got 100/);
    expect(() => createModel({ arch: 'deit_tiny', depth: 0 })).toThrow(/depth must be a positive integer/);
    expect(() => createModel({ arch: 'resnet18', depth: 2 })).toThrow(/depth can only be set for a ViT/);
    expect(() => createModel({ arch: 'deit_tiny', lnEps: -1 })).toThrow(/eps must be a positive number/);
  });

  it('maskable slots are the qkv/proj/fc1/fc2 weights of every block', () => {
    const m = createModel({ arch: 'deit_tiny', depth: 2, imageSize: 32, device: 'cpu' });
    const maskable = m.info().parameters.filter((p) => p.maskable).map((p) => p.name);
    expect(maskable).toEqual([0, 1].flatMap((i) => ['attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2'].map((n) => `blocks.${i}.${n}.weight`)));
  });
});
