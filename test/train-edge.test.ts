/** Edge cases of the training loop and of image decoding errors found by a first user. */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from '../src/native.js';
import { decodeImage, evalTransform, openDataset } from '../src/data/index.js';
import { train } from '../src/train/erm.js';
import { smallDemo } from './helpers/demo-data.js';
import { tempDir, writeJpeg } from './helpers/datasets.js';

describe('training at 32 px with a batch of 1 image left over', () => {
  it('leaves that batch out (BatchNorm at 1x1 maps), says so, and writes no NaN statistics', async () => {
    const root = await smallDemo();
    const n = (await openDataset({ dataset: 'folder', root })).samples.train.length;
    const lines: string[] = [];
    const out = join(tempDir(), 'run');
    await train({ dataset: 'folder', root, arch: 'resnet18', resolution: 32, batchSize: n - 1, epochs: 1, threads: 1, out, evalInitial: false }, { log: (l) => lines.push(l) });
    expect(lines.filter((l) => l.includes('a training batch of 1 image is left out'))).toHaveLength(1);
    const ck = await addon().readCheckpoint(join(out, 'epoch_0_checkpoints.pth.tar'));
    const rv = ck.tensor(['model_state_dict', 'layer4.1.bn2.running_var']);
    expect(Array.from(rv.data as Float32Array).every(Number.isFinite)).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as { train: { average_accuracy: number } };
    expect(metrics.train.average_accuracy).toBeGreaterThan(0);
  });
});

describe('image errors name the file and say the same every time', () => {
  it('an empty file', async () => {
    const f = join(tempDir(), 'empty.jpg');
    writeFileSync(f, Buffer.alloc(0));
    await expect(decodeImage(f)).rejects.toThrow(`${f}: cannot decode image (the file is empty)`);
    await expect(evalTransform(f, 32)).rejects.toThrow(`${f}: cannot decode image (the file is empty)`);
    await expect(evalTransform(f, 32, { resize: 'sharp' })).rejects.toThrow(`${f}: cannot decode image (the file is empty)`);
  });
  it('a truncated JPEG with --resize sharp, decoded alongside others', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.jpg');
    await writeJpeg(good, 500, 375, 1);
    const cut = join(dir, 'cut.jpg');
    const bytes = readFileSync(good);
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    const want = `${cut}: cannot decode image (truncated JPEG: the file ends after ${bytes.length >> 1} bytes without an end-of-image marker (FFD9))`;
    for (let run = 0; run < 3; run++) {
      const all = await Promise.allSettled([good, cut, good, cut].map((f) => evalTransform(f, 64, { resize: 'sharp' })));
      expect(all.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
      for (const r of all) if (r.status === 'rejected') expect((r.reason as Error).message).toBe(want);
    }
  });
});
