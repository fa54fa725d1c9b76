// A study evaluates its repeats batch by batch, each from the first block it touches, on kept prefix
// activations. These tests hold that to the straightforward procedure (per repeat: edit with the repeat's
// seed, a full forward pass over the split, restore): the same outputs bit for bit and the same metrics,
// for every ranking x mode, in a study and in a sweep's shared pass.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluateSplit } from '../src/eval/evaluate-split.js';
import { evaluateVariants } from '../src/eval/evaluate-variants.js';
import type { ModificationMode } from '../src/native.js';
import { candidateParams } from '../src/neurons/rank.js';
import {
  evaluateStudySettings, finishStudySetting, prepareStudy, prepareStudySetting, runStudySetting, type StudyContext, type StudyResult,
} from '../src/neurons/study.js';
import { evaluateOptions, rewindSource } from '../src/neurons/study/context.js';
import { train } from '../src/train/erm.js';
import { stateDictPath } from '../src/checkpoint.js';
import { smallDemo } from './helpers/demo-data.js';

let dir: string;
let ctx: StudyContext;

beforeAll(async () => {
  const root = await smallDemo();
  dir = mkdtempSync(join(tmpdir(), 'spurmem-prefix-'));
  const run = join(dir, 'run');
  await train({ dataset: 'folder', root, arch: 'resnet18', resolution: 32, batchSize: 32, optimizer: 'adam', lr: 1e-3, epochs: 2, threads: 1, out: run, evalInitial: false }, { log: () => {} });
  // batch 64: several batches per split, so the kept prefix is renewed batch by batch
  ctx = await prepareStudy({ run, threads: 1, batchSize: 64 });
}, 600_000);

/** The repeats of a study's blocks done the straightforward way: edit, evaluate the whole split, restore. */
async function reference(r: StudyResult, mode: ModificationMode, std: number, o: { fraction?: number; faithful?: boolean } = {}) {
  const model = ctx.model;
  const src = mode === 'rewind' || mode === 'layer_rewind' ? await rewindSource(ctx, { mode, rewindEpochs: 1 }, {}) : null;
  const info = model.info();
  const thresholdNames = candidateParams(info, 'threshold').map((p) => p.name);
  const out: { metrics: unknown[]; outputs: Float32Array[] }[] = [];
  for (const b of r.blocks) {
    if (b.status !== 'ran') {
      out.push({ metrics: [], outputs: [] });
      continue;
    }
    const edits = b.channels.map((c) => ({ name: c.name, index: c.index }));
    const touched = r.setting.ranking === 'threshold' ? info.parameters.map((p) => p.name) : [...new Set(edits.map((e) => e.name))];
    const metrics: unknown[] = [];
    const outputs: Float32Array[] = [];
    await model.withSnapshot(touched, async (restore) => {
      for (const seed of b.seeds) {
        if (r.setting.ranking === 'threshold') {
          await model.modifyThreshold({ names: thresholdNames, fraction: o.fraction!, mode: mode as 'zero', std, seed, faithful: o.faithful });
        } else {
          await model.modifyChannels({ edits, mode, std, seed, source: src?.ck, sourcePath: src ? stateDictPath(src.ck) : undefined });
        }
        const ev = await evaluateSplit(model, ctx.ds, r.split, evaluateOptions(ctx));
        metrics.push(ev.metrics);
        outputs.push(ev.outputs);
        restore();
      }
    });
    out.push({ metrics, outputs });
  }
  return out;
}

