import { describe, expect, it } from 'vitest';
import { ARCHITECTURES, FAMILIES, Model, VITS, createModel, headKeys, isVit } from '../src/model/index.js';
import { addon } from '../src/native.js';
import { SpurmemError } from '../src/util/errors.js';

const batch = (n: number, side: number) => ({ tensor: new Float32Array(n * 3 * side * side), shape: [n, 3, side, side] as [number, number, number, number] });

describe('the Model class', () => {
  it('withSnapshot restores the named tensors after each repeat and after fn throws, and releases the snapshot', async () => {
    const m = createModel({ arch: 'deit_tiny', depth: 1, imageSize: 32, seed: 1 });
    expect(m).toBeInstanceOf(Model);
    const name = 'blocks.0.mlp.fc1.weight';
    const before = Array.from(m.tensor(name).data as Float32Array);
    const seen: number[] = [];
    const out = await m.withSnapshot([name], async (restore) => {
      for (let r = 0; r < 2; r++) {
        await m.modifyChannels({ edits: [{ name, index: 0 }], mode: 'zero' });
        seen.push((m.tensor(name).data as Float32Array)[0]);
        restore();
        expect(Array.from(m.tensor(name).data as Float32Array)).toEqual(before);
      }
      return 'done';
    });
    expect(out).toBe('done');
    expect(seen).toEqual([0, 0]);
    await expect(
      m.withSnapshot([name], async () => {
        await m.modifyChannels({ edits: [{ name, index: -1 }], mode: 'zero' });
        throw new Error('evaluation failed');
      }),
    ).rejects.toThrow('evaluation failed');
    expect(Array.from(m.tensor(name).data as Float32Array)).toEqual(before);
  });

  it('turns native errors into SpurmemErrors naming the operation, without a C++ backtrace', async () => {
    const m = createModel({ arch: 'resnet18', numClasses: 2 });
    await expect(m.forward({ tensor: new Float32Array(2), shape: [1, 3, 1, 1] })).rejects.toThrow(SpurmemError);
    await expect(m.forward({ tensor: new Float32Array(2), shape: [1, 3, 1, 1] })).rejects.toThrow(/^forward pass: batch.tensor length does not match batch.shape$/);
    // a libtorch error (c10::Error, whose what() carries a C++ backtrace): tokens that do not fit pos_embed
    const vit = createModel({ arch: 'deit_tiny', depth: 1, imageSize: 32 });
    const e = await vit.forward(batch(1, 48)).catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(SpurmemError);
    expect(e.message).toMatch(/^forward pass: /);
    expect(e.message).not.toMatch(/Exception raised from|frame #/);
    expect(() => m.channelNorms(['nope.weight'])).toThrow(/^channel norms: model resnet18 has no parameter 'nope.weight'$/);
    expect(() => m.tensor('nope')).toThrow(SpurmemError);
    await expect(m.modifyThreshold({ names: ['conv1.weight'], fraction: 1.5, mode: 'zero' })).rejects.toThrow(/^threshold edit: fraction must be within \[0, 1\], got 1.5$/);
    await expect(m.modifyChannels({ edits: [{ name: 'conv1.weight', index: 64 }], mode: 'zero' })).rejects.toThrow(/^modifying channels: channel 64 of 'conv1.weight' does not exist \(64 channels\)$/);
  });

  it('counts the weights a fraction means in TypeScript and hands native code the count', async () => {
    const m = createModel({ arch: 'resnet18', seed: 2 });
    const r = await m.modifyThreshold({ names: ['conv1.weight', 'layer1.0.conv1.weight'], fraction: 0.01, mode: 'zero' });
    expect(r.k).toBe(Math.ceil(0.01 * (64 * 3 * 7 * 7 + 64 * 64 * 3 * 3)));
    expect(r.selected['conv1.weight'] + r.selected['layer1.0.conv1.weight']).toBe(r.k);
    const mk = await m.maskMagnitude({ names: ['conv1.weight'], fraction: 0.5 });
    expect(mk.k).toBe(64 * 3 * 7 * 7 / 2);
    expect(m.maskStats()['conv1.weight']).toBeCloseTo(0.5, 6);
  });

  it('native code takes every value from TypeScript: a missing option is an error naming the key', () => {
    const spec = { arch: 'resnet18', family: 'resnet', numClasses: 2, head: 'softmax', lnEps: 1e-6, imageSize: 224, device: 'cpu', channelsLast: false, amp: '', block: 'basic', layers: [2, 2, 2, 2] };
    const Native = addon().Model as unknown as new (o: Record<string, unknown>) => unknown;
    expect(() => new Native(spec)).not.toThrow();
    const { numClasses: _, ...noClasses } = spec;
    expect(() => new Native(noClasses)).toThrow("Model options: 'numClasses' must be an integer");
    expect(() => new Native({ ...spec, family: 'mlp' })).toThrow(/unknown model family 'mlp' for resnet18/);
    const m = new Native(spec) as { forward(b: unknown, o: unknown): Promise<unknown> };
    expect(() => m.forward(batch(1, 8), { train: false })).toThrow("forward options: 'masked' must be a boolean");
  });
});

describe('the architecture table', () => {
  it('decides the family, head names and neurons in one place', () => {
    expect(VITS).toEqual(['deit_tiny', 'deit_small', 'deit_base', 'vit_large']);
    expect(isVit('deit_small')).toBe(true);
    expect(isVit('resnet50')).toBe(false);
    expect(isVit('vgg16')).toBe(false);
    expect(headKeys('resnet50', 'softmax')).toEqual({ weight: 'fc.0.weight', bias: 'fc.0.bias' });
    expect(headKeys('deit_tiny', 'linear')).toEqual({ weight: 'head.weight', bias: 'head.bias' });
    expect(FAMILIES.vit.isNeuron({ name: 'blocks.3.attn.qkv.weight', shape: [576, 192] })).toBe(true);
    expect(FAMILIES.vit.isNeuron({ name: 'blocks.3.attn.qkv.bias', shape: [576] })).toBe(false);
    expect(FAMILIES.resnet.isMainNeuron({ name: 'layer1.0.downsample.0.weight', shape: [64, 64, 1, 1] })).toBe(false);
    expect(FAMILIES.resnet.isNeuron({ name: 'layer1.0.downsample.0.weight', shape: [64, 64, 1, 1] })).toBe(true);
  });

  it('builds each architecture from its table entry (blocks, widths) as the model reports it', () => {
    const r50 = createModel({ arch: 'resnet50' }).info();
    expect(r50.family).toBe('resnet');
    expect(new Set(r50.parameters.filter((p) => p.name.startsWith('layer3.')).map((p) => p.name.split('.')[1])).size).toBe(ARCHITECTURES.resnet50.layers[2]);
    const vit = createModel({ arch: 'deit_small', depth: 2, imageSize: 32 }).info();
    expect(vit).toMatchObject({ family: 'vit', depth: 2, headName: 'head' });
    expect(vit.parameters.find((p) => p.name === 'cls_token')?.shape).toEqual([1, 1, ARCHITECTURES.deit_small.width]);
    expect(vit.parameters.find((p) => p.name === 'pos_embed')?.shape).toEqual([1, 5, 384]);
  });
});
