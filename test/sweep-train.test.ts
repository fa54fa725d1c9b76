/**
 * Sweeps of training runs, for real: a 2 seeds x 2 learning rates `train` sweep and a `finetune-prune`
 * sweep on its selected runs, on a generated Waterbirds-layout folder at 32 px, run in one process (the
 * Node API), with 2 worker processes (the CLI) and as Slurm job arrays on a local single-node Slurm; the
 * tables must be byte-identical. The model selection and the seed statistics are computed again by Python
 * from the runs' metrics.jsonl. On Slurm one task is requeued (`scontrol requeue`) after its first epoch:
 * it must resume after that epoch and finish with the same metrics as the run that was never stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { makeDemoDataset } from '../src/data/fashion-waterbirds.js';
import { sweep } from '../src/sweep/run.js';
import { collectTrainingSweep, readTrainingPlan, runStatus } from '../src/sweep/training-report.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { pythonCode } from './helpers/python.js';
import { ensureSlurm, sleep, startCluster, stopCluster, waitForJob, type Cluster } from './helpers/slurm.js';
import { buildDist } from './helpers/sweep.js';

const TABLES = ['table.md', 'table.csv', 'table.tex', 'sweep.csv'];

let dir = '';
let root = '';

/** The two configuration files of a backend's folder: erm.yaml (train) and ft.yaml (finetune-prune from ./erm). */
function writeConfigs(sub: string): { erm: string; ft: string; out: string } {
  const out = join(dir, sub);
  mkdirSync(out, { recursive: true });
  const erm = join(out, 'erm.yaml');
  writeFileSync(
    erm,
    yamlStringify({
      command: 'train',
      base: { dataset: 'folder', root: '../data', arch: 'resnet18', resolution: 32, epochs: 2, batch_size: 32, optimizer: 'sgd', eval_initial: false, threads: 1 },
      grid: { lr: [0.01, 0.001], seed: [0, 1] },
    }),
  );
  const ft = join(out, 'ft.yaml');
  writeFileSync(ft, yamlStringify({ command: 'finetune-prune', base: { sweep: 'erm', select: 'best', epochs: 1, batch_size: 32, threads: 1 }, grid: { lr: 2e-4 } }));
  return { erm, ft, out };
}

