import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon } from '../src/native.js';
import { createModel, loadWeights } from '../src/model.js';
import { prepareStudy, runStudySetting, type StudyContext } from '../src/neurons/study.js';
import { train } from '../src/train/erm.js';
import { smallDemo } from './helpers/demo-data.js';
import { originalStudy } from './helpers/original-study.js';
import { maxAbsDiff, numbers } from './helpers/native.js';

let dir: string;
let root: string;
let ckPath: string;
let ctx: StudyContext;

beforeAll(async () => {
  root = await smallDemo();
  dir = mkdtempSync(join(tmpdir(), 'spurmem-study-'));
  const run = join(dir, 'run');
  await train({ dataset: 'folder', root, arch: 'resnet18', resolution: 32, batchSize: 32, optimizer: 'adam', lr: 1e-3, epochs: 1, threads: 1, out: run, evalInitial: false }, { log: () => {} });
  ckPath = join(run, 'epoch_0_checkpoints.pth.tar');
  ctx = await prepareStudy({ run, threads: 1 });
}, 600_000);

describe('study parity with the original procedure in PyTorch', () => {
  for (const [ranking, mode, std, split] of [
    ['largest', 'zero', 0, 'train'],
    ['largest', 'random_noise', 0.05, 'test'],
    ['activated', 'zero', 0, 'train'],
  ] as const) {
    it(`${ranking} + ${mode} on ${split}: same channels, values, modified weights and group accuracies`, async () => {
      const r = await runStudySetting(ctx, { split, ranking, mode, topK: 3, std, repeats: 3, seed: 11, out: join(dir, `${ranking}-${mode}`), quiet: true }, () => {});
      const o = await originalStudy({ dir, root, checkpoint: ckPath, split, resolution: 32, ranking, mode, topK: 3, std, seeds: r.blocks.map((b) => b.seeds) });
      expect(r.unmodified.groups.map((g) => g.accuracy)).toEqual(o.unmodified);
      expect(r.blocks.length).toBe(o.blocks.length);
      for (let b = 0; b < r.blocks.length; b++) {
        const ours = r.blocks[b];
        const theirs = o.blocks[b];
        expect(ours.source_group).toBe(theirs.source_group);
        expect(ours.status).toBe('ran');
        expect(ours.channels.map((c) => [c.name, c.index])).toEqual(theirs.channels!.map((c) => [c.name, c.index]));
        for (let i = 0; i < ours.channels.length; i++) expect(Math.abs(ours.channels[i].value - theirs.channels![i].value)).toBeLessThan(1e-5);
        expect(ours.repeats.map((m) => m.groups.map((g) => g.accuracy))).toEqual(theirs.repeats);
        // the modified weights of the first repeat
        const model = createModel({ arch: 'resnet18', device: 'cpu' });
        await loadWeights(model, await addon().readCheckpoint(ckPath));
        await model.modifyChannels({ edits: ours.channels.map((c) => ({ name: c.name, index: c.index })), mode, std, seed: ours.seeds[0] });
        for (const c of ours.channels) {
          const t = model.tensor(c.name);
          const per = t.shape.slice(1).reduce((a, x) => a * x, 1);
          const row = numbers(t).slice(c.index * per, (c.index + 1) * per);
          expect(maxAbsDiff(row, theirs.first_weights[`${c.name}[${c.index}]`]), `${c.name}[${c.index}]`).toBeLessThan(1e-6);
        }
      }
      // restore left the model as it was
      const again = await runStudySetting(ctx, { split, ranking: 'largest', mode: 'zero', topK: 1, out: join(dir, 'again'), quiet: true }, () => {});
      expect(again.unmodified).toEqual(r.unmodified);
    });
  }

  it('zero followed by restore gives back the exact original bytes', async () => {
    const m = ctx.model;
    const name = 'layer2.0.conv1.weight';
    const before = Buffer.from(m.tensor(name).data.buffer).toString('base64');
    const snap = m.snapshot([name]);
    await m.modifyChannels({ edits: [{ name, index: 5 }, { name, index: 0 }], mode: 'zero' });
    expect(Buffer.from(m.tensor(name).data.buffer).toString('base64')).not.toBe(before);
    m.restore(snap);
    m.releaseSnapshot(snap);
    expect(Buffer.from(m.tensor(name).data.buffer).toString('base64')).toBe(before);
  });
});
