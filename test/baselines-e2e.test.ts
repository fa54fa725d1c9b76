import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBatches, openDataset, type Dataset } from '../src/data/index.js';
import type { Sample } from '../src/data/types.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { evaluateSplit } from '../src/eval/evaluate-split.js';
import { jtt, type ErrorSet } from '../src/train/jtt.js';
import { DFR_C_GRID, dfr, dfrFit, embeddings, scalerOf } from '../src/train/dfr.js';
import { subsampleGroups, upsampleErrorSet } from '../src/train/sampling.js';
import { smallDemo } from './helpers/demo-data.js';
import { tempDir } from './helpers/datasets.js';
import { runPython, testDir } from './helpers/python.js';

const SCRIPT = join(testDir, 'fixtures', 'baselines_reference.py');

/** The split's images through the eval transform, as one uint8 buffer [n, R, R, 3]. */
async function splitImages(samples: readonly Sample[], resolution: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const b of loadBatches(samples, { resolution, batchSize: 64 })) parts.push(b.images);
  return Buffer.concat(parts);
}

describe('sampling baselines', () => {
  const samples = (groups: number[]): Sample[] => groups.map((g, i) => ({ index: i, line: i + 2, file: `f${i}`, y: (g >> 1) as 0 | 1, a: (g & 1) as 0 | 1, group: g, split: 'train' }));
  it("SUBG keeps the smallest group's count of every group, seeded", () => {
    const s = samples([0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3]);
    const a = subsampleGroups(s, 0);
    expect([0, 1, 2, 3].map((g) => a.filter((x) => x.group === g).length)).toEqual([2, 2, 2, 2]);
    expect(subsampleGroups(s, 0)).toEqual(a);
    const draws = new Set([0, 1, 2, 3, 4, 5].map((d) => subsampleGroups(s, 0, d).map((x) => x.index).join()));
    expect(draws.size).toBeGreaterThan(1);
  });
  it('JTT repeats each error-set sample so that it appears L times', () => {
    const s = samples([0, 1, 2, 3]);
    const u = upsampleErrorSet(s, [1, 3], 4);
    expect(u.length).toBe(4 + 3 * 2);
    expect(u.filter((x) => x.index === 1).length).toBe(4);
    expect(u.filter((x) => x.index === 0).length).toBe(1);
    expect(() => upsampleErrorSet(s, [7], 2)).toThrow(/position 7/);
  });
});

