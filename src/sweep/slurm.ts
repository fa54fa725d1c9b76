/**
 * The Slurm backend: an sbatch script with one array task per setting (`--array=0-(n-1)`, or only the
 * unfinished indices when a sweep is started again); task i runs
 * `spurmem sweep <out>/sweep-config.json --index i` with the same node and spurmem that submitted it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as shellParse, quote as shellQuote } from 'shell-quote';
import { packageRoot } from '../native.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { appendJsonLine, writeFileAtomic } from '../util/files.js';
import { CONFIG_FILE, type SlurmSubmission } from './report.js';

const run = promisify(execFile);

/** Array indices as sbatch's --array wants them: ranges and single values, e.g. `0-3,7,9-10`. */
export function arraySpec(indices: number[]): string {
  const xs = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? String(xs[i]) : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Splits --sbatch-args like a shell (quotes, backslashes); `$VAR` stays literal.
 * @throws UsageError for shell operators (;, |, &&, >, ...)
 */
export function splitSbatchArgs(args: string | string[] | undefined): string[] {
  if (args === undefined) return [];
  if (Array.isArray(args)) return args;
  return shellParse(args, (name) => `$${name}`).map((t) => {
    if (typeof t === 'string') return t;
    throw new UsageError(`--sbatch-args: '${'op' in t ? t.op : JSON.stringify(t)}' is not allowed (sbatch options only)`);
  });
}

/** The sbatch script of a sweep. */
export function sbatchScript(cfg: { out: string }, array: string, o: { device?: string; threads?: number } = {}): string {
  const bin = join(packageRoot(), 'bin', 'spurmem.js');
  const cmd = [process.execPath, bin, 'sweep', join(cfg.out, CONFIG_FILE), '--index'];
  const extra: string[] = [];
  if (o.device !== undefined) extra.push('--device', o.device);
  if (o.threads !== undefined) extra.push('--threads', String(o.threads));
  const logs = join(cfg.out, 'slurm', '%A_%a.out');
  return [
    '#!/bin/bash',
    '#SBATCH --job-name=spurmem-sweep',
    `#SBATCH --array=${array}`,
    `#SBATCH --output=${logs.includes(' ') ? `"${logs}"` : logs}`,
    `#SBATCH --chdir=${cfg.out.includes(' ') ? `"${cfg.out}"` : cfg.out}`,
    '#SBATCH --ntasks=1',
    `# spurmem sweep: task i runs setting i of ${join(cfg.out, 'sweep-plan.json')}; merge with: spurmem sweep collect ${shellQuote([cfg.out])}`,
    'set -eu',
    `exec ${shellQuote(cmd)} "$SLURM_ARRAY_TASK_ID"${extra.length ? ' ' + shellQuote(extra) : ''}`,
    '',
  ].join('\n');
}

/**
 * Writes `<out>/slurm/sweep.sbatch` and submits it with `sbatch --parsable`; records the job in
 * `<out>/slurm/submissions.jsonl`.
 * @throws SpurmemError when sbatch is not on PATH or refuses the job (with its message)
 */
export async function submitSlurm(
  cfg: { out: string },
  indices: number[],
  o: { sbatchArgs?: string | string[]; device?: string; threads?: number } = {},
): Promise<SlurmSubmission> {
  const array = arraySpec(indices);
  const script = join(cfg.out, 'slurm', 'sweep.sbatch');
  writeFileAtomic(script, sbatchScript(cfg, array, o));
  const args = ['--parsable', ...splitSbatchArgs(o.sbatchArgs), script];
  let stdout: string;
  try {
    ({ stdout } = await run('sbatch', args, { encoding: 'utf8' }));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new SpurmemError("sbatch: not found on PATH (--slurm needs Slurm's client commands on this machine)");
    throw new SpurmemError(`sbatch ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim()}`);
  }
  const jobId = stdout.trim().split(';')[0];
  if (!/^\d+$/.test(jobId)) throw new SpurmemError(`sbatch --parsable printed '${stdout.trim()}', expected a job id`);
  const submission: SlurmSubmission = { job_id: jobId, array, script, indices: [...indices].sort((a, b) => a - b) };
  appendJsonLine(join(cfg.out, 'slurm', 'submissions.jsonl'), { ...submission, time: new Date().toISOString() });
  return submission;
}
