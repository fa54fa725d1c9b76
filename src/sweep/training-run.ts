/**
 * Running a training sweep (`command: train | finetune-prune`): plan it (expand the grid, freeze the
 * configuration and the plan in the output folder), run the runs that are not finished with one of three
 * backends, then collect the tables.
 *
 * - in-process (default): the runs one after another;
 * - workers (`workers: N` or `devices: [...]`): N child processes at a time, each running one setting as
 *   a Slurm task does (`spurmem sweep <out>/sweep-config.json --index i`), on its device, with
 *   cores / N libtorch threads unless the base names them;
 * - Slurm (`slurm: true`): a job array with one task per unfinished run.
 *
 * Each run writes `<out>/settings/<key>/run/` (the folder `spurmem train` writes) and is always started
 * with resume, so a run that was stopped continues after its last complete epoch. Beside the run folder:
 * `running.json` while a process runs it, `interrupted.json` when SIGTERM stopped it (a Slurm pre-emption
 * or time limit with --signal, or `scontrol requeue`), `error.json` when it failed, and `result.json`,
 * written last, when it finished. SIGTERM stops a run at the next batch (the epoch in progress is
 * dropped; every finished epoch is already on disk, each written atomically); a second SIGTERM exits at once.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../native.js';
import type { SweepSelection } from '../options/enums.js';
import { finetunePrune } from '../train/finetune-prune.js';
import { train } from '../train/erm.js';
import { RunInterrupted } from '../train/loop.js';
import { childCoresEnv, processCores } from '../util/cpu-budget.js';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import { lockFolder, writeJsonAtomic } from '../util/files.js';
import { readSweepFile } from './config.js';
import { CONFIG_FILE, PLAN_FILE, settingFolder, type SlurmSubmission } from './report.js';
import { submitSlurm } from './slurm.js';
import {
  TRAINING_COMMANDS,
  absoluteTrainingPaths,
  expandTrainingSweep,
  parseTrainingConfig,
  type SelectedBaseRuns,
  type TrainingPlannedSetting,
  type TrainingSweepCommand,
  type TrainingSweepConfig,
  type TrainingSweepConfigInput,
} from './training-config.js';
import { MARKERS, collectTrainingSweep, readTrainingPlan, runFolder, runStatus, selectEpoch, type TrainingSweepPlan, type TrainingSweepSummary } from './training-report.js';
import { RunDir } from '../train/run-dir.js';

/** Options of `sweep` (src/sweep/run.ts), for study and training sweeps alike. */
export interface SweepOptions {
  /** Output folder (overrides the configuration's `out`). */
  out?: string;
  /** Worker processes on the base's device (CPU: each gets cores / N libtorch threads). */
  workers?: number;
  /** One worker process per device, e.g. ['cuda:0', 'cuda:1']. */
  devices?: string[];
  /** Submit a Slurm job array instead of running here. */
  slurm?: boolean;
  /** Extra sbatch arguments (a string is split like a shell would, e.g. "--time=2:00:00 -p gpu"). */
  sbatchArgs?: string | string[];
  /** Overrides base.device (in-process, Slurm tasks). */
  device?: string;
  /** Overrides base.threads. */
  threads?: number;
  /** Run finished settings again. Also lets a folder holding a sweep of another base be reused. */
  force?: boolean;
  /** Folder relative paths of an object configuration are resolved against (default process.cwd()). */
  cwd?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** Whether a configuration (as written) is a training sweep's: its `command` is train or finetune-prune. */
export function isTrainingConfig(data: unknown, where = 'config'): data is TrainingSweepConfigInput {
  const c = data !== null && typeof data === 'object' ? (data as { command?: unknown }).command : undefined;
  if (c !== undefined && c !== 'study' && !(typeof c === 'string' && (TRAINING_COMMANDS as string[]).includes(c))) {
    throw new UsageError(`${where}: command: expected one of study, ${TRAINING_COMMANDS.join(', ')}, got ${JSON.stringify(c)}`);
  }
  return typeof c === 'string' && (TRAINING_COMMANDS as string[]).includes(c);
}

/**
 * Validates a training sweep configuration and makes its paths absolute (relative to the file's folder,
 * or `cwd` for an object; `out` defaults to the file's folder joined with its name without the extension).
 * @throws UsageError naming the file and the key; UsageError when an object has no `out`
 */
export function loadTrainingConfig(data: unknown, file: string | null, o: { out?: string; cwd?: string } = {}): { config: TrainingSweepConfig; file: string | null } {
  const where = file ?? 'config';
  const parsed = parseTrainingConfig(data as Record<string, unknown>, where);
  const cwd = o.cwd ?? process.cwd();
  if (o.out) parsed.out = resolve(cwd, o.out);
  if (!file && !parsed.out) throw new UsageError('config: out: the output folder is needed when the configuration is not a file');
  const dir = file ? dirname(file) : cwd;
  const defaultOut = file ? file.replace(/\.(json|ya?ml)$/i, '') : resolve(cwd, parsed.out!);
  return { config: absoluteTrainingPaths(parsed, dir, defaultOut), file };
}

/**
 * The ERM runs a finetune-prune sweep starts from: in the train sweep at `dir`, the hyperparameter setting
 * selected by `select` (over the whole sweep: it must make one table row), each seed's run at its
 * selected epoch (the train sweep's epoch_select).
 * @throws SpurmemError when `dir` is not a finished train sweep, or makes more than one table row
 */
export async function selectedBaseRuns(dir: string, select: SweepSelection | 'best' | undefined, where: string): Promise<{ runs: SelectedBaseRuns; select: SweepSelection }> {
  const plan = readTrainingPlan(dir);
  if (plan.command !== 'train') throw new SpurmemError(`${where}: base.sweep: ${dir} is a ${plan.command} sweep, expected a train sweep`);
  const how = select === undefined || select === 'best' ? plan.select : select;
  const s = await collectTrainingSweep(dir, { write: false, select: how });
  if (s.table.length === 0) throw new SpurmemError(`${where}: base.sweep: ${dir} has no finished run (spurmem sweep collect ${dir} says where its runs stand)`);
  if (s.table.length > 1) {
    throw new SpurmemError(
      `${where}: base.sweep: ${dir} makes ${s.table.length} table rows (${s.table.map((r) => JSON.stringify(r.group)).join('; ')}); a finetune-prune sweep starts from one: split the train sweep`,
    );
  }
  const runs = new Map<number, { run: string; epoch: number; key: string }>();
  for (const key of s.table[0].runs) {
    const row = s.rows.find((r) => r.key === key)!;
    if (row.seed === null || row.epoch === null) continue;
    runs.set(row.seed, { run: runFolder(s.out, key), epoch: row.epoch, key });
  }
  return { runs: { sweep: s.out, runs }, select: how };
}

/** Plans a training sweep: its runs, and how the tables select. */
export async function planTrainingSweep(cfg: TrainingSweepConfig, file: string | null): Promise<TrainingSweepPlan> {
  const where = file ?? 'config';
  let base: Awaited<ReturnType<typeof selectedBaseRuns>> | undefined;
  if (cfg.base.sweep !== undefined) {
    if (cfg.base.run !== undefined || cfg.base.checkpoint !== undefined) throw new UsageError(`${where}: base: give sweep, run or checkpoint, not more than one`);
    base = await selectedBaseRuns(cfg.base.sweep, cfg.base.select, where);
  } else if (cfg.base.select !== undefined) throw new UsageError(`${where}: base.select goes with base.sweep`);
  return {
    command: cfg.command,
    config_file: file,
    group_by: cfg.group_by ?? null,
    select: cfg.select,
    epoch_select: cfg.epoch_select,
    base_sweep: base ? { sweep: base.runs.sweep, select: base.select } : null,
    settings: expandTrainingSweep(cfg, where, base?.runs),
  };
}

/** The outcome of one run (what the in-process loop and a Slurm task report). */
export type TrainingOutcome = { index: number; ok: true; line: string } | { index: number; ok: false; interrupted: boolean; line: string; message: string };

/**
 * Runs one setting of a training sweep into `<out>/settings/<key>/run/` (resuming what is there, or from
 * scratch with `force`), with the marker files of the module comment. Its log lines go to
 * `<out>/settings/<key>/train.log`. Failures and interruptions are returned, not thrown.
 */
export async function runTrainingSetting(
  command: TrainingSweepCommand,
  out: string,
  p: TrainingPlannedSetting,
  o: { device?: string; threads?: number; force?: boolean; signal?: AbortSignal } = {},
): Promise<TrainingOutcome> {
  const folder = settingFolder(out, p.key);
  mkdirSync(folder, { recursive: true });
  for (const m of [MARKERS.error, MARKERS.interrupted, ...(o.force ? [MARKERS.result] : [])]) rmSync(join(folder, m), { force: true });
  const task = process.env.SLURM_ARRAY_JOB_ID && process.env.SLURM_ARRAY_TASK_ID ? `${process.env.SLURM_ARRAY_JOB_ID}_${process.env.SLURM_ARRAY_TASK_ID}` : null;
  writeJsonAtomic(join(folder, MARKERS.running), { pid: process.pid, host: hostname(), slurm_task: task, restarts: Number(process.env.SLURM_RESTART_COUNT ?? 0), started: new Date().toISOString() });
  const logFile = join(folder, 'train.log');
  const log = (l: string) => appendFileSync(logFile, l + '\n');
  const input = {
    ...p.input,
    ...(o.device !== undefined ? { device: o.device } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    out: runFolder(out, p.key),
    resume: !o.force,
    force: o.force === true,
    quiet: true,
  };
  const t0 = Date.now();
  const f = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));
  try {
    if (command === 'train') await train(input as Parameters<typeof train>[0], { log, signal: o.signal });
    else await finetunePrune(input as Parameters<typeof finetunePrune>[0], { log, signal: o.signal });
    const recs = new RunDir(runFolder(out, p.key)).records();
    const best = selectEpoch(recs, 'val_wga');
    const seconds = (Date.now() - t0) / 1000;
    writeJsonAtomic(join(folder, MARKERS.result), { index: p.index, key: p.key, command, setting: p.setting, input: p.input, seconds, finished: new Date().toISOString() });
    return {
      index: p.index,
      ok: true,
      line: `#${p.index} ${p.key}: best val worst-group ${f(best?.val.worst_group_accuracy)} (epoch ${best?.epoch ?? 'n/a'}), test worst-group ${f(best?.test.worst_group_accuracy)} (${seconds.toFixed(1)} s)`,
    };
  } catch (e) {
    const message = messageOf(e);
    log(`stopped: ${message}`);
    if (e instanceof RunInterrupted) {
      writeJsonAtomic(join(folder, MARKERS.interrupted), { index: p.index, key: p.key, last_complete_epoch: e.lastCompleteEpoch, slurm_task: task, time: new Date().toISOString() });
      return { index: p.index, ok: false, interrupted: true, line: `#${p.index} ${p.key}: interrupted (${message})`, message };
    }
    writeJsonAtomic(join(folder, MARKERS.error), { index: p.index, key: p.key, message, time: new Date().toISOString() });
    return { index: p.index, ok: false, interrupted: false, line: `#${p.index} ${p.key}: FAILED: ${message} (${logFile})`, message };
  } finally {
    rmSync(join(folder, MARKERS.running), { force: true });
  }
}

