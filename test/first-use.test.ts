/**
 * What a first user runs into: default finetune-prune folders named by their settings, refusals that name
 * --out and come before the dataset is read, --quiet, the warning for training from scratch at the
 * original's fine-tuning rate, error hints one step further, report verdicts that need enough images,
 * and commands printed the way they run.
 */
import { readdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPrefix } from '../src/demo/run.js';
import { MIN_CHANGE_IMAGES, verdict } from '../src/demo/report.js';
import { scratchWarning } from '../src/train/erm.js';
import { defaultFinetuneOut, finetuneSchema, finetuneSettingsName } from '../src/train/finetune-prune.js';
import { resolveTrainOptions } from '../src/train/options.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { smallDemo } from './helpers/demo-data.js';
import { repoDir } from './helpers/python.js';

const launcher = join(repoDir, 'bin', 'spurmem.js');

describe('first use', () => {
  it('names default finetune-prune folders by their settings, so different settings never collide', () => {
    const cfg = (o: Record<string, unknown>) => finetuneSchema.parse({ run: 'r', ...o });
    const base = { runDir: '/x/run', epoch: 3, checkpointPath: '/x/run/epoch_3_checkpoints.pth.tar' };
    expect(defaultFinetuneOut(cfg({}), base)).toBe('/x/run/finetune_prune/epoch3_magnitude-smallest_p0.01');
    const names = [
      {}, { pruneFraction: 0.02 }, { prune: ['activated'] }, { prune: ['activated'], pruneTopK: 5 }, { temperature: 0.1 }, { ceWeight: 1 },
      { lr: 1e-4 }, { batchSize: 50 }, { bnUpdate: 'dense-only' }, { seed: 1 }, { augment: false }, { scheduler: 'cosine' },
      { prune: ['magnitude-smallest', 'largest-channels'] },
    ].map((o) => finetuneSettingsName(cfg(o)));
    expect(new Set(names).size).toBe(names.length);
    // --epochs is not part of the name: a run continued with more epochs stays in its folder
    expect(finetuneSettingsName(cfg({ epochs: 3 }))).toBe(finetuneSettingsName(cfg({})));
    // another starting epoch, another folder; a checkpoint base goes under experiments/finetune_prune/<name>
    expect(defaultFinetuneOut(cfg({}), { ...base, epoch: 2 })).not.toBe(defaultFinetuneOut(cfg({}), base));
    expect(defaultFinetuneOut(cfg({}), { runDir: null, epoch: null, checkpointPath: '/y/erm_final.pth' })).toBe('experiments/finetune_prune/erm_final/magnitude-smallest_p0.01');
  });

  it('warns when training from scratch with Adam at the original fine-tuning rate, naming --pretrained and the demo recipe', () => {
    const w = scratchWarning(resolveTrainOptions({ dataset: 'folder', root: '.' }), 0);
    expect(w).toMatch(/lr 5e-6/);
    expect(w).toContain('--pretrained FILE');
    expect(w).toContain('--lr 1e-3 --scheduler cosine --head linear --label-order natural');
    expect(scratchWarning(resolveTrainOptions({ dataset: 'folder', root: '.', pretrained: 'w.pth' }), 0)).toBeUndefined();
    expect(scratchWarning(resolveTrainOptions({ dataset: 'folder', root: '.', lr: 1e-3 }), 0)).toBeUndefined();
    expect(scratchWarning(resolveTrainOptions({ dataset: 'folder', root: '.', optimizer: 'sgd' }), 0)).toBeUndefined();
    expect(scratchWarning(resolveTrainOptions({ dataset: 'folder', root: '.' }), 3)).toBeUndefined();
  });

  it(`calls no pattern on a net change of fewer than ${MIN_CHANGE_IMAGES} images`, () => {
    // one minority image of 60 lost (1.7 points), none of the majority: too few to tell
    expect(verdict(100 / 60, 0, { minority: 60, majority: 1139 })).toMatch(/too few to tell/);
    expect(verdict((100 * 5) / 60, 0, { minority: 60, majority: 1139 })).toMatch(/too few to tell/);
    expect(verdict((100 * 6) / 60, 0, { minority: 60, majority: 1139 })).toBe("the minority groups lose more: the paper's pattern");
    // the majority's change is large enough, the minority's is not: no pattern, and no "about equally" either
    expect(verdict((100 * 3) / 60, -1, { minority: 60, majority: 1139 })).toMatch(/minority change is under 6 images/);
    expect(verdict((100 * 2) / 60, (100 * 40) / 1139, { minority: 60, majority: 1139 })).toMatch(/minority change is under 6 images/);
    expect(verdict((100 * 20) / 60, (100 * 200) / 1139, { minority: 60, majority: 1139 })).toBe('the minority groups lose more: the paper\'s pattern');
    expect(verdict((100 * 6) / 60, (100 * 114) / 1139, { minority: 60, majority: 1139 })).toBe('both change about equally');
  });

  it('prints commands as `spurmem` only when that is this package on PATH, else with node and the launcher', () => {
    const bin = tempDir('spurmem-path-');
    expect(cliPrefix({ PATH: '' })).toEqual(['node', launcher]);
    symlinkSync(launcher, join(bin, 'spurmem'));
    expect(cliPrefix({ PATH: bin })).toEqual(['spurmem']);
    const other = tempDir('spurmem-other-');
    writeFileSync(join(other, 'spurmem'), '#!/bin/sh\n');
    expect(cliPrefix({ PATH: `${other}:${bin}` })).toEqual(['node', launcher]);
  });

  it('a run folder given as --checkpoint points to --run and its checkpoints (exit status 2)', async () => {
    const run = tempDir();
    writeFileSync(join(run, 'config.json'), '{}');
    writeFileSync(join(run, 'epoch_0_checkpoints.pth.tar'), '');
    writeFileSync(join(run, 'epoch_1_checkpoints.pth.tar'), '');
    const r = await runCli(['eval', '--checkpoint', run, '--dataset', 'folder', '--root', run]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${run} is a spurmem run folder, not a checkpoint file: pass --run ${run}`);
    expect(r.stderr).toContain(join(run, 'epoch_1_checkpoints.pth.tar'));
  });

  it("a folder dataset without 'place' names its columns and --attribute", async () => {
    const root = tempDir();
    writeFileSync(join(root, 'metadata.csv'), 'img_id,img_filename,y,split,background\n1,a.jpg,0,0,1\n');
    const r = await runCli(['data', 'check', '--dataset', 'folder', '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("missing column 'place'");
    expect(r.stderr).toContain("found 'img_id', 'img_filename', 'y', 'split', 'background'");
    expect(r.stderr).toContain('--attribute COLUMN');
  });

  it('train --quiet: no counts table, one published-counts warning at most, the scratch warning; a second run is refused before the dataset is read, naming --out; --resume with another option exits 2', async () => {
    const root = await smallDemo();
    const out = join(tempDir(), 'run');
    const args = ['train', '--dataset', 'folder', '--root', root, '--arch', 'resnet18', '--resolution', '32', '--batch-size', '64', '--epochs', '1', '--threads', '1', '--no-eval-initial', '--out', out];
    const r = await runCli([...args, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/group\s+name\s+train\s+val\s+test/);
    expect(r.stderr).not.toContain('folder dataset at');
    expect(r.stderr.match(/training from random weights with Adam at lr 5e-6/g)).toHaveLength(1);
    // the same folder again, with a dataset folder that does not exist: the folder is named, not the dataset
    const again = await runCli([...args.map((a) => (a === root ? join(root, 'missing') : a))]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${out} already holds a run`);
    expect(again.stderr).toContain('--out DIR');
    expect(again.stderr).not.toContain('missing');
    // eval --quiet leaves out the counts table too (without it, the table is printed)
    const evalArgs = ['eval', '--checkpoint', join(out, 'epoch_0_checkpoints.pth.tar'), '--dataset', 'folder', '--root', root, '--resolution', '32', '--split', 'val', '--threads', '1'];
    const loud = await runCli(evalArgs);
    expect(loud.code, loud.stderr).toBe(0);
    expect(loud.stdout).toContain('folder dataset at');
    const quiet = await runCli([...evalArgs, '--quiet']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).not.toContain('folder dataset at');
    expect(quiet.stdout).toContain('worst-group');
    const resume = await runCli([...args, '--resume', '--epochs', '2', '--lr', '1e-3']);
    expect(resume.code).toBe(2);
    expect(resume.stderr).toMatch(/--resume with other options than the run was started with: lr/);
  }, 600_000);

  it('finetune-prune writes into a folder named by its settings inside the run; the same settings again are refused naming --out', async () => {
    const root = await smallDemo();
    const run = join(tempDir(), 'erm');
    const t = await runCli(['train', '--dataset', 'folder', '--root', root, '--arch', 'resnet18', '--resolution', '32', '--batch-size', '64', '--epochs', '1', '--threads', '1', '--no-eval-initial', '--lr', '1e-3', '--out', run, '--quiet']);
    expect(t.code, t.stderr).toBe(0);
    const ft = ['finetune-prune', '--run', run, '--epochs', '1', '--batch-size', '64', '--threads', '1', '--no-augment', '--quiet'];
    const a = await runCli(ft);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toContain(`run folder: ${realpathSync(run)}/finetune_prune/epoch0_magnitude-smallest_p0.01_bs64_no-augment`);
    const b = await runCli([...ft, '--prune-fraction', '0.02']);
    expect(b.code, b.stderr).toBe(0);
    expect(readdirSync(join(run, 'finetune_prune')).sort()).toEqual(['epoch0_magnitude-smallest_p0.01_bs64_no-augment', 'epoch0_magnitude-smallest_p0.02_bs64_no-augment']);
    const c = await runCli(ft);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain('--out DIR');
  }, 600_000);
});
