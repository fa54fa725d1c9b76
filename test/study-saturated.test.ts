/**
 * `activated` on a memorized checkpoint whose softmax head saturates on two groups (test/fixtures/
 * make_saturated.py): the groups that can rank run and equal the original procedure in PyTorch, the
 * others are reported with the reason; `--activated-loss logits` ranks every group.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareStudy, runStudySetting, type StudyContext, type StudyResult } from '../src/neurons/study.js';
import { sweep } from '../src/sweep/run.js';
import { sweepTable } from '../src/sweep/report.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { originalStudy, type OriginalStudy } from './helpers/original-study.js';
import { fixturesDir } from './helpers/python.js';

const fixture = join(fixturesDir, 'saturated');
const root = join(fixture, 'data');
const checkpoint = join(fixture, 'epoch_9_checkpoints.pth.tar');
let dir: string;
let ctx: StudyContext;

beforeAll(async () => {
  dir = tempDir('spurmem-saturated-');
  ctx = await prepareStudy({ checkpoint, dataset: 'folder', root, arch: 'resnet18', resolution: 32, threads: 1 });
}, 600_000);

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));

/** Our block and the original's: same channels, values within `tol` relative, same repeat accuracies. */
function expectSameBlock(ours: StudyResult['blocks'][number], theirs: OriginalStudy['blocks'][number], tol: number, repeats = true) {
  expect(ours.status).toBe('ran');
  expect(theirs.channels).not.toBeNull();
  expect(ours.channels.map((c) => `${c.name}[${c.index}]`)).toEqual(theirs.channels!.map((c) => `${c.name}[${c.index}]`));
  for (let i = 0; i < ours.channels.length; i++) expect(rel(ours.channels[i].value, theirs.channels![i].value), ours.channels[i].name).toBeLessThan(tol);
  if (repeats) expect(ours.repeats.map((m) => m.groups.map((g) => g.accuracy))).toEqual(theirs.repeats);
}

