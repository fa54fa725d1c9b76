/**
 * The Slurm backend, for real: Debian's slurm-wlm (installed here when missing and the tests run as root),
 * a slurmctld and a slurmd on localhost with a generated single-node configuration (auth/none, no cgroup
 * plugins, state and spool in a temporary folder, ports picked free), a 4-setting sweep submitted with
 * sbatch, collected, and compared with the same sweep run in one process. When the daemons cannot start
 * here the test says why and is skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { sweep } from '../src/sweep/run.js';
import { runCli } from './helpers/cli.js';
import { buildDist, trainedRun } from './helpers/sweep.js';
import { ensureSlurm, startCluster, stopCluster, waitForJob, type Cluster } from './helpers/slurm.js';

describe('spurmem sweep --slurm on a real single-node Slurm', () => {
  let cluster: Cluster | null = null;
  let why: string | null = null;
  let base: { dir: string; root: string; run: string };

  beforeAll(async () => {
    why = ensureSlurm();
    if (!why) {
      const c = await startCluster();
      if (typeof c === 'string') why = `slurmctld/slurmd could not start here: ${c}`;
      else cluster = c;
    }
    if (why) return;
    buildDist();
    base = await trainedRun();
  });

  afterAll(async () => {
    if (!cluster) return;
    stopCluster(cluster);
    for (const d of cluster.daemons) if (d.exitCode === null) await new Promise((r) => d.once('exit', r));
    rmSync(cluster.dir, { recursive: true, force: true });
  });

  it('submits a job array of 4 settings, collects the results (equal to one process), resubmits only the missing one', async (ctx) => {
    if (!cluster) {
      console.warn(`SKIPPED: ${why ?? 'no cluster'}`);
      ctx.skip(why ?? 'no cluster');
      return;
    }
    const dir = join(base.dir, 'slurm');
    mkdirSync(dir);
    const config = join(dir, 'largest.yaml');
    writeFileSync(config, yamlStringify({ base: { run: base.run, threads: 1, batch_size: 64 }, grid: { mode: ['random_noise', 'zero'], top_k: [2, 8], std: 2, repeats: 2 } }));
    const before = process.env.SLURM_CONF;
    process.env.SLURM_CONF = cluster.env.SLURM_CONF;
    try {
      const sub = await runCli(['sweep', config, '--slurm', '--sbatch-args', '--time=10 --cpus-per-task=1']);
      expect(sub.stderr + sub.stdout).toMatch(/submitted Slurm job (\d+)/);
      expect(sub.code).toBe(0);
      const jobId = /submitted Slurm job (\d+)/.exec(sub.stdout)![1];
      const out = join(dir, 'largest');
      const script = readFileSync(join(out, 'slurm', 'sweep.sbatch'), 'utf8');
      expect(script).toMatch(/^#SBATCH --array=0-3$/m);
      expect(script).toMatch(/sweep .*sweep-config\.json --index "\$SLURM_ARRAY_TASK_ID"/);
      await waitForJob(cluster.env, jobId, 240);
      for (let i = 0; i < 4; i++) expect(existsSync(join(out, 'slurm', `${jobId}_${i}.out`)), `task ${i} log`).toBe(true);

      const col = await runCli(['sweep', 'collect', out]);
      expect(col.stderr).toBe('');
      expect(col.code).toBe(0);
      expect(col.stdout).toMatch(/4 of 4 settings finished/);
      const summary = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8'));
      expect(summary.settings.map((s: { key: string }) => s.key)).toEqual([
        'train-largest-random_noise-top2-std2-r2-seed0',
        'train-largest-random_noise-top8-std2-r2-seed0',
        'train-largest-zero-top2',
        'train-largest-zero-top8',
      ]);
      // the same sweep in one process gives the same table
      const local = await sweep(config, { out: join(dir, 'local'), log: () => undefined });
      expect(local.finished).toBe(4);
      expect(readFileSync(join(out, 'sweep.csv'), 'utf8')).toBe(readFileSync(join(dir, 'local', 'sweep.csv'), 'utf8'));

      // a setting without a result is reported by collect and is the only one submitted again
      rmSync(join(out, 'settings', 'train-largest-zero-top2', 'result.json'));
      const miss = await runCli(['sweep', 'collect', out]);
      expect(miss.code).toBe(1);
      expect(miss.stdout).toMatch(/3 of 4 settings finished; missing: 2/);
      expect(miss.stdout).toMatch(new RegExp(`see .*${jobId}_2\\.out`));
      const again = await runCli(['sweep', config, '--slurm']);
      expect(again.code).toBe(0);
      const job2 = /submitted Slurm job (\d+): array 2 \(1 task\)/.exec(again.stdout)?.[1];
      expect(job2, again.stdout + again.stderr).toBeDefined();
      await waitForJob(cluster.env, job2!, 120);
      const done = await runCli(['sweep', 'collect', out]);
      expect(done.code).toBe(0);
      expect(readFileSync(join(out, 'sweep.csv'), 'utf8')).toBe(readFileSync(join(dir, 'local', 'sweep.csv'), 'utf8'));
    } finally {
      if (before === undefined) delete process.env.SLURM_CONF;
      else process.env.SLURM_CONF = before;
    }
  });
});