/**
 * An AbortSignal aborted by SIGTERM (a Slurm pre-emption, time limit or requeue), for the runs of this
 * process; a second SIGTERM exits at once (status 143). `done()` removes the handler.
 */
function onSigterm(log: (l: string) => void): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const done = takeSigterm((others) => {
    if (ac.signal.aborted) {
      // the second: what the process did before (the CLI removes its temporary files and exits 143)
      for (const l of others) l('SIGTERM');
      process.exit(143);
    }
    log('SIGTERM: stopping at the next batch; finished epochs are on disk and the run resumes after the last one');
    ac.abort();
  });
  return { signal: ac.signal, done };
}

/**
 * Makes `handler` the only SIGTERM listener (the CLI's exits at once, which would drop the marker files)
 * until the returned function puts the earlier listeners back; the handler gets them.
 */
function takeSigterm(handler: (others: NodeJS.SignalsListener[]) => void): () => void {
  const others = process.rawListeners('SIGTERM') as NodeJS.SignalsListener[];
  process.removeAllListeners('SIGTERM');
  const h = () => handler(others);
  process.on('SIGTERM', h);
  return () => {
    process.off('SIGTERM', h);
    for (const l of others) process.on('SIGTERM', l);
  };
}

/**
 * Writes the frozen configuration and the plan into the output folder.
 * @throws UsageError when the folder holds a sweep of another command (unless `force`)
 */
