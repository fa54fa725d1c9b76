import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { study } from '../src/neurons/study.js';
import { train } from '../src/train/erm.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { smallDemo } from './helpers/demo-data.js';

describe('Vision Transformers through train and study', () => {
  it('trains deit_tiny at 32 px (LayerNorm eps recorded), then studies its qkv/proj/fc1/fc2 rows', async () => {
    const root = await smallDemo();
    const out = join(mkdtempSync(join(tmpdir(), 'spurmem-vit-')), 'run');
    const s = await train(
      { dataset: 'folder', root, arch: 'deit_tiny', resolution: 32, epochs: 1, batchSize: 32, optimizer: 'adam', lr: 1e-3, threads: 2, out, evalInitial: false, vitLnEps: 1e-5 },
      { log: () => {} },
    );
    expect(s.final.epoch).toBe(0);
    const ck = await readCheckpoint(join(out, 'epoch_0_checkpoints.pth.tar'));
    const meta = ck.toObject(['spurmem']) as { arch: string; ln_eps: number };
    expect(meta).toMatchObject({ arch: 'deit_tiny', ln_eps: 1e-5 });
    expect(ck.keys(['model_state_dict'])).toContain('blocks.11.mlp.fc2.weight');
    expect(ck.keys(['model_state_dict'])).toContain('head.0.weight');
    const r = await study({ run: out, split: 'val', ranking: 'largest', mode: 'zero', topK: 3, threads: 2, out: join(out, 'study') }, () => {});
    expect(r.blocks[0].channels).toHaveLength(3);
    for (const c of r.blocks[0].channels) expect(c.name).toMatch(/^blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.weight$/);
    const txt = readFileSync(r.file, 'utf8').split('\n');
    expect(txt[1]).toBe('modified neurons name, index and value');
    expect(txt[2]).toMatch(/^blocks\.\d+\.\S+\.weight, \d+, \d/);
  });
});
