/**
 * The Slurm backend, for real: Debian's slurm-wlm (installed here when missing and the tests run as root),
 * a slurmctld and a slurmd on localhost with a generated single-node configuration (auth/none, no cgroup
 * plugins, state and spool in a temporary folder, ports picked free), a 4-setting sweep submitted with
 * sbatch, collected, and compared with the same sweep run in one process. When the daemons cannot start
 * here the test says why and is skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, userInfo } from 'node:os';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { sweep } from '../src/sweep/run.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { buildDist, trainedRun } from './helpers/sweep.js';

const PLUGINS = ['/usr/lib/x86_64-linux-gnu/slurm-wlm', '/usr/lib/aarch64-linux-gnu/slurm-wlm', '/usr/lib/slurm-wlm', '/usr/lib64/slurm', '/usr/lib/slurm'];

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Installs slurm-wlm with apt-get when it is missing (first without, then with apt-get update). Returns why not, or null. */
function ensureSlurm(): string | null {
  const need = ['slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo'];
  if (need.every(has)) return null;
  if (process.getuid?.() !== 0) return `Slurm is not installed (${need.filter((c) => !has(c)).join(', ')} missing) and the tests do not run as root to install slurm-wlm`;
  if (!has('apt-get')) return 'Slurm is not installed and there is no apt-get to install slurm-wlm';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'slurm-wlm'], { env, encoding: 'utf8', timeout: 600_000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: 600_000 });
    r = install();
  }
  if (r.status !== 0 || !need.every(has)) return `apt-get install slurm-wlm failed: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ')}`;
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tail = (file: string, n = 6) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ') : '(no log)');

interface Cluster {
  dir: string;
  env: NodeJS.ProcessEnv;
  daemons: ChildProcess[];
}

/** Starts slurmctld and slurmd; returns the cluster, or why it could not start. */
async function startCluster(): Promise<Cluster | string> {
  const plugindir = PLUGINS.find((d) => existsSync(join(d, 'auth_none.so')));
  if (!plugindir) return `this Slurm has no auth/none plugin (looked in ${PLUGINS.join(', ')})`;
  const dir = tempDir('spurmem-slurm-');
  for (const d of ['state', 'spool']) mkdirSync(join(dir, d));
  const user = userInfo().username;
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=spurmemtest',
      'SlurmctldHost=localhost(127.0.0.1)',
      `SlurmctldPort=${await freePort()}`,
      `SlurmdPort=${await freePort()}`,
      `PluginDir=${plugindir}`,
      'AuthType=auth/none',
      'CredType=cred/none',
      `SlurmUser=${user}`,
      `SlurmdUser=${user}`,
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'SwitchType=switch/none',
      'MpiDefault=none',
      'MailProg=/bin/true',
      'ReturnToService=2',
      `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${availableParallelism()} State=UNKNOWN`,
      'PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const daemons = [
    spawn('slurmctld', ['-D', '-c', '-f', conf], { env, stdio: 'ignore' }),
    spawn('slurmd', ['-D', '-f', conf, '-N', 'localhost'], { env, stdio: 'ignore' }),
  ];
  const cluster = { dir, env, daemons };
  for (let i = 0; i < 60; i++) {
    await sleep(500);
    const dead = daemons.find((d) => d.exitCode !== null);
    if (dead) {
      stopCluster(cluster);
      return `${dead.spawnargs[0]} exited with code ${dead.exitCode}: slurmctld.log: ${tail(join(dir, 'slurmctld.log'))}; slurmd.log: ${tail(join(dir, 'slurmd.log'))}`;
    }
    const r = spawnSync('sinfo', ['-h', '-n', 'localhost', '-o', '%T'], { env, encoding: 'utf8' });
    if (r.status === 0 && /^(idle|mixed|allocated)/.test(r.stdout.trim())) return cluster;
  }
  stopCluster(cluster);
  return `the node did not become idle in 30 s: slurmctld.log: ${tail(join(dir, 'slurmctld.log'))}; slurmd.log: ${tail(join(dir, 'slurmd.log'))}`;
}

function stopCluster(c: Cluster): void {
  for (const d of c.daemons) if (d.exitCode === null && d.pid) process.kill(d.pid, 'SIGTERM');
}

async function waitForJob(env: NodeJS.ProcessEnv, jobId: string, seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    const r = spawnSync('squeue', ['-h', '-j', jobId, '-o', '%i %T'], { env, encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === '') return;
    await sleep(1000);
  }
  throw new Error(`Slurm job ${jobId} did not finish in ${seconds} s`);
}

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