describe('studies on kept prefix activations', () => {
  const modes: [ModificationMode, number][] = [
    ['zero', 0],
    ['random_init', 0.15],
    ['random_noise', 0.05],
    ['rewind', 0],
    ['layer_rewind', 0],
  ];
  for (const ranking of ['largest', 'activated'] as const) {
    for (const [mode, std] of modes) {
      it(`${ranking} + ${mode}: every repeat's metrics equal the full-pass procedure's`, async () => {
        const rewind = mode === 'rewind' || mode === 'layer_rewind';
        const r = await runStudySetting(
          ctx,
          { split: 'train', ranking, mode, std, topK: 3, repeats: 2, seed: 5, ...(rewind ? { rewindEpochs: 1 } : {}), out: join(dir, `${ranking}-${mode}`), quiet: true },
          () => {},
        );
        const ref = await reference(r, mode, std);
        expect(r.blocks.filter((b) => b.status === 'ran').length).toBeGreaterThan(0);
        r.blocks.forEach((b, i) => expect(b.repeats, `block ${i}`).toEqual(ref[i].metrics));
      }, 300_000);
    }
  }

  it('threshold + zero and random_init: the same as the full-pass procedure', async () => {
    for (const mode of ['zero', 'random_init'] as const) {
      const r = await runStudySetting(ctx, { split: 'train', ranking: 'threshold', mode, std: 0.1, fraction: 0.001, repeats: 2, seed: 2, out: join(dir, `threshold-${mode}`), quiet: true }, () => {});
      const ref = await reference(r, mode, 0.1, { fraction: 0.001 });
      expect(r.blocks[0].repeats).toEqual(ref[0].metrics);
    }
  }, 300_000);

  it('evaluateVariants: outputs bit for bit those of full passes, for starts in the stem, mid-network and the head at once', async () => {
    const model = ctx.model;
    const groups = [
      [{ name: 'conv1.weight', index: 4 }],
      [{ name: 'layer2.1.conv2.weight', index: 7 }, { name: 'layer3.0.conv1.weight', index: 1 }],
      [{ name: 'layer4.1.conv2.weight', index: 30 }],
      [{ name: 'fc.0.weight', index: 1 }],
    ];
    const ids: { original: number; edited: number; start: number }[] = [];
    const want: Float32Array[] = [];
    for (const [g, edits] of groups.entries()) {
      const original = model.snapshotChannels(edits);
      await model.modifyChannels({ edits, mode: 'random_init', std: 0.3, seed: 40 + g });
      want.push((await evaluateSplit(model, ctx.ds, 'train', evaluateOptions(ctx))).outputs);
      const edited = model.snapshotChannels(edits);
      model.restore(original);
      ids.push({ original, edited, start: Math.min(...edits.map((e) => model.stageOf(e.name))) });
    }
    expect(ids.map((x) => x.start)).toEqual([0, 4, 8, 9]);
    const ev = await evaluateVariants(
      model,
      ctx.ds,
      'train',
      ids.map((x) => ({ start: x.start, enter: () => model.restore(x.edited), leave: () => model.restore(x.original) })),
      evaluateOptions(ctx),
    );
    ev.results.forEach((r, v) => expect(r.outputs, `variant ${v}`).toEqual(want[v]));
    // the edits changed the outputs (the comparison can fail), and the model is left unedited
    const plain = (await evaluateSplit(model, ctx.ds, 'train', evaluateOptions(ctx))).outputs;
    for (const w of want) expect(w).not.toEqual(plain);
    expect(plain).toEqual(ctx.unmodified.get('train')?.outputs ?? plain);
    for (const x of ids) {
      model.releaseSnapshot(x.original);
      model.releaseSnapshot(x.edited);
    }
  }, 300_000);

  it('evaluateVariants: variants that share a prefix with another (or are the same edit) give the outputs of full passes, and run fewer stages', async () => {
    const model = ctx.model;
    const stages = model.stages();
    const shallow = { name: 'layer1.0.conv1.weight', index: 3 };
    const deep = { name: 'layer3.1.conv2.weight', index: 5 };
    // A; A then a deeper channel (same seed: the first channel gets the same values); A again; A with another seed
    const lists = [[shallow], [shallow, deep], [shallow], [shallow]];
    const seeds = [7, 7, 7, 8];
    const ids: { original: number; edited: number; start: number }[] = [];
    const want: Float32Array[] = [];
    for (const [g, edits] of lists.entries()) {
      const original = model.snapshotChannels([shallow, deep]);
      await model.modifyChannels({ edits, mode: 'random_init', std: 0.3, seed: seeds[g] });
      want.push((await evaluateSplit(model, ctx.ds, 'train', evaluateOptions(ctx))).outputs);
      const edited = model.snapshotChannels([shallow, deep]);
      model.restore(original);
      ids.push({ original, edited, start: model.stageOf(shallow.name) });
    }
    const from = model.stageOf(deep.name);
    expect(ids.map((x) => x.start)).toEqual([1, 1, 1, 1]);
    expect(from).toBe(6);
    const shares = [undefined, { variant: 0, from }, { variant: 0, from: stages }, undefined];
    const variants = ids.map((x, v) => ({ start: x.start, enter: () => model.restore(x.edited), leave: () => model.restore(x.original), shares: shares[v] }));
    // the stages each forward call runs
    let work = 0;
    const forward = model.forward.bind(model);
    model.forward = (b, o = {}) => {
      work += (o.to ?? stages) - (o.from ?? 0);
      return forward(b, o);
    };
    let ev;
    try {
      ev = await evaluateVariants(model, ctx.ds, 'train', variants, evaluateOptions(ctx));
    } finally {
      model.forward = forward;
    }
    ev.results.forEach((r, v) => expect(r.outputs, `variant ${v}`).toEqual(want[v]));
    expect(want[1]).not.toEqual(want[0]);
    expect(want[3]).not.toEqual(want[0]);
    // per batch: variant 0 whole (from the batch), variant 1 from the deep channel's stage, variant 2 not
    // at all; then the prefix to stage 1 and variant 3 from there
    const batches = Math.ceil(ctx.ds.samples.train.length / ctx.base.batchSize);
    expect(work).toBe(batches * (stages + (stages - from) + 1 + (stages - 1)));
    await expect(evaluateVariants(model, ctx.ds, 'train', [{ ...variants[0], shares: { variant: 0, from } }], evaluateOptions(ctx))).rejects.toThrow(/variant 0 shares the input of variant 0/);
    await expect(evaluateVariants(model, ctx.ds, 'train', [variants[0], { ...variants[1], shares: { variant: 0, from: stages + 1 } }], evaluateOptions(ctx))).rejects.toThrow(/outside \[1, 10\]/);
    for (const x of ids) {
      model.releaseSnapshot(x.original);
      model.releaseSnapshot(x.edited);
    }
  }, 300_000);

  it('a sweep of nested top-k settings with the same seed, one pass: each setting as when run alone', async () => {
    const inputs = [1, 2, 3, 4].flatMap((topK) => [
      { split: 'train' as const, ranking: 'largest' as const, mode: 'random_init' as const, std: 0.15, topK, repeats: 2, seed: 4 },
      { split: 'train' as const, ranking: 'largest' as const, mode: 'zero' as const, topK },
      { split: 'train' as const, ranking: 'largest' as const, mode: 'rewind' as const, topK, rewindEpochs: 1 },
    ]);
    // the same setting twice: the same edits
    inputs.push({ ...inputs[0] });
    const alone: StudyResult[] = [];
    for (const [i, s] of inputs.entries()) alone.push(await runStudySetting(ctx, { ...s, out: join(dir, `nested-alone-${i}`), quiet: true }, () => {}));
    const prepared = [];
    for (const [i, s] of inputs.entries()) prepared.push(await prepareStudySetting(ctx, { ...s, out: join(dir, `nested-shared-${i}`), quiet: true }, () => {}));
    await evaluateStudySettings(ctx, prepared);
    for (const [i, p] of prepared.entries()) {
      const r = await finishStudySetting(p);
      expect(r.blocks.map((b) => [b.channels, b.seeds, b.repeats]), `setting ${i}`).toEqual(alone[i].blocks.map((b) => [b.channels, b.seeds, b.repeats]));
    }
  }, 600_000);

  it('activated settings on one base rank from one gradient pass per source group, with the channels a fresh pass gives', async () => {
    ctx.gradientCache.clear();
    const a = await runStudySetting(ctx, { split: 'train', ranking: 'activated', mode: 'zero', topK: 3, seed: 1, out: join(dir, 'grad-a'), quiet: true }, () => {});
    const passes = ctx.gradientCache.size;
    expect(passes).toBeGreaterThan(0);
    const b = await runStudySetting(ctx, { split: 'train', ranking: 'activated', mode: 'random_init', std: 0.15, topK: 1, repeats: 1, seed: 1, out: join(dir, 'grad-b'), quiet: true }, () => {});
    expect(ctx.gradientCache.size).toBe(passes);
    ctx.gradientCache.clear();
    const c = await runStudySetting(ctx, { split: 'train', ranking: 'activated', mode: 'random_init', std: 0.15, topK: 1, repeats: 1, seed: 1, out: join(dir, 'grad-c'), quiet: true }, () => {});
    expect(b.blocks.map((x) => [x.channels, x.repeats])).toEqual(c.blocks.map((x) => [x.channels, x.repeats]));
    expect(b.blocks.map((x) => x.channels[0])).toEqual(a.blocks.map((x) => x.channels[0]));
  }, 300_000);

  it("settings evaluated in one shared pass give each setting's own study results", async () => {
    const inputs = [
      { split: 'train' as const, ranking: 'largest' as const, mode: 'random_init' as const, std: 0.15, topK: 2, repeats: 3, seed: 1 },
      { split: 'train' as const, ranking: 'activated' as const, mode: 'zero' as const, topK: 1, seed: 1 },
      { split: 'test' as const, ranking: 'largest' as const, mode: 'random_noise' as const, std: 0.05, topK: 1, repeats: 2, seed: 3 },
      { split: 'train' as const, ranking: 'threshold' as const, mode: 'zero' as const, fraction: 0.001, seed: 1 },
    ];
    const alone: StudyResult[] = [];
    for (const [i, s] of inputs.entries()) alone.push(await runStudySetting(ctx, { ...s, out: join(dir, `alone-${i}`), quiet: true }, () => {}));
    const prepared = [];
    for (const [i, s] of inputs.entries()) prepared.push(await prepareStudySetting(ctx, { ...s, out: join(dir, `shared-${i}`), quiet: true }, () => {}));
    await evaluateStudySettings(ctx, prepared);
    for (const [i, p] of prepared.entries()) {
      const r = await finishStudySetting(p);
      expect(r.blocks.map((b) => [b.channels, b.seeds, b.repeats]), `setting ${i}`).toEqual(alone[i].blocks.map((b) => [b.channels, b.seeds, b.repeats]));
    }
  }, 300_000);
});
