import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createModel, loadWeights } from '../src/model/index.js';
import type { Batch } from '../src/native.js';
import { SpurmemError } from '../src/util/errors.js';
import { fixture, numbers, read, relErr } from './helpers/native.js';
import { pythonCode, testDir } from './helpers/python.js';

async function inputs(): Promise<Batch> {
  const t = (await read('inputs.pth')).tensor([]);
  return { tensor: t.data as Float32Array, shape: t.shape as [number, 3, number, number] };
}

function randomBatch(n: number, side: number, seed: number): Batch {
  let s = seed >>> 0;
  const images = new Uint8Array(n * side * side * 3);
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    images[i] = s >>> 24;
  }
  return { images, shape: [n, side, side, 3] };
}

describe('forward over a range of stages', () => {
  it('stages and stageOf: stem, each block, head (ResNet and ViT)', () => {
    const r18 = createModel({ arch: 'resnet18', seed: 1 });
    expect(r18.stages()).toBe(10);
    expect(r18.stageOf('conv1.weight')).toBe(0);
    expect(r18.stageOf('bn1.running_mean')).toBe(0);
    expect(r18.stageOf('layer1.0.conv1.weight')).toBe(1);
    expect(r18.stageOf('layer2.1.bn1.running_var')).toBe(4);
    expect(r18.stageOf('layer3.0.downsample.0.weight')).toBe(5);
    expect(r18.stageOf('layer4.1.conv2.weight')).toBe(8);
    expect(r18.stageOf('fc.0.weight')).toBe(9);
    expect(r18.stageOf('layer5.0.conv1.weight')).toBe(-1);
    const r50 = createModel({ arch: 'resnet50', seed: 1 });
    expect(r50.stages()).toBe(18);
    expect(r50.stageOf('layer4.2.conv3.weight')).toBe(16);
    expect(r50.stageOf('layer3.5.conv1.weight')).toBe(13);
    const vit = createModel({ arch: 'deit_tiny', depth: 2, imageSize: 32, seed: 1 });
    expect(vit.stages()).toBe(4);
    expect(vit.stageOf('pos_embed')).toBe(0);
    expect(vit.stageOf('patch_embed.proj.weight')).toBe(0);
    expect(vit.stageOf('blocks.1.mlp.fc1.weight')).toBe(2);
    expect(vit.stageOf('norm.weight')).toBe(3);
    expect(vit.stageOf('head.0.weight')).toBe(3);
    // every parameter belongs to a stage
    for (const m of [r18, r50, vit]) for (const p of m.info().parameters) expect(p.stage, p.name).toBeGreaterThanOrEqual(0);
  });

  it('ResNet-50 stage outputs match torchvision module by module (1e-5 relative)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-stages-'));
    const out = join(dir, 'stages.pth');
    // torchvision's resnet50 with the fixture's weights: the output after the stem, after chosen blocks,
    // and the head's
    pythonCode(`
import sys, torch
sys.path.insert(0, ${JSON.stringify(join(testDir, 'fixtures'))})
from reference import resnet
torch.set_num_threads(1)
m = resnet("resnet50").eval()
m.load_state_dict(torch.load(${JSON.stringify(fixture('resnet50.zip.pth'))}))
x = torch.load(${JSON.stringify(fixture('inputs.pth'))})
blocks = [b for l in (m.layer1, m.layer2, m.layer3, m.layer4) for b in l]
outs = {}
with torch.no_grad():
    y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    outs["1"] = y.clone()
    for i, b in enumerate(blocks):
        y = b(y)
        outs[str(i + 2)] = y.clone()
    outs["18"] = m.fc(torch.flatten(m.avgpool(y), 1))
torch.save(outs, ${JSON.stringify(out)})
`);
    const want = await read(out);
    const m = createModel({ arch: 'resnet50', device: 'cpu' });
    await loadWeights(m, await read('resnet50.zip.pth'));
    const x = await inputs();
    for (const to of [1, 2, 4, 8, 14, 17, 18]) {
      const got = await m.forward(x, { to });
      const w = numbers(want.tensor([String(to)]));
      expect(got.length, `stage ${to}`).toBe(w.length);
      expect(relErr(got, w), `output of stages [0, ${to})`).toBeLessThan(1e-5);
    }
    // a later range from a kept input: stages [8, 14) give torchvision's output of block 13
    await m.forward(x, { to: 8, keep: [8] });
    const mid = await m.forward(null, { from: 8, to: 14 });
    expect(relErr(mid, numbers(want.tensor(['14'])))).toBeLessThan(1e-5);
  }, 120_000);

  for (const [arch, opts] of [
    ['resnet18', { imageSize: 64 }],
    ['resnet50', { imageSize: 64 }],
    ['deit_tiny', { depth: 3, imageSize: 32 }],
  ] as const) {
    it(`${arch}: the suffix from any kept stage input gives the full forward's outputs bit for bit`, async () => {
      const m = createModel({ arch, seed: 3, ...opts });
      const b = randomBatch(5, opts.imageSize, 7);
      const full = await m.forward(b);
      const n = m.stages();
      const starts = Array.from({ length: n - 1 }, (_, i) => i + 1);
      // one prefix pass keeping every stage input, then each suffix
      const empty = await m.forward(b, { to: n - 1, keep: starts });
      expect(empty.length).toBe(0);
      for (const s of starts) expect(await m.forward(null, { from: s }), `from stage ${s}`).toEqual(full);
      // a kept input stays valid after other suffixes ran (no stage writes into its input)
      expect(await m.forward(null, { from: 1 })).toEqual(full);
      m.releaseActivations();
      await expect(m.forward(null, { from: 1 })).rejects.toThrow(/no kept input of that stage/);
    });
  }

  it('a suffix sees edited weights, the kept prefix does not need them', async () => {
    const m = createModel({ arch: 'resnet18', seed: 4, imageSize: 64 });
    const b = randomBatch(4, 64, 9);
    await m.forward(b, { to: 8, keep: [8] });
    const edits = [{ name: 'layer4.1.conv2.weight', index: 3 }, { name: 'layer4.1.conv1.weight', index: 10 }];
    const original = m.snapshotChannels(edits);
    await m.modifyChannels({ edits, mode: 'random_init', std: 0.5, seed: 5 });
    const edited = await m.forward(b);
    expect(await m.forward(null, { from: 8 })).toEqual(edited);
    const saved = m.snapshotChannels(edits);
    m.restore(original);
    const plain = await m.forward(b);
    expect(plain).not.toEqual(edited);
    expect(await m.forward(null, { from: 8 })).toEqual(plain);
    // a channel snapshot puts back exactly the edited rows
    m.restore(saved);
    expect(await m.forward(b)).toEqual(edited);
    m.restore(original);
    expect(await m.forward(b)).toEqual(plain);
    m.releaseSnapshot(original);
    m.releaseSnapshot(saved);
  });

  it('bad ranges and inputs are errors naming the forward pass', async () => {
    const m = createModel({ arch: 'resnet18', seed: 1, imageSize: 32 });
    const b = randomBatch(2, 32, 1);
    await expect(m.forward(b, { to: 11 })).rejects.toThrow(SpurmemError);
    await expect(m.forward(b, { to: 11 })).rejects.toThrow(/^forward pass: resnet18: stage range \[0, 11\) is not within \[0, 10\)/);
    await expect(m.forward(null, { from: 3, to: 3 })).rejects.toThrow(/stage range \[3, 3\)/);
    await expect(m.forward(b, { from: 2 })).rejects.toThrow(/a batch is read only from stage 0; from stage 2 pass null/);
    await expect(m.forward(b, { to: 4, keep: [5] })).rejects.toThrow(/kept stage 5 is not within \[from, to\] = \[0, 4\]/);
    expect(() => m.snapshotChannels([{ name: 'fc.0.weight', index: 2 }])).toThrow(/'fc.0.weight' has no output channel 2/);
  });
});