describe('activated ranking with a saturated softmax head', () => {
  it('ranks groups 0 and 2 as the original procedure does and explains groups 1 and 3', async () => {
    const lines: string[] = [];
    const out = join(dir, 'probabilities');
    const r = await runStudySetting(ctx, { split: 'train', ranking: 'activated', mode: 'zero', topK: 3, out }, (l) => lines.push(l));
    const o = await originalStudy({ dir, root, checkpoint, split: 'train', resolution: 32, ranking: 'activated', mode: 'zero', topK: 3, std: 0, seeds: r.blocks.map((b) => b.seeds) });
    expect(r.unmodified.groups.map((g) => g.accuracy)).toEqual(o.unmodified);
    expect(r.blocks.map((b) => b.status)).toEqual(['ran', 'skipped', 'ran', 'skipped']);
    for (const g of [0, 2]) expectSameBlock(r.blocks[g], o.blocks[g], 1e-5);
    // PyTorch finds no gradient at all for groups 1 and 3 either: the reason is the softmax, not us
    for (const g of [1, 3]) {
      expect(o.blocks[g].positive).toBe(0);
      const b = r.blocks[g];
      expect(b.reason).toBe(`group ${g}: all 6 samples are fitted with probability 1.0; the softmax head passes no gradient (--activated-loss logits ranks them)`);
      expect(b.channels).toEqual([]);
      expect(b.repeats).toEqual([]);
      expect(b.groups.every((x) => x.mean === null && x.change === null)).toBe(true);
    }
    expect(lines.filter((l) => l.includes('block skipped'))).toHaveLength(2);
    // the outputs say so too
    const text = readFileSync(r.file, 'utf8');
    expect(text).toContain('model modified based on gradient from loss with only group 0s samples');
    expect(text).toContain('no channels chosen from group 1s samples: group 1: all 6 samples are fitted with probability 1.0');
    const json = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as StudyResult;
    expect(json.blocks.map((b) => [b.status, b.reason === null])).toEqual([['ran', true], ['skipped', false], ['ran', true], ['skipped', false]]);
    expect(readFileSync(join(out, 'result.csv'), 'utf8')).toContain('\n1,1,skipped,0,');
  });

  it('--activated-loss logits: every group ranks, equal to the exact cross-entropy gradient backpropagated by PyTorch in float64', async () => {
    const r = await runStudySetting(ctx, { split: 'train', ranking: 'activated', activatedLoss: 'logits', mode: 'zero', topK: 3, out: join(dir, 'logits'), quiet: true }, () => {});
    expect(r.blocks.map((b) => b.status)).toEqual(['ran', 'ran', 'ran', 'ran']);
    expect(r.setting.activatedLoss).toBe('logits');
    const seeds = r.blocks.map((b) => b.seeds);
    const exact = await originalStudy({ dir, root, checkpoint, split: 'train', resolution: 32, ranking: 'activated', mode: 'zero', topK: 3, std: 0, seeds, loss: 'logits64' });
    // float32 against float64: the head's logits are large (margins up to 215), so the float32 forward and
    // backward differ from float64's by about 1e-4 relative on their own (and groups 1 and 3's values are
    // e^-margin, which turns a logit error into a relative one); the channels must match exactly
    for (const g of [0, 1, 2, 3]) expectSameBlock(r.blocks[g], exact.blocks[g], 1e-3);
    for (const g of [1, 3]) expect(r.blocks[g].channels[0].value).toBeLessThan(1e-40); // e^-margin: far below float32's range
    // PyTorch's float32 cross_entropy has no gradient at all for groups 1 and 3, where every margin is > 110
    const f32 = await originalStudy({ dir, root, checkpoint, split: 'train', resolution: 32, ranking: 'activated', mode: 'zero', topK: 3, std: 0, seeds, loss: 'logits' });
    expect([f32.blocks[1].positive, f32.blocks[3].positive]).toEqual([0, 0]);
    // group 2's gradient comes from a misclassified image, where float32 is accurate: the same as PyTorch's float32
    expectSameBlock(r.blocks[2], f32.blocks[2], 1e-5);
  });

  it('fails only when no group can rank, naming each', async () => {
    await expect(runStudySetting(ctx, { split: 'train', ranking: 'activated', mode: 'zero', topK: 100_000, out: join(dir, 'none'), quiet: true }, () => {})).rejects.toThrow(
      /could not rank channels for any group on the train split:\n {2}group 0: only \d+ channels have a nonzero gradient on its 8 poorest samples; cannot choose the top 100000\n {2}group 1: all 6 samples are fitted with probability 1\.0.*\n {2}group 2: only \d+ .*\n {2}group 3: all 6 samples/,
    );
  });

  it('spurmem study --activated-loss names the loss in the folder and the table shows skipped blocks', async () => {
    const base = ['study', '--checkpoint', checkpoint, '--dataset', 'folder', '--root', root, '--arch', 'resnet18', '--resolution', '32', '--threads', '1', '--ranking', 'activated', '--top-k', '2'];
    const cli = await runCli([...base, '--out', join(dir, 'cli')]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('  skipped, nothing modified: group 1: all 6 samples are fitted with probability 1.0');
    const cwd = process.cwd();
    process.chdir(dir); // the default folder goes under ./experiments/studies/
    const logits = await runCli([...base, '--activated-loss', 'logits', '--poorest-limit', '4', '--json']).finally(() => process.chdir(cwd));
    expect(logits.code).toBe(0);
    const res = JSON.parse(logits.stdout) as StudyResult;
    expect(res.out).toMatch(/train_zero_poorest_random_batch200_global_top2_most_activated_neuron_poorest4_logits$/);
    expect(res.blocks.every((b) => b.status === 'ran')).toBe(true);
    const bad = await runCli([...base, '--activated-loss', 'probs']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--activated-loss.*probabilities, logits/);
  });

  it('a sweep: a setting with skipped blocks is finished, one whose blocks all fail is failed with the reasons', async () => {
    const out = join(dir, 'sweep');
    const summary = await sweep(
      { base: { checkpoint, dataset: 'folder', root, arch: 'resnet18', resolution: 32, threads: 1 }, grid: { ranking: 'activated', top_k: [3, 100_000], activated_loss: 'probabilities' }, out },
      { log: () => undefined },
    );
    expect(summary.settings.map((x) => x.status)).toEqual(['finished', 'failed']);
    expect(summary.settings[1].message).toMatch(/could not rank channels for any group.*\n {2}group 0: only \d+ channels/s);
    const rows = readFileSync(join(out, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(rows.some((l) => l.includes('skipped'))).toBe(false); // skipped blocks have no rows
    // the table shows the blocks that ran, also those after a skipped one
    const table = sweepTable(summary);
    expect(table).toContain('[grad. group 0]');
    expect(table).toContain('[grad. group 2]');
    expect(table).not.toContain('[grad. group 1]');
  });
});

