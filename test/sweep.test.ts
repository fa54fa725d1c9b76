import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { addon } from '../src/native.js';
import { wilsonInterval } from '../src/metrics/intervals.js';
import { study } from '../src/neurons/study.js';
import { expandSweep, loadSweepConfigFile, parseSweepConfig, settingKey } from '../src/sweep/config.js';
import { minorityGroups, type SweepSummary } from '../src/sweep/report.js';
import { sweep } from '../src/sweep/run.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { buildDist, trainedRun } from './helpers/sweep.js';

const quiet = { log: () => undefined };

describe('sweep configuration: expansion and validation', () => {
  it('expands the cross product, keeps only the keys that apply, drops duplicates, applies exclude and include', () => {
    const cfg = parseSweepConfig({
      base: { run: '/r' },
      grid: { mode: ['zero', 'random_init', 'rewind'], top_k: [1, 2], std: [0.1, 0.2], rewind_epochs: [1, 2], repeats: 3, seed: [0, 1] },
      exclude: [{ mode: 'random_init', std: 0.2, top_k: 2 }],
      include: [{ ranking: 'threshold', mode: 'zero', fraction: [0.01, 0.05] }, { mode: 'zero', top_k: 1 }],
    });
    const plan = expandSweep(cfg);
    const keys = plan.map((p) => p.key);
    expect(keys).toEqual([
      'train-largest-zero-top1',
      'train-largest-zero-top2',
      'train-largest-random_init-top1-std0.1-r3-seed0',
      'train-largest-random_init-top1-std0.1-r3-seed1',
      'train-largest-random_init-top1-std0.2-r3-seed0',
      'train-largest-random_init-top1-std0.2-r3-seed1',
      'train-largest-random_init-top2-std0.1-r3-seed0',
      'train-largest-random_init-top2-std0.1-r3-seed1',
      'train-largest-rewind-top1-back1',
      'train-largest-rewind-top1-back2',
      'train-largest-rewind-top2-back1',
      'train-largest-rewind-top2-back2',
      'train-threshold-zero-frac0.01',
      'train-threshold-zero-frac0.05',
    ]);
    expect(plan.map((p) => p.index)).toEqual(plan.map((_, i) => i));
    // zero: no std, seed, repeats or rewind_epochs; threshold: no top_k
    expect(plan[0].setting).toEqual({ split: 'train', ranking: 'largest', mode: 'zero', top_k: 1 });
    expect(plan[12].setting).toEqual({ split: 'train', ranking: 'threshold', mode: 'zero', fraction: 0.01, smallest: false, dropout_p: 0, faithful_threshold: false });
    expect(plan[2].setting).toEqual({ split: 'train', ranking: 'largest', mode: 'random_init', top_k: 1, std: 0.1, distribution: 'normal', repeats: 3, seed: 0 });
    // defaults count as given: top_k 3 is the study's default
    expect(expandSweep(parseSweepConfig({ base: { run: '/r' }, grid: { top_k: [3] }, include: [{}] })).map((p) => p.key)).toEqual(['train-largest-zero-top3']);
    // with a rewind checkpoint, rewind_epochs does not apply
    const rc = expandSweep(parseSweepConfig({ base: { checkpoint: '/c', dataset: 'folder', root: '/d', rewind_checkpoint: '/e' }, grid: { mode: 'rewind', rewind_epochs: [1, 5] } }));
    expect(rc.map((p) => p.key)).toEqual(['train-largest-rewind-top3']);
  });

  it("the original's Largest list (original-behaviour §5) expands to 34 distinct settings", () => {
    const cfg = parseSweepConfig({
      base: { run: '/r' },
      grid: { ranking: 'largest', mode: 'random_init', top_k: [1, 2, 3], std: [0.02, 0.15, 0.1], repeats: 10 },
      include: [{ mode: 'random_noise', std: [0.02, 0.01, 0.005] }, { mode: 'zero', top_k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }, { mode: 'rewind', rewind_epochs: [5, 10] }],
    });
    const plan = expandSweep(cfg);
    const count = (mode: string) => plan.filter((p) => p.setting.mode === mode).length;
    expect([count('random_init'), count('random_noise'), count('zero'), count('rewind')]).toEqual([9, 9, 10, 6]);
    expect(plan.length).toBe(34);
  });

  it('errors name the file, the key and what was expected', () => {
    const dir = tempDir();
    const cases: [string, string, RegExp][] = [
      ['a.yaml', 'base:\n  run: r\ngrid:\n  topk: [1, 2]\n', /a\.yaml: grid: unknown key 'topk' \(did you mean 'top_k'\?\) \(expected one of split, ranking, mode, top_k/],
      ['b.yaml', 'base:\n  run: r\ngrid:\n  top_k: [1, 0]\n', /b\.yaml: grid\.top_k\[1\]: expected a positive integer, got 0/],
      ['c.yaml', 'base:\n  run: r\ngrid:\n  mode: [zero, zap]\n', /c\.yaml: grid\.mode\[1\]: expected one of zero, random_init, random_noise, rewind, layer_rewind, got "zap"/],
      ['d.json', '{"base": {"run": "r", "batchsize": 3}}', /d\.json: base: unknown key 'batchsize' \(did you mean 'batch_size'\?\) \(expected one of run, checkpoint/],
      ['e.json', '{"base": {"run": "r"}\n "grid": {"std": [0.1]}}', /e\.json:2: not valid JSON/],
      ['f.yaml', 'base:\n  run: r\ngrid:\n  std: [0.1\n  mode: zero\n', /f\.yaml:\d+: not valid YAML: .*\n\n  std: \[0\.1\n  mode: zero\n  \^/],
      ['g.yaml', 'grid:\n  top_k: 1\n', /g\.yaml: base: missing/],
      ['h.yaml', 'base:\n  run: r\nexclude:\n  - {fraction: 2}\n', /h\.yaml: exclude\[0\]\.fraction: expected a number in \[0, 1\] or a list of them, got 2/],
      ['i.yaml', 'base:\n  checkpoint: c\n  dataset: folder\n  root: d\ngrid:\n  mode: [zero, rewind]\n', /i\.yaml: grid \(.*\): mode: rewind needs rewind_epochs N > 0 .*or a rewind checkpoint/],
      ['j.yaml', 'base:\n  run: r\ngrid:\n  ranking: [largest, threshold]\n  mode: layer_rewind\n  rewind_epochs: 1\n', /j\.yaml: grid .*layer_rewind works on channels, not with ranking: threshold/],
      ['k.txt', 'base: {}', /k\.txt: a sweep configuration must be a \.json, \.yaml or \.yml file/],
    ];
    for (const [name, text, re] of cases) {
      writeFileSync(join(dir, name), text);
      expect(() => {
        const l = loadSweepConfigFile(join(dir, name));
        expandSweep(l.config, l.file!);
      }, name).toThrow(re);
    }
  });

  it('the CLI reports a bad configuration with exit status 2 and the flag combinations it refuses', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), 'base:\n  run: r\ngrid:\n  top_k: [a]\n');
    const r = await runCli(['sweep', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml: grid\.top_k\[0\]: expected a positive integer, got "a"/);
    writeFileSync(join(dir, 'ok.yaml'), 'base:\n  run: r\n');
    expect((await runCli(['sweep', join(dir, 'ok.yaml'), '--workers', '2', '--devices', 'cpu'])).stderr).toMatch(/--workers N or --devices LIST, not both/);
    expect((await runCli(['sweep', join(dir, 'ok.yaml'), '--sbatch-args', '-p x'])).stderr).toMatch(/--sbatch-args goes with --slurm/);
  });

  it('minority groups: within each class the group with fewer training samples', () => {
    expect(minorityGroups([3498, 184, 56, 1057])).toEqual([1, 2]); // Waterbirds
    expect(minorityGroups([71629, 66874, 22880, 1387])).toEqual([1, 3]); // CelebA
    expect(minorityGroups([5, 5, 1, 2])).toEqual([2]);
  });
});

describe('spurmem sweep on a trained model', () => {
  let base: { dir: string; root: string; run: string };
  let config: Record<string, unknown>;
  let inProcess: SweepSummary;

  beforeAll(async () => {
    buildDist();
    base = await trainedRun();
    // settings whose results differ from each other (perturbations of a few or many channels, two seeds;
    // much larger noise turns this small model into a constant predictor, which every setting then equals)
    config = {
      base: { run: base.run, threads: 1, batch_size: 64 },
      grid: { mode: ['random_noise', 'random_init'], top_k: [2, 8], std: 0.3, repeats: 2, seed: [0, 1] },
      include: [{ mode: 'zero', top_k: 8 }, { ranking: 'threshold', mode: 'zero', fraction: 0.01 }, { mode: 'rewind', top_k: 8, rewind_epochs: 2 }],
    };
  });

  it('in one process: a result folder per setting, sweep.csv / sweep.json rows, plots; the numbers are the study\'s', async () => {
    const out = join(base.dir, 'inproc');
    inProcess = await sweep({ ...config, out }, quiet);
    expect(inProcess.settings.length).toBe(11);
    expect(inProcess.finished).toBe(11);
    expect(inProcess.failed).toEqual([]);
    for (const s of inProcess.settings) {
      expect(existsSync(join(s.folder, 'result.json')), s.key).toBe(true);
      expect(existsSync(join(s.folder, 'result.csv')), s.key).toBe(true);
    }
    // 11 settings x (4 groups + worst_group, average, mean, minority, majority)
    expect(inProcess.rows.length).toBe(11 * 9);
    const csv = readFileSync(join(out, 'sweep.csv'), 'utf8').trim().split('\n');
    expect(csv.length).toBe(1 + 11 * 9);
    expect(csv[0]).toBe(
      'index,key,split,ranking,mode,top_k,fraction,smallest,dropout_p,faithful_threshold,std,distribution,rewind_epochs,repeats,poorest_limit,activated_loss,seed,block,source_group,group,name,count,minority,accuracy_unmodified,accuracy_mean,accuracy_std,change,accuracy_unmodified_ci_low,accuracy_unmodified_ci_high,ci_level,to_wrong,to_right,p_value,p_holm,change_ci_low,change_ci_high',
    );
    expect(JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')).rows).toEqual(inProcess.rows);
    expect(inProcess.minority_groups).toEqual([1, 2]);
    // the settings really differ (the equality test below would otherwise prove little)
    const changes = new Set(inProcess.rows.filter((r) => r.group === 'minority' || r.group === 'majority').map((r) => r.change));
    expect(changes.size).toBeGreaterThan(4);
    for (const mode of ['random_noise', 'random_init', 'zero', 'rewind']) {
      expect(existsSync(join(out, 'plots', `change_largest_train_${mode}.svg`)), mode).toBe(true);
      expect(existsSync(join(out, 'plots', `change_largest_train_${mode}.png`)), mode).toBe(true);
    }
    expect(existsSync(join(out, 'plots', 'change_threshold_train_zero.svg'))).toBe(true);
    // minority row = pooled accuracy of groups 1 and 2; a group row = the study's own statistics
    const s5 = inProcess.settings[5];
    const r = JSON.parse(readFileSync(join(s5.folder, 'result.json'), 'utf8'));
    const g = r.unmodified.groups;
    const minority = inProcess.rows.find((x) => x.index === 5 && x.group === 'minority')!;
    expect(minority.accuracy_unmodified).toBeCloseTo((g[1].correct + g[2].correct) / (g[1].count + g[2].count), 12);
    // its interval: Wilson on the pooled counts; a group row's is the study's own, an aggregate's the study's bootstrap interval
    expect([minority.accuracy_unmodified_ci_low, minority.accuracy_unmodified_ci_high]).toEqual(wilsonInterval(g[1].correct + g[2].correct, g[1].count + g[2].count, 0.95));
    expect(minority.ci_level).toBe(0.95);
    const g1 = inProcess.rows.find((x) => x.index === 5 && x.group === 1)!;
    expect([g1.accuracy_unmodified_ci_low, g1.accuracy_unmodified_ci_high]).toEqual(g[1].ci95);
    const worst = inProcess.rows.find((x) => x.index === 5 && x.group === 'worst_group')!;
    expect([worst.accuracy_unmodified_ci_low, worst.accuracy_unmodified_ci_high]).toEqual(r.unmodified.worst_group_accuracy_ci95);
    expect(r.blocks[0].repeats[0].groups[0].ci95).toHaveLength(2);
    // the paired columns are the study's own: per group its flips, p-value and t-interval; minority the pooled row's
    expect([g1.to_wrong, g1.to_right]).toEqual([r.blocks[0].groups[1].flips.to_wrong, r.blocks[0].groups[1].flips.to_right]);
    expect(g1.p_value).toBe(r.blocks[0].groups[1].p_value);
    expect([g1.change_ci_low, g1.change_ci_high]).toEqual(r.blocks[0].groups[1].change_ci95);
    expect(r.blocks[0].minority.groups).toEqual([1, 2]);
    expect(minority.p_holm).toBe(r.blocks[0].minority.p_holm);
    expect(worst.p_value).toBeNull();
    // the same setting run on its own by `spurmem study` gives the same numbers
    const alone = await study({ run: base.run, threads: 1, batchSize: 64, mode: 'random_init', topK: 2, std: 0.3, repeats: 2, seed: 1, out: join(base.dir, 'alone') }, () => undefined);
    expect(inProcess.settings[5].key).toBe('train-largest-random_init-top2-std0.3-r2-seed1');
    expect(alone.blocks[0].groups.map((x) => x.mean)).toEqual(r.blocks[0].groups.map((x: { mean: number }) => x.mean));
    expect(alone.blocks[0].channels).toEqual(r.blocks[0].channels);
  });

  it('two worker processes give the identical sweep.csv', async () => {
    const out = join(base.dir, 'workers');
    const logs: string[] = [];
    const w = await sweep({ ...config, out }, { workers: 2, log: (l) => logs.push(l) });
    expect(w.finished).toBe(11);
    expect(readFileSync(join(out, 'sweep.csv'), 'utf8')).toBe(readFileSync(join(base.dir, 'inproc', 'sweep.csv'), 'utf8'));
    // both workers took settings from the queue
    expect(logs.some((l) => /worker 0 \(cpu\)/.test(l))).toBe(true);
    expect(logs.some((l) => /worker 1 \(cpu\)/.test(l))).toBe(true);
  });

  it('--devices: a device the machine lacks stops every worker, and the sweep says why', async (ctx) => {
    let missing: string | null = null;
    try {
      addon().checkDevice('cuda:7');
    } catch (e) {
      missing = (e as Error).message;
    }
    if (missing === null) {
      ctx.skip('this machine has a cuda:7');
      return;
    }
    await expect(sweep({ ...config, out: join(base.dir, 'nodevice') }, { devices: ['cuda:7'], log: () => undefined })).rejects.toThrow(
      /no sweep worker could start: worker 0 \(cuda:7\): /,
    );
  });

  it('a sweep started again skips finished settings, runs missing and failed ones, and reports failures', async () => {
    const dir = join(base.dir, 'restart');
    const file = join(dir, 'grid.yaml');
    rmSync(dir, { recursive: true, force: true });
    const cfg = { base: { run: base.run, threads: 1, batch_size: 64 }, grid: { mode: ['zero', 'rewind'], top_k: [1, 100000], rewind_epochs: [1] } };
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, yamlStringify(cfg));
    const first = await runCli(['sweep', file]);
    // the top 100000 channels do not exist: those settings fail when they run; the rest finish
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/2 of 4 settings finished; failed: 1, 3/);
    expect(first.stderr).toMatch(/failed: #1 train-largest-zero-top100000: only \d+ channels have a positive score/);
    const out = join(dir, 'grid');
    expect(existsSync(join(out, 'settings', 'train-largest-zero-top100000', 'error.json'))).toBe(true);
    const zero1 = join(out, 'settings', 'train-largest-zero-top1', 'result.json');
    const mtime = statSync(zero1).mtimeMs;
    rmSync(join(out, 'settings', 'train-largest-rewind-top1-back1', 'result.json'));
    const logs: string[] = [];
    const again = await sweep(file, { log: (l) => logs.push(l) });
    expect(logs[0]).toMatch(/sweep: 4 settings, 1 finished before, 3 to run/);
    expect(logs.filter((l) => /^\[\d\/3\]/.test(l)).map((l) => l.replace(/:.*/, ''))).toEqual([
      '[1/3] #1 train-largest-zero-top100000',
      '[2/3] #2 train-largest-rewind-top1-back1',
      '[3/3] #3 train-largest-rewind-top100000-back1',
    ]);
    expect(statSync(zero1).mtimeMs).toBe(mtime);
    expect(again.failed).toEqual([1, 3]);
    expect(again.finished).toBe(2);
    // a rewind source that the run folder lacks is refused before anything runs
    writeFileSync(file, yamlStringify({ ...cfg, grid: { ...cfg.grid, rewind_epochs: [9] } }));
    await expect(sweep(file, quiet)).rejects.toThrow(/setting 2 \(train-largest-rewind-top1-back9\): rewind_epochs 9 reaches before epoch 0/);
    // a sweep of another base in the same folder is refused
    writeFileSync(file, yamlStringify({ ...cfg, base: { ...cfg.base, epoch: 1 } }));
    await expect(sweep(file, quiet)).rejects.toThrow(/holds a sweep of another base \(base\.epoch: undefined there, 1 now\)/);
    expect(settingKey(again.settings[0].setting)).toBe('train-largest-zero-top1');
  });
});
