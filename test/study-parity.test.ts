import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { addon } from '../src/native.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { prepareStudy, runStudySetting, type StudyContext } from '../src/neurons/study.js';
import { train } from '../src/train/erm.js';
import { smallDemo } from './helpers/demo-data.js';
import { originalStudy, type OriginalStudy } from './helpers/original-study.js';
import { runPython, testDir } from './helpers/python.js';
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

// the default resize; with 'sharp' (libvips' kernel) this study picks other channels at 64 px
const RESIZE = 'pil' as const;

describe("activated study on real photos, the original's own PIL pipeline on the Python side", () => {
  // a Waterbirds-layout folder of real photos in many sizes and colour modes (mate-backgrounds), which
  // PyTorch decodes and resizes with PIL + torchvision while spurmem uses its own decoder and resampler
  let photoRoot: string;
  let files: string[];
  let groups: number[];
  beforeAll(() => {
    photoRoot = join(dir, 'photos');
    const made = JSON.parse(runPython(join(testDir, 'fixtures', 'make_photo_set.py'), [join(photoRoot, 'images')])) as { file: string }[];
    const rows = ['img_id,img_filename,y,split,place,place_filename'];
    files = [];
    groups = [];
    made.forEach((m, i) => {
      const g = i % 4;
      const split = i < 8 ? 0 : i < 12 ? 1 : 2;
      // the photos as shipped are copied in; the others were written there
      const rel = join('images', basename(m.file));
      if (!m.file.startsWith(photoRoot)) copyFileSync(m.file, join(photoRoot, rel));
      rows.push(`${i + 1},${rel},${g >> 1},${split},${g & 1},${basename(m.file)}`);
      if (split === 2) {
        files.push(join(photoRoot, rel));
        groups.push(g);
      }
    });
    writeFileSync(join(photoRoot, 'metadata.csv'), rows.join('\n') + '\n');
  }, 600_000);

  for (const R of [64, 224]) {
    it(`R = ${R}: same channels (values within 1e-5 relative) and the same correct counts per group`, async () => {
      const c = await prepareStudy({ checkpoint: ckPath, dataset: 'folder', root: photoRoot, resolution: R, threads: 1, resize: RESIZE });
      const r = await runStudySetting(c, { split: 'test', ranking: 'activated', mode: 'zero', topK: 3, out: join(dir, `photos-${R}`), quiet: true }, () => {});
      const input = join(dir, `in-photos-${R}.pth`);
      await addon().writeCheckpoint(input, {
        files,
        resolution: R,
        groups: { dtype: 'int64', shape: [groups.length], data: BigInt64Array.from(groups, BigInt) },
        checkpoint: ckPath,
        ranking: 'activated',
        mode: 'zero',
        top_k: 3,
        std: { __float__: 0 },
        seeds: r.blocks.map((b) => b.seeds),
      });
      const output = join(dir, `out-photos-${R}.json`);
      runPython(join(testDir, 'fixtures', 'original_study.py'), [input, output]);
      const o = JSON.parse(readFileSync(output, 'utf8')) as OriginalStudy;
      expect(r.resize).toBe(RESIZE);
      expect(r.unmodified.groups.map((g) => g.accuracy)).toEqual(o.unmodified);
      expect(r.blocks.length).toBe(o.blocks.length);
      for (let b = 0; b < r.blocks.length; b++) {
        const ours = r.blocks[b];
        const theirs = o.blocks[b];
        expect(ours.source_group).toBe(theirs.source_group);
        expect(ours.channels.map((x) => [x.name, x.index])).toEqual(theirs.channels!.map((x) => [x.name, x.index]));
        for (let i = 0; i < ours.channels.length; i++) {
          const t = theirs.channels![i].value;
          expect(Math.abs(ours.channels[i].value - t) / Math.abs(t), `${ours.channels[i].name}[${ours.channels[i].index}]`).toBeLessThan(1e-5);
        }
        expect(ours.repeats.map((m) => m.groups.map((g) => g.accuracy))).toEqual(theirs.repeats);
      }
    }, 600_000);
  }
});