describe('JTT and DFR on the built-in dataset against PyTorch and scikit-learn', () => {
  it('JTT: the error set equals the one PyTorch computes from the stage-1 checkpoint; DFR: C, coefficients and test predictions equal sklearn on the same balanced subsets', async () => {
    const root = await smallDemo();
    const out = join(tempDir('spurmem-jtt-'), 'jtt');
    const R = 32;
    const summary = await jtt(
      {
        dataset: 'folder', root, arch: 'resnet18', resolution: R, epochs: 1, identificationEpochs: 1, upweight: 3, optimizer: 'adam', lr: 1e-3,
        scheduler: 'none', augment: false, head: 'linear', labelOrder: 'natural', batchSize: 32, evalBatchSize: 128, evalInitial: false, quiet: true, out,
      },
      { log: () => {} },
    );
    const es = JSON.parse(readFileSync(join(out, 'error_set.json'), 'utf8')) as ErrorSet;
    const ds: Dataset = await openDataset({ dataset: 'folder', root });
    // PyTorch's error set from the same checkpoint and the same decoded training images
    const dir = tempDir('spurmem-errorset-');
    writeFileSync(join(dir, 'images.u8'), await splitImages(ds.samples.train, R));
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ checkpoint: es.checkpoint, arch: 'resnet18', head: 'linear', label_order: 'natural', resolution: R, n: ds.samples.train.length, y: ds.samples.train.map((s) => s.y), batch_size: 64 }));
    const ref = JSON.parse(runPython(SCRIPT, ['errorset', dir])) as { error_set: number[] };
    console.log(`JTT error set: ${es.positions.length} of ${ds.samples.train.length} training samples (by group ${es.by_group.join(', ')}); PyTorch: ${ref.error_set.length}`);
    expect(es.positions.length).toBeGreaterThan(0);
    expect(es.positions).toEqual(ref.error_set);
    expect(summary.error_set.size).toBe(es.positions.length);
    const cfg2 = JSON.parse(readFileSync(join(out, 'stage2', 'config.json'), 'utf8')) as { resolved: { jtt: { size: number; upweight: number } } };
    expect(cfg2.resolved.jtt).toMatchObject({ size: es.positions.length, upweight: 3 });

    // DFR on the stage-1 model
    const stage1 = join(out, 'stage1');
    const ck = await readCheckpoint(es.checkpoint);
    const model = createModel({ arch: 'resnet18', head: 'linear', imageSize: R });
    await loadWeights(model, ck);
    const emb = await embeddings(model, ck, ds, ['val'], { resolution: R, batchSize: 64, lnEps: 1e-6 });
    const subsamples = 3;
    const fit = dfrFit(emb.val, { seed: 0, subsamples });
    const dfrOut = join(tempDir('spurmem-dfr-'), 'dfr');
    const res = await dfr({ run: stage1, seed: 0, subsamples, out: dfrOut, batchSize: 64, quiet: true }, { log: () => {} });
    expect(res.c).toBe(fit.c);
    const ddir = tempDir('spurmem-dfr-ref-');
    writeFileSync(join(ddir, 'val.u8'), await splitImages(ds.samples.val, R));
    writeFileSync(join(ddir, 'test.u8'), await splitImages(ds.samples.test, R));
    const meta = (split: 'val' | 'test') => ({ n: ds.samples[split].length, y: ds.samples[split].map((s) => s.y), g: ds.samples[split].map((s) => s.group) });
    writeFileSync(join(ddir, 'meta.json'), JSON.stringify({
      checkpoint: es.checkpoint, arch: 'resnet18', head: 'linear', resolution: R, grid: DFR_C_GRID, val: meta('val'), test: meta('test'),
      tune_fit: fit.rows.tuneFit, tune_check: fit.rows.tuneCheck, subsets: fit.rows.subsets,
    }));
    const want = JSON.parse(runPython(SCRIPT, ['dfr', ddir])) as { tuning: number[]; c: number; coef: number[]; intercept: number; pred_test: number[]; val_embeddings: number[] };
    // the embeddings themselves (the identity-head copy of the model)
    let embDiff = 0;
    emb.val.x.forEach((v, i) => (embDiff = Math.max(embDiff, Math.abs(v - want.val_embeddings[i]))));
    expect(embDiff).toBeLessThan(1e-4);
    expect(fit.tuning.map((t) => t.val_worst_group_accuracy)).toEqual(want.tuning);
    expect(fit.c).toBe(want.c);
    // our averaged coefficients on standardised embeddings: the folded ones times the scale
    const d = emb.val.d;
    const sc = scalerOf(Float64Array.from(emb.val.x), emb.val.n, d);
    const coefStd = Array.from(fit.model.coef, (v, j) => v * sc.scale[j]);
    const interceptStd = fit.model.intercept + Array.from(fit.model.coef).reduce((a, v, j) => a + v * sc.mean[j], 0);
    const scale = Math.max(1e-3, ...want.coef.map(Math.abs));
    let coefDiff = Math.abs(interceptStd - want.intercept);
    coefStd.forEach((v, j) => (coefDiff = Math.max(coefDiff, Math.abs(v - want.coef[j]))));
    console.log(`DFR: C ${fit.c}, tuning ${fit.tuning.map((t) => t.val_worst_group_accuracy.toFixed(3)).join(' ')}; embeddings within ${embDiff.toExponential(2)}; coefficients within ${coefDiff.toExponential(2)} (largest ${scale.toFixed(3)}); ${fit.nonzero} of ${d} non-zero`);
    expect(coefDiff / scale).toBeLessThan(1e-3);
    // the written checkpoint: the reweighted head's test predictions are sklearn's
    const dfrModel = createModel({ arch: 'resnet18', head: 'linear', imageSize: R });
    await loadWeights(dfrModel, await readCheckpoint(res.checkpoint));
    const ev = await evaluateSplit(dfrModel, ds, 'test', { resolution: R, batchSize: 64, labelOrder: 'natural' });
    const pred = ds.samples.test.map((_, i) => (ev.outputs[2 * i + 1] > ev.outputs[2 * i] ? 1 : 0));
    const mismatches = pred.filter((p, i) => p !== want.pred_test[i]).length;
    console.log(`DFR test predictions: ${mismatches} of ${pred.length} differ from sklearn's`);
    expect(mismatches).toBe(0);
  });
});