const read = (...p: string[]) => readFileSync(join(...p), 'utf8');
/** A run's metrics.jsonl without the wall times. */
const metrics = (run: string) =>
  read(run, 'metrics.jsonl')
    .trim()
    .split('\n')
    .map((l) => {
      const { seconds: _s, eval_seconds: _e, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return rest;
    });

describe('training sweeps: train, then finetune-prune on the selected runs', () => {
  beforeAll(async () => {
    buildDist();
    dir = tempDir('spurmem-tsweep-');
    root = join(dir, 'data');
    await makeDemoDataset({ out: root, scale: 0.02, width: 40, height: 40, seed: 1 });
  });

  it('in one process (Node API): sweep.json, model selection and seed statistics as Python computes them', async () => {
    const { ft, out } = writeConfigs('one');
    const cfg = {
      command: 'train' as const,
      base: { dataset: 'folder', root, arch: 'resnet18', resolution: 32, epochs: 2, batch_size: 32, optimizer: 'sgd', eval_initial: false, threads: 1 },
      grid: { lr: [0.01, 0.001], seed: [0, 1] },
      out: join(out, 'erm'),
    };
    const s = await sweep(cfg, { log: () => undefined });
    expect(s).toEqual(JSON.parse(read(out, 'erm', 'sweep.json')));
    expect(s.finished).toBe(4);
    expect(s.settings.map((x) => x.key)).toEqual(['lr0.01-seed0', 'lr0.01-seed1', 'lr0.001-seed0', 'lr0.001-seed1']);
    for (const x of s.settings) expect(existsSync(join(x.folder, 'run', 'epoch_1_checkpoints.pth.tar'))).toBe(true);
    expect(s.table).toHaveLength(1);
    expect(s.group_by).toEqual(['command', 'algorithm', 'dataset', 'arch']); // the option table has an algorithm option

    // Python: each run's epoch of best validation worst-group accuracy (earlier on ties), the lr of best
    // seed-mean validation worst-group accuracy (first on ties), mean, stdev (ddof 1) and standard error
    const py = JSON.parse(
      pythonCode(`
import csv, json, math, statistics as st
out = ${JSON.stringify(join(out, 'erm'))}
rows = list(csv.DictReader(open(out + '/sweep.csv')))
epochs = {}
for r in rows:
    recs = [json.loads(l) for l in open(out + '/settings/' + r['key'] + '/run/metrics.jsonl') if l.strip()]
    best = max((x for x in recs if x['epoch'] >= 0), key=lambda x: (x['val']['worst_group_accuracy'], -x['epoch']))
    epochs[r['key']] = [best['epoch'], best['val']['worst_group_accuracy'], best['test']['worst_group_accuracy'], best['test']['overall_accuracy']]
cands = {}
for r in rows: cands.setdefault(r['lr'], []).append(r)
lr = max(cands, key=lambda k: st.mean(epochs[r['key']][1] for r in cands[k]))
stats = {}
for m in ['worst_group', 'average', 'mean', 'overall']:
    xs = [float(r['test_' + m]) for r in cands[lr]]
    sd = st.stdev(xs)
    stats[m] = [st.mean(xs), sd, sd / math.sqrt(len(xs))]
print(json.dumps({'epochs': epochs, 'lr': lr, 'stats': stats}))
`),
    ) as { epochs: Record<string, number[]>; lr: string; stats: Record<string, number[]> };
    for (const r of s.rows) {
      const [epoch, val, test, overall] = py.epochs[r.key];
      expect([r.epoch, r.val!.worst_group, r.test!.worst_group, r.test!.overall], r.key).toEqual([epoch, val, test, overall]);
    }
    const row = s.table[0];
    expect(row.selected).toEqual({ lr: Number(py.lr) });
    expect(row.n).toBe(2);
    for (const m of ['worst_group', 'average', 'mean', 'overall'] as const) {
      const [mean, sd, se] = py.stats[m];
      expect(row.test[m].mean!).toBeCloseTo(mean, 12);
      expect(row.test[m].std!).toBeCloseTo(sd, 12);
      expect(row.test[m].se!).toBeCloseTo(se, 12);
    }
    const csv = read(out, 'erm', 'table.csv').trim().split('\n');
    expect(csv[1]).toContain(`,lr=${py.lr},val_wga,`);
    expect(read(out, 'erm', 'table.md')).toMatch(/training-domain validation/);

    // redrawn: another grouping (one row per lr) and the oracle, labelled
    const redraw = await runCli(['sweep', 'table', join(out, 'erm'), '--group-by', 'lr', '--select', 'oracle']);
    expect(redraw.code, redraw.stderr).toBe(0);
    expect(redraw.stdout).toMatch(/ORACLE/);
    expect(read(out, 'erm', 'table.csv').trim().split('\n')).toHaveLength(3);
    const bad = await runCli(['sweep', 'table', join(out, 'erm'), '--group-by', 'lrr']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--group-by: 'lrr': not an option of these runs/);
    // back to the configuration's tables
    expect((await runCli(['sweep', 'table', join(out, 'erm')])).code).toBe(0);

    // finetune-prune from the train sweep: each seed's run of the selected lr, at its selected epoch
    const f = await runCli(['sweep', ft, '--json']);
    expect(f.code, f.stderr).toBe(0);
    const fs = JSON.parse(f.stdout);
    expect(fs).toEqual(JSON.parse(read(out, 'ft', 'sweep.json')));
    expect(fs.command).toBe('finetune-prune');
    expect(fs.settings.map((x: { key: string }) => x.key)).toEqual(['lr0.0002-seed0', 'lr0.0002-seed1']);
    for (const x of fs.settings) {
      const erm = `lr${py.lr}-seed${x.setting.seed}`;
      expect(x.base_run).toEqual({ run: join(out, 'erm', 'settings', erm, 'run'), epoch: py.epochs[erm][0], key: erm });
    }
    expect(fs.table[0].n).toBe(2);

    // started again: nothing to run
    const again = await runCli(['sweep', ft]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/2 finished before, 0 to run/);
  });

  it('with 2 worker processes (CLI): byte-identical tables', async () => {
    const { erm, ft, out } = writeConfigs('workers');
    const a = await runCli(['sweep', erm, '--workers', '2']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/4 of 4 runs finished/);
    const b = await runCli(['sweep', ft, '--workers', '2']);
    expect(b.code, b.stderr).toBe(0);
    for (const t of TABLES) {
      expect(read(out, 'erm', t), `erm/${t}`).toBe(read(dir, 'one', 'erm', t));
      expect(read(out, 'ft', t), `ft/${t}`).toBe(read(dir, 'one', 'ft', t));
    }
  });

  describe('as Slurm job arrays on a local Slurm', () => {
    let cluster: Cluster | null = null;
    let why: string | null = null;
    let before: string | undefined;
    const jobs: string[] = [];

    beforeAll(async () => {
      why = ensureSlurm();
      if (!why) {
        const c = await startCluster();
        if (typeof c === 'string') why = `slurmctld/slurmd could not start here: ${c}`;
        else cluster = c;
      }
      before = process.env.SLURM_CONF;
      if (cluster) process.env.SLURM_CONF = cluster.env.SLURM_CONF;
    });

    afterAll(async () => {
      if (before === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = before;
      if (!cluster) return;
      // a test that failed half-way leaves tasks behind: slurmd would wait for them
      if (jobs.length) spawnSync('scancel', jobs, { env: cluster.env });
      stopCluster(cluster);
      for (const d of cluster.daemons) {
        if (d.exitCode !== null) continue;
        const timer = setTimeout(() => d.kill('SIGKILL'), 30_000);
        await new Promise((r) => d.once('exit', r));
        clearTimeout(timer);
      }
      rmSync(cluster.dir, { recursive: true, force: true });
    });

    it('byte-identical tables; a task requeued after its first epoch resumes there and ends with the same metrics', async (ctx) => {
      if (!cluster) {
        console.warn(`SKIPPED: ${why ?? 'no cluster'}`);
        ctx.skip(why ?? 'no cluster');
        return;
      }
      const { erm, ft, out } = writeConfigs('slurm');
      const sub = await runCli(['sweep', erm, '--slurm', '--sbatch-args', '--requeue --time=10 --cpus-per-task=1']);
      expect(sub.code, sub.stderr).toBe(0);
      const jobId = /submitted Slurm job (\d+)/.exec(sub.stdout)![1];
      jobs.push(jobId);
      const plan = readTrainingPlan(join(out, 'erm'));
      const target = plan.settings[0];
      const run = join(out, 'erm', 'settings', target.key, 'run');
      // requeue task 0 once its first epoch is on disk and its second is not
      let requeued = false;
      for (let i = 0; i < 1200 && !requeued; i++) {
        const lines = existsSync(join(run, 'metrics.jsonl')) ? read(run, 'metrics.jsonl').trim().split('\n').filter(Boolean) : [];
        if (lines.length === 2) throw new Error('task 0 finished before it could be requeued');
        if (lines.length === 1) {
          const r = spawnSync('scontrol', ['requeue', `${jobId}_0`], { env: cluster.env, encoding: 'utf8' });
          expect(r.status, r.stderr).toBe(0);
          requeued = true;
        } else await sleep(100);
      }
      expect(requeued).toBe(true);
      // collect tells the stopped task from the others while it waits to start again
      let seen = '';
      for (let i = 0; i < 100 && seen !== 'requeued'; i++) {
        seen = runStatus(join(out, 'erm'), target, new Map()).status;
        if (seen !== 'requeued') await sleep(100);
      }
      expect(seen).toBe('requeued');
      const heldSummary = await collectTrainingSweep(join(out, 'erm'), { write: false });
      expect(heldSummary.requeued).toContain(0);
      expect(heldSummary.settings[0].message).toMatch(/stopped after epoch 0/);
      // Slurm holds a requeued task for a while (BeginTime); let it start now
      spawnSync('scontrol', ['update', `JobId=${jobId}_0`, 'StartTime=now'], { env: cluster.env, encoding: 'utf8' });
      await waitForJob(cluster.env, jobId, 600);
      const col = await runCli(['sweep', 'collect', join(out, 'erm')]);
      expect(col.code, col.stdout + col.stderr).toBe(0);
      const log = read(out, 'erm', 'settings', target.key, 'train.log');
      expect(log).toMatch(/stopped by a signal after epoch 0/);
      expect(log).toMatch(/resuming .* after epoch 0/);
      expect(metrics(run)).toEqual(metrics(join(dir, 'one', 'erm', 'settings', target.key, 'run')));

      const sub2 = await runCli(['sweep', ft, '--slurm', '--sbatch-args', '--time=10 --cpus-per-task=1']);
      expect(sub2.code, sub2.stderr).toBe(0);
      const job2 = /submitted Slurm job (\d+)/.exec(sub2.stdout)![1];
      jobs.push(job2);
      await waitForJob(cluster.env, job2, 600);
      const col2 = await runCli(['sweep', 'collect', join(out, 'ft')]);
      expect(col2.code, col2.stdout + col2.stderr).toBe(0);
      for (const t of TABLES) {
        expect(read(out, 'erm', t), `erm/${t}`).toBe(read(dir, 'one', 'erm', t));
        expect(read(out, 'ft', t), `ft/${t}`).toBe(read(dir, 'one', 'ft', t));
      }
    });
  });
});
