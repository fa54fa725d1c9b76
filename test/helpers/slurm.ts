/**
 * A real single-node Slurm for the tests: Debian's slurm-wlm (installed when missing and the tests run as
 * root), a slurmctld and a slurmd on localhost with a generated configuration (auth/none, no cgroup
 * plugins, state and spool in a temporary folder, ports picked free).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, userInfo } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './datasets.js';

const PLUGINS = ['/usr/lib/x86_64-linux-gnu/slurm-wlm', '/usr/lib/aarch64-linux-gnu/slurm-wlm', '/usr/lib/slurm-wlm', '/usr/lib64/slurm', '/usr/lib/slurm'];

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Installs slurm-wlm with apt-get when it is missing (first without, then with apt-get update). Returns why not, or null. */
export function ensureSlurm(): string | null {
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tail = (file: string, n = 6) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-n).join(' | ') : '(no log)');

export interface Cluster {
  dir: string;
  env: NodeJS.ProcessEnv;
  daemons: ChildProcess[];
}

/** Starts slurmctld and slurmd; returns the cluster, or why it could not start. */
export async function startCluster(): Promise<Cluster | string> {
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

export function stopCluster(c: Cluster): void {
  for (const d of c.daemons) if (d.exitCode === null && d.pid) process.kill(d.pid, 'SIGTERM');
}

export async function waitForJob(env: NodeJS.ProcessEnv, jobId: string, seconds: number): Promise<void> {
  for (let i = 0; i < seconds; i++) {
    const r = spawnSync('squeue', ['-h', '-j', jobId, '-o', '%i %T'], { env, encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === '') return;
    await sleep(1000);
  }
  throw new Error(`Slurm job ${jobId} did not finish in ${seconds} s`);
}

