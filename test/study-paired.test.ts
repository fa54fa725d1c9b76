/**
 * The paired results of a study of the eval fixture's checkpoint on the small demo dataset: per-group
 * flips that agree with samples.csv, exact McNemar p-values equal to scipy's, Holm's adjustment, the
 * contact sheet of the flipped images, and per-repeat flips with t-intervals for a random change.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { holm } from '../src/metrics/paired.js';
import { contactSheetSize } from '../src/report/contact-sheet.js';
import { CONTACT_SHEET_MAX, prepareStudy, runStudySetting, type StudyContext, type StudyResult } from '../src/neurons/study.js';
import { tempDir } from './helpers/datasets.js';
import { smallDemo } from './helpers/demo-data.js';
import { fixturesDir, pythonCode, repoDir } from './helpers/python.js';
import { execFileSync } from 'node:child_process';

const checkpoint = join(fixturesDir, 'evalnet', 'epoch_3_checkpoints.pth.tar');
let dir: string;
let ctx: StudyContext;
let zero: StudyResult;
let root: string;

beforeAll(async () => {
  dir = tempDir('spurmem-paired-');
  root = await smallDemo();
  ctx = await prepareStudy({ checkpoint, dataset: 'folder', root, arch: 'resnet18', resolution: 32, threads: 1 });
  zero = await runStudySetting(ctx, { split: 'test', ranking: 'largest', mode: 'zero', topK: 8, out: join(dir, 'zero'), perSample: true, quiet: true }, () => {});
}, 600_000);

type Row = Record<string, string>;
const readCsv = (file: string) => parse(readFileSync(file, 'utf8'), { columns: true }) as Row[];

describe('paired results of a zero study', () => {
  it('writes per-group flips that samples.csv agrees with, and exact McNemar p-values equal to scipy', () => {
    const json = JSON.parse(readFileSync(join(zero.out, 'result.json'), 'utf8')) as StudyResult;
    const b = json.blocks[0];
    expect(b.paired_test).toBe('mcnemar_exact');
    const rows = readCsv(join(zero.out, 'samples.csv'));
    expect(Object.keys(rows[0])).toEqual(['block', 'source_group', 'sample_id', 'file', 'split', 'y', 'attribute', 'group', 'p_true_before', 'correct_before', 'correct_after', 'p_true_after']);
    expect(rows.length).toBe(ctx.ds.samples.test.length);
    const flipsOf = (ids: number[]) => ({
      to_wrong: rows.filter((r) => ids.includes(Number(r.group)) && r.correct_before === '1' && r.correct_after === '0').length,
      to_right: rows.filter((r) => ids.includes(Number(r.group)) && r.correct_before === '0' && r.correct_after === '1').length,
    });
    let total = 0;
    for (const g of b.groups) {
      expect(g.flips, `group ${g.id}`).toEqual(flipsOf([g.id]));
      // the change is the net flips over the group's images
      expect(g.change!).toBeCloseTo((g.flips!.to_wrong - g.flips!.to_right) / g.count, 12);
      total += g.flips!.to_wrong + g.flips!.to_right;
    }
    expect(total, 'zeroing 8 channels flips some images').toBeGreaterThan(0);
    expect(b.minority!.groups).toEqual([1, 2]);
    expect(b.minority!.flips).toEqual(flipsOf([1, 2]));
    expect(b.majority!.flips).toEqual(flipsOf([0, 3]));
    const family = [...b.groups, b.minority!, b.majority!];
    const ref = JSON.parse(
      pythonCode(`import json\nfrom scipy.stats import binomtest\nprint(json.dumps([1.0 if b+c==0 else binomtest(b,b+c,0.5).pvalue for b,c in ${JSON.stringify(family.map((r) => [r.flips!.to_wrong, r.flips!.to_right]))}]))`),
    ) as number[];
    family.forEach((r, i) => expect(Math.abs(r.p_value! - ref[i])).toBeLessThan(1e-9));
    const adjusted = holm(ref);
    family.forEach((r, i) => expect(Math.abs(r.p_holm! - adjusted[i]!)).toBeLessThan(1e-9));
    // result.csv carries them as rows of their own
    const csv = readFileSync(join(zero.out, 'result.csv'), 'utf8');
    expect(csv).toContain(`\n0,,ran,0,"${b.groups[0].name}",to_wrong,${b.groups[0].flips!.to_wrong}\n`);
    expect(csv).toContain(`\n0,,ran,minority,"minority groups (1 2)",p_value,${b.minority!.p_value}\n`);
  });

  it('draws the flipped images on a contact sheet of the expected size', async () => {
    const b = zero.blocks[0];
    expect(b.flipped_sheet).toBe('flipped.png');
    const file = join(zero.out, 'flipped.png');
    expect(existsSync(file)).toBe(true);
    const meta = await sharp(file).metadata();
    const shown = Math.min(b.flipped_images!, CONTACT_SHEET_MAX);
    const rows = readCsv(join(zero.out, 'samples.csv'));
    expect(b.flipped_images).toBe(rows.filter((r) => r.correct_before !== r.correct_after).length);
    // the grid of thumbnails under a title line (the sheet is at least as wide as the grid)
    const grid = contactSheetSize(shown, { title: 't' });
    expect(meta.height).toBe(grid.height);
    expect(meta.width!).toBeGreaterThanOrEqual(contactSheetSize(shown).width);
    expect(grid.rows).toBe(Math.ceil(shown / grid.columns));
  });

  it('gives a random change the flips of most repeats, per-repeat flips, a t-interval and the fraction of repeats right', async () => {
    const r = await runStudySetting(ctx, { split: 'test', ranking: 'largest', mode: 'random_noise', std: 0.5, topK: 8, repeats: 3, seed: 2, out: join(dir, 'noise'), perSample: true, quiet: true }, () => {});
    const b = r.blocks[0];
    expect(b.paired_test).toBe('mcnemar_exact_most_repeats');
    const rows = readCsv(join(r.out, 'samples.csv'));
    expect(Object.keys(rows[0])).toContain('fraction_correct_after');
    for (const g of b.groups) {
      // the images tested: right before and wrong in most repeats, and the reverse
      const mine = rows.filter((x) => Number(x.group) === g.id);
      expect(g.flips).toEqual({
        to_wrong: mine.filter((x) => x.correct_before === '1' && Number(x.fraction_correct_after) < 0.5).length,
        to_right: mine.filter((x) => x.correct_before === '0' && Number(x.fraction_correct_after) > 0.5).length,
      });
      expect(g.p_holm).toBeGreaterThanOrEqual(g.p_value!);
      expect(g.repeat_flips!.length).toBe(3);
      const changes = g.repeat_flips!.map((f) => (f.to_wrong - f.to_right) / g.count);
      const ref = JSON.parse(
        pythonCode(`import json, math\nimport numpy as np\nfrom scipy.stats import t\nx=np.array(${JSON.stringify(changes)})\nh=t.ppf(0.975,len(x)-1)*x.std(ddof=1)/math.sqrt(len(x))\nprint(json.dumps([x.mean()-h, x.mean()+h]))`),
      ) as number[];
      expect(Math.abs(g.change! - changes.reduce((a, c) => a + c, 0) / 3)).toBeLessThan(1e-12);
      expect(Math.abs(g.change_ci95![0] - ref[0])).toBeLessThan(1e-9);
      expect(Math.abs(g.change_ci95![1] - ref[1])).toBeLessThan(1e-9);
      // the mean fraction right after over the group's samples is its mean accuracy after
      expect(mine.reduce((a, x) => a + Number(x.fraction_correct_after), 0) / mine.length).toBeCloseTo(g.mean!, 12);
    }
  });

  it('marks the poorest samples an activated block ranked with', async () => {
    const r = await runStudySetting(ctx, { split: 'test', ranking: 'activated', mode: 'zero', topK: 3, poorestLimit: 5, out: join(dir, 'activated'), perSample: true, quiet: true }, () => {});
    const rows = readCsv(join(r.out, 'samples.csv'));
    expect(Object.keys(rows[0]).slice(-1)).toEqual(['poorest']);
    r.blocks.forEach((b, bi) => {
      const mine = rows.filter((x) => Number(x.block) === bi);
      if (b.status === 'skipped') return expect(mine.length).toBe(0);
      expect(mine.length).toBe(ctx.ds.samples.test.length);
      const poorest = mine.filter((x) => x.poorest === '1');
      expect(poorest.length).toBeGreaterThan(0);
      expect(poorest.length).toBeLessThanOrEqual(5);
      // the poorest samples of the source group: of that group, with the lowest probabilities of the true class
      expect(poorest.every((x) => Number(x.group) === b.source_group && x.source_group === String(b.source_group))).toBe(true);
      const others = mine.filter((x) => x.poorest === '0' && Number(x.group) === b.source_group).map((x) => Number(x.p_true_before));
      if (others.length) expect(Math.max(...poorest.map((x) => Number(x.p_true_before)))).toBeLessThanOrEqual(Math.min(...others));
    });
  });
});

describe('eval --per-sample', () => {
  it('writes samples.csv in the current folder: one row per image, right where the accuracies say', () => {
    const cwd = tempDir('spurmem-eval-samples-');
    const args = ['eval', '--checkpoint', checkpoint, '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'test', '--resolution', '32', '--threads', '1', '--json', '--quiet'];
    const json = JSON.parse(execFileSync(process.execPath, [join(repoDir, 'bin', 'spurmem.js'), ...args, '--per-sample'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as {
      groups: { id: number; count: number; accuracy: number }[];
    };
    const rows = readCsv(join(cwd, 'samples.csv'));
    expect(Object.keys(rows[0])).toEqual(['sample_id', 'file', 'split', 'y', 'attribute', 'group', 'p_true', 'correct']);
    expect(rows.map((x) => Number(x.sample_id))).toEqual(ctx.ds.samples.test.map((x) => x.index));
    for (const g of json.groups) {
      const mine = rows.filter((x) => Number(x.group) === g.id);
      expect(mine.length).toBe(g.count);
      expect(mine.filter((x) => x.correct === '1').length / g.count).toBeCloseTo(g.accuracy, 12);
    }
    // the same as the study's probabilities before
    const study = readCsv(join(zero.out, 'samples.csv'));
    expect(rows.map((x) => x.p_true)).toEqual(study.map((x) => x.p_true_before));
  });
});
