import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDemoDataset } from '../src/data/fashion-waterbirds.js';
import { openDataset, type Dataset } from '../src/data/index.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { evaluateSplit } from '../src/eval/evaluate-split.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { originalEval, type OriginalEval } from './helpers/original-eval.js';
import { fixturesDir } from './helpers/python.js';
import { maxAbsDiff } from './helpers/native.js';

const R = 32;
let root: string;
let ds: Dataset;
const evalnet = (f: string) => join(fixturesDir, 'evalnet', f);

type Reference = OriginalEval;

beforeAll(async () => {
  root = join(tempDir(), 'demo');
  // 40 x 30 images: the eval resize to 37 x 37 shrinks one axis and grows the other
  await makeDemoDataset({ out: root, scale: 0.01, width: 40, height: 30, seed: 2 });
  ds = await openDataset({ dataset: 'folder', root });
});

/** PyTorch, following the original's procedure, on the uint8 images spurmem decoded. */
const reference = (checkpoint: string, head: string, labelOrder: string, batchSize: number): Promise<Reference> =>
  originalEval(ds, { checkpoint, head, labelOrder, resolution: R, batchSize });

describe('spurmem eval vs PyTorch following the original procedure', () => {
  for (const [what, file, head, order] of [
    ["the original's checkpoint (model_state_dict, Linear + Softmax head), original label order", 'epoch_3_checkpoints.pth.tar', 'softmax', 'original'],
    ['a plain state dict with a Linear head, natural label order', 'plain_linear.pth', 'linear', 'natural'],
  ] as const) {
    it(what, async () => {
      const cli = await runCli([
        'eval', '--checkpoint', evalnet(file), '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'test',
        '--resolution', String(R), '--batch-size', '16', '--threads', '2', '--label-order', order, '--json',
      ]);
      expect(cli.stderr).toMatch(/^folder dataset at /);
      expect(cli.code).toBe(0);
      const ours = JSON.parse(cli.stdout);
      expect(Object.keys(ours).slice(0, 5)).toEqual(['split', 'groups', 'worst_group_accuracy', 'average_accuracy', 'mean_accuracy']);
      expect(Object.keys(ours.groups[0]).slice(0, 4)).toEqual(['id', 'name', 'count', 'accuracy']);
      // added by the intervals: overall accuracy, per-group ci95, <aggregate>_ci95 and how they were made
      expect(Object.keys(ours).slice(5)).toEqual(['overall_accuracy', 'worst_group_accuracy_ci95', 'average_accuracy_ci95', 'mean_accuracy_ci95', 'overall_accuracy_ci95', 'ci']);
      expect(Object.keys(ours.groups[0]).slice(4)).toEqual(['ci95']);
      const ref = await reference(evalnet(file), head, order, 16);
      expect(ours.groups.map((g: { id: number; count: number; accuracy: number }) => ({ id: g.id, count: g.count, accuracy: g.accuracy }))).toEqual(ref.groups);
      expect(ours.worst_group_accuracy).toBe(ref.worst_group_accuracy);
      expect(ours.average_accuracy).toBeCloseTo(ref.average_accuracy, 12);
      expect(ours.mean_accuracy).toBeCloseTo(ref.mean_accuracy, 12);

      // the outputs themselves, and how close the decisions were
      const model = createModel({ arch: 'resnet18', head, device: 'cpu' });
      await loadWeights(model, await readCheckpoint(evalnet(file)));
      const r = await evaluateSplit(model, ds, 'test', { resolution: R, batchSize: 16, labelOrder: order });
      const diff = maxAbsDiff(r.outputs, ref.outputs);
      let margin = Infinity;
      for (let i = 0; i < r.outputs.length; i += 2) margin = Math.min(margin, Math.abs(r.outputs[i] - r.outputs[i + 1]));
      console.log(`${file}: group accuracies ${ours.groups.map((g: { accuracy: number }) => g.accuracy.toFixed(4)).join(' ')}; max |output diff| ${diff.toExponential(2)}; smallest decision margin ${margin.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-4);
      // the demo images put many decisions near the boundary: the groups are neither all right nor all wrong
      expect(ours.groups.some((g: { accuracy: number }) => g.accuracy > 0 && g.accuracy < 1)).toBe(true);
    });
  }

  it('table output, and a checkpoint that does not fit the architecture', async () => {
    const t = await runCli(['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'val', '--resolution', String(R), '--threads', '2']);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^val split: 12 images, resnet18 \(softmax head\) from .*epoch_3_checkpoints\.pth\.tar, original label order \(assumed: .*\), R = 32/m);
    // the interval column and the summaries' intervals follow the accuracies; with --ci none --bootstrap 0 the table of before
    const CI = '\\s+\\[\\d\\.\\d{4}, \\d\\.\\d{4}\\]';
    expect(t.stdout).toMatch(new RegExp(`^group\\s+name\\s+count\\s+accuracy\\s+95% interval\\n0\\s+top on land\\s+5\\s+\\d\\.\\d{4}${CI}\\n`, 'm'));
    expect(t.stdout).toMatch(
      new RegExp(`^worst-group accuracy  \\d\\.\\d{4}${CI}\\naverage accuracy      \\d\\.\\d{4}${CI}  \\(weighted by the train split's group counts\\)\\nmean accuracy         \\d\\.\\d{4}`, 'm'),
    );
    const plain = await runCli(['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'val', '--resolution', String(R), '--threads', '2', '--ci', 'none', '--bootstrap', '0']);
    expect(plain.stdout).toMatch(/^group\s+name\s+count\s+accuracy\n0\s+top on land\s+5\s+\d\.\d{4}\n/m);
    expect(plain.stdout).toMatch(/^worst-group accuracy  \d\.\d{4}\naverage accuracy      \d\.\d{4}  \(weighted by the train split's group counts\)\nmean accuracy         \d\.\d{4}/m);
    // --resize sharp is named in the summary and in --json; the default (PIL's resize) is not
    const sharp = await runCli(['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'val', '--resolution', String(R), '--resize', 'sharp']);
    expect(sharp.stdout).toMatch(/R = 32, resized with sharp \(approximate\)/);
    expect(t.stdout).not.toMatch(/resized with sharp/);
    const sharpJson = await runCli(['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'val', '--resolution', String(R), '--resize', 'sharp', '--json']);
    expect(JSON.parse(sharpJson.stdout).resize).toBe('sharp');
    const badResize = await runCli(['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--dataset', 'folder', '--root', root, '--resize', 'vips']);
    expect(badResize.code).not.toBe(0);
    expect(badResize.stderr).toMatch(/--resize.*vips.*(pil|choices)/is);
    const bad = await runCli(['eval', '--checkpoint', evalnet('plain_linear.pth'), '--arch', 'resnet50', '--dataset', 'folder', '--root', root, '--resolution', String(R)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/size mismatch/i);
  });

  it('--skip-bad-images: a missing and an undecodable test image are skipped and counted in --json', async () => {
    const broken = join(tempDir(), 'demo');
    await makeDemoDataset({ out: broken, scale: 0.005, width: 40, height: 30, seed: 4 });
    const d = await openDataset({ dataset: 'folder', root: broken });
    const { rmSync } = await import('node:fs');
    rmSync(d.samples.test[0].file);
    writeFileSync(d.samples.test[3].file, 'not a jpeg');
    const args = ['eval', '--checkpoint', evalnet('epoch_3_checkpoints.pth.tar'), '--arch', 'resnet18', '--dataset', 'folder', '--root', broken, '--resolution', String(R), '--json'];
    const stop = await runCli(args);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/metadata\.csv line \d+: image '.*' does not exist .*--skip-bad-images/);
    const r = await runCli([...args, '--skip-bad-images']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.skipped).toBe(2);
    expect(j.groups.reduce((a: number, g: { count: number }) => a + g.count, 0)).toBe(d.samples.test.length - 2);
    expect(r.stderr).toMatch(/warning: 1 rows skipped: image file missing/);
  });
});