function freeze(cfg: TrainingSweepConfig, plan: TrainingSweepPlan, force: boolean): void {
  const planPath = join(cfg.out, PLAN_FILE);
  if (existsSync(planPath) && !force) {
    let old: { command?: string } | null = null;
    try {
      old = JSON.parse(readFileSync(planPath, 'utf8')) as { command?: string };
    } catch {
      old = null;
    }
    if (old && (old.command ?? 'study') !== cfg.command) throw new UsageError(`${cfg.out} holds a sweep of ${old.command ?? 'study'} settings, not ${cfg.command} runs; choose another out, or --force`);
  }
  writeJsonAtomic(join(cfg.out, CONFIG_FILE), cfg);
  writeJsonAtomic(planPath, plan);
}

/** Runs the pending settings on worker processes, each setting in its own `spurmem sweep CONFIG --index i` child. */
async function runChildren(cfg: TrainingSweepConfig, pending: TrainingPlannedSetting[], devices: string[], threads: number, log: (l: string) => void): Promise<void> {
  const bin = join(packageRoot(), 'bin', 'spurmem.js');
  const queue = [...pending];
  let done = 0;
  const children = new Set<ReturnType<typeof spawn>>();
  // SIGTERM: no new run starts, the running ones are stopped (each writes interrupted.json) and waited for
  const restore = takeSigterm(() => {
    queue.length = 0;
    for (const c of children) c.kill('SIGTERM');
  });
  try {
    await Promise.all(
      devices.map(async (device, w) => {
        for (let p = queue.shift(); p; p = queue.shift()) {
          const setting = p;
          const args = [bin, 'sweep', join(cfg.out, CONFIG_FILE), '--index', String(setting.index), '--device', device, '--threads', String(threads)];
          const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childCoresEnv(devices.length, { ...process.env, SPURMEM_PROGRESS: '0' }) });
          children.add(child);
          let stderr = '';
          child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          const code = await new Promise<number | string>((r) => child.on('close', (c, s) => r(s ?? c ?? 0)));
          children.delete(child);
          done += 1;
          const lines = stderr.trim().split('\n').filter(Boolean);
          const st = runStatus(cfg.out, setting);
          if (st.status !== 'finished' && st.status !== 'failed' && st.status !== 'requeued') {
            const message = `worker ${w} (${device}) exited (${typeof code === 'string' ? code : `code ${code}`}) while running this setting${lines.length ? `: ${lines[lines.length - 1]}` : ''}`;
            writeJsonAtomic(join(settingFolder(cfg.out, setting.key), MARKERS.error), { index: setting.index, key: setting.key, message, time: new Date().toISOString() });
          }
          log(`[${done}/${pending.length}] worker ${w} (${device}): ${lines[lines.length - 1] ?? `#${setting.index} ${setting.key}: exited (${code})`}`);
        }
      }),
    );
  } finally {
    restore();
  }
}

/**
 * Runs (or submits) a training sweep and collects its tables.
 * @returns the summary written to `<out>/sweep.json` (with `slurm` set, and the tables of what had finished, when submitted to Slurm)
 * @throws UsageError for a bad configuration or options; SpurmemError when sbatch fails. A failing run does
 *   not throw: it is listed in `failed` (its error.json and train.log say why).
 */
export async function runTrainingSweep(loaded: { config: TrainingSweepConfig; file: string | null }, o: SweepOptions, log: (l: string) => void): Promise<TrainingSweepSummary> {
  const cfg = loaded.config;
  const plan = await planTrainingSweep(cfg, loaded.file);
  const unlock = lockFolder(cfg.out, 'sweep');
  try {
    freeze(cfg, plan, o.force === true);
    const pending = plan.settings.filter((p) => o.force || runStatus(cfg.out, p).status !== 'finished');
    const n = plan.settings.length;
    log(`sweep: ${n} ${cfg.command} run${n === 1 ? '' : 's'}, ${n - pending.length} finished before, ${pending.length} to run (${cfg.out})`);
    let submission: SlurmSubmission | undefined;
    if (o.slurm) {
      if (pending.length > 0) {
        submission = await submitSlurm(cfg, pending.map((p) => p.index), { sbatchArgs: o.sbatchArgs, device: o.device, threads: o.threads });
        log(`submitted Slurm job ${submission.job_id} (array ${submission.array}); when it has finished: spurmem sweep collect ${cfg.out}`);
      }
    } else if (pending.length > 0 && (o.workers !== undefined || o.devices)) {
      const base = cfg.base as { device?: string; threads?: number };
      const devices = o.devices ?? Array.from({ length: o.workers! }, () => o.device ?? base.device ?? 'cpu');
      const threads = o.threads ?? base.threads ?? Math.max(1, Math.floor(processCores() / devices.length));
      await runChildren(cfg, pending, devices, threads, log);
    } else if (pending.length > 0) {
      const term = onSigterm(log);
      try {
        let done = 0;
        for (const p of pending) {
          if (term.signal.aborted) break;
          const r = await runTrainingSetting(cfg.command, cfg.out, p, { device: o.device, threads: o.threads, force: o.force, signal: term.signal });
          done += 1;
          log(`[${done}/${pending.length}] ${r.line}`);
        }
      } finally {
        term.done();
      }
    }
    const summary = await collectTrainingSweep(cfg.out);
    if (submission) summary.slurm = submission;
    return summary;
  } finally {
    unlock();
  }
}

/**
 * Runs setting `index` of a training sweep (what a Slurm array task and a worker process do), unless it
 * is finished; SIGTERM stops it after writing interrupted.json (a requeued task resumes it).
 * @returns the outcome, or null when it had finished before
 * @throws UsageError for an index out of range; SpurmemError when the frozen plan names another setting at `index`
 */
export async function runTrainingIndex(loaded: { config: TrainingSweepConfig; file: string | null }, index: number, o: SweepOptions, log: (l: string) => void): Promise<TrainingOutcome | null> {
  const cfg = loaded.config;
  const planPath = join(cfg.out, PLAN_FILE);
  // the frozen plan is the one the array was submitted with (a finetune-prune base sweep is not selected again)
  const plan = existsSync(planPath) ? readTrainingPlan(cfg.out) : await planTrainingSweep(cfg, loaded.file);
  if (!Number.isInteger(index) || index < 0 || index >= plan.settings.length) {
    throw new UsageError(`--index ${index}: the sweep has ${plan.settings.length} settings (0-${plan.settings.length - 1})`);
  }
  if (!existsSync(planPath)) freeze(cfg, plan, false);
  const p = plan.settings[index];
  if (!o.force && runStatus(cfg.out, p).status === 'finished') {
    log(`#${index} ${p.key}: finished before`);
    return null;
  }
  const term = onSigterm(log);
  try {
    const r = await runTrainingSetting(plan.command, cfg.out, p, { device: o.device, threads: o.threads, force: o.force, signal: term.signal });
    log(r.line);
    return r;
  } finally {
    term.done();
  }
}

/** Reads a sweep configuration file and tells a training sweep's (returned) from a study's (null). */
export function readTrainingConfigFile(file: string, o: { out?: string; cwd?: string } = {}): { config: TrainingSweepConfig; file: string } | null {
  const { path, data } = readSweepFile(file);
  if (!isTrainingConfig(data, file)) return null;
  const loaded = loadTrainingConfig(data, path, o);
  return { config: loaded.config, file: path };
}


