/**
 * Running a sweep: plan it (expand the grid, freeze the configuration in the output folder), run the
 * settings that are not finished with one of three backends, then collect the tables and plots.
 *
 * - in-process (default): the base (model, decoded split, checkpoints) is loaded once; every setting is
 *   prepared on it in turn (ranked, its repeats' edits drawn and saved, the weights restored), then all
 *   are evaluated in one pass over the split, the unchanged prefix of the network once per batch;
 * - workers (`workers: N` or `devices: [...]`): N child processes (one per device), each loads the base
 *   once and takes settings from a shared queue over IPC;
 * - Slurm (`slurm: true`): a job array with one task per unfinished setting; task i runs
 *   `spurmem sweep <out>/sweep-config.json --index i`; `spurmem sweep collect <out>` merges.
 *
 * Every setting writes its own folder `<out>/settings/<key>/`; its result.json, written last and
 * atomically, marks it finished, so a sweep started again skips it. A failed setting leaves error.json
 * and is run again next time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveBase } from '../base.js';
import { prepareStudy } from '../neurons/study.js';
import { processCores } from '../util/cpu-budget.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { lockFolder, writeJsonAtomic } from '../util/files.js';
import {
  baseCheckpointPath,
  expandSweep,
  loadSweepConfigFile,
  loadSweepConfigObject,
  studyBase,
  type LoadedSweepConfig,
  type PlannedSetting,
  type SweepConfig,
  type SweepConfigInput,
} from './config.js';
import { CONFIG_FILE, PLAN_FILE, collectSweep, settingStatus, type SweepPlan, type SweepSummary } from './report.js';
import { submitSlurm } from './slurm.js';
import { runPlannedSetting, runPlannedSettings, type SettingOutcome } from './run-setting.js';
import { runWorkers } from './worker-pool.js';
import type { TrainingSweepConfigInput } from './training-config.js';
import { isTrainingConfig, loadTrainingConfig, readTrainingConfigFile, runTrainingIndex, runTrainingSweep, type SweepOptions, type TrainingOutcome } from './training-run.js';

export type { SweepOptions } from './training-run.js';
import type { TrainingSweepSummary } from './training-report.js';


/** Base keys whose change makes earlier results another experiment. */
const RESULT_KEYS = ['run', 'checkpoint', 'rewind_checkpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'label_order', 'resolution', 'resize', 'vit_ln_eps', 'skip_bad_images'] as const;

function load(config: string | SweepConfigInput, o: SweepOptions): LoadedSweepConfig {
  const loaded =
    typeof config === 'string' ? loadSweepConfigFile(config) : loadSweepConfigObject(o.out && config && typeof config === 'object' ? { ...config, out: o.out } : config, o.cwd);
  if (o.out) loaded.config.out = resolve(o.cwd ?? process.cwd(), o.out);
  if (o.device !== undefined) loaded.config.base.device = o.device;
  if (o.threads !== undefined) loaded.config.base.threads = o.threads;
  return loaded;
}

/** Plans a sweep: the expanded settings, and the checkpoint they study. */
export function planSweep(loaded: LoadedSweepConfig): SweepPlan {
  const cfg = loaded.config;
  const where = loaded.file ?? 'config';
  studyBase(cfg);
  if (cfg.base.run && !existsSync(resolve(cfg.base.run))) throw new SpurmemError(`${where}: base.run: ${resolve(cfg.base.run)}: no such run folder`);
  if (cfg.base.checkpoint && !existsSync(resolve(cfg.base.checkpoint))) throw new SpurmemError(`${where}: base.checkpoint: ${resolve(cfg.base.checkpoint)}: no such file`);
  const settings = expandSweep(cfg, where);
  return {
    config_file: loaded.file,
    checkpoint: baseCheckpointPath(cfg),
    rewind_checkpoint: cfg.base.rewind_checkpoint !== undefined,
    minority_groups: cfg.minority_groups ?? null,
    settings,
  };
}

/**
 * Writes the frozen configuration and the plan into the output folder.
 * @throws UsageError when the folder holds a sweep of another base (unless `force`)
 */
function freeze(cfg: SweepConfig & { out: string }, plan: SweepPlan, force: boolean): void {
  const cfgPath = join(cfg.out, CONFIG_FILE);
  if (existsSync(cfgPath) && !force) {
    let old: SweepConfig | undefined;
    try {
      old = JSON.parse(readFileSync(cfgPath, 'utf8')) as SweepConfig;
    } catch {
      old = undefined;
    }
    for (const k of RESULT_KEYS) {
      const a = old?.base?.[k];
      const b = cfg.base[k];
      if (old && JSON.stringify(a) !== JSON.stringify(b)) {
        throw new UsageError(`${cfg.out} holds a sweep of another base (base.${k}: ${JSON.stringify(a)} there, ${JSON.stringify(b)} now); choose another out, or --force to run every setting again there`);
      }
    }
  }
  writeJsonAtomic(cfgPath, cfg);
  writeJsonAtomic(join(cfg.out, PLAN_FILE), plan);
}

/** The training sweep of a configuration (file or object), or null for a sweep of studies. */
function loadTraining(config: string | SweepConfigInput | TrainingSweepConfigInput, o: SweepOptions) {
  if (typeof config === 'string') return readTrainingConfigFile(config, { out: o.out, cwd: o.cwd });
  return isTrainingConfig(config) ? loadTrainingConfig(config, null, { out: o.out, cwd: o.cwd }) : null;
}

/**
 * Runs (or submits) a sweep and collects its results. The configuration's `command` says what each
 * setting runs: `study` (the default: study settings on one trained model), or `train` / `finetune-prune`
 * (one training run per setting; src/sweep/training-run.ts).
 * @param config a configuration file (.json / .yaml) or a configuration object (snake_case keys, as in
 *   the file; `out` required)
 * @returns the summary written to `<out>/sweep.json` (with `slurm` set and no files written when the
 *   settings were submitted to Slurm): a SweepSummary for studies, a TrainingSweepSummary (its `command`
 *   set) for training runs
 * @throws UsageError for a bad configuration (naming the file and the key) or bad options; SpurmemError
 *   when the base cannot be loaded, or sbatch fails. A failing setting does not throw: it is listed in
 *   `failed` (its error.json says why).
 */
export async function sweep(config: TrainingSweepConfigInput, o?: SweepOptions): Promise<TrainingSweepSummary>;
export async function sweep(config: SweepConfigInput, o?: SweepOptions): Promise<SweepSummary>;
export async function sweep(config: string, o?: SweepOptions): Promise<SweepSummary | TrainingSweepSummary>;
export async function sweep(config: string | SweepConfigInput | TrainingSweepConfigInput, o: SweepOptions = {}): Promise<SweepSummary | TrainingSweepSummary> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (o.workers !== undefined && (!Number.isInteger(o.workers) || o.workers < 1)) throw new UsageError(`--workers expects a positive integer, got ${o.workers}`);
  if (o.workers !== undefined && o.devices) throw new UsageError('give --workers N or --devices LIST, not both');
  if (o.slurm && (o.workers !== undefined || o.devices)) throw new UsageError('--slurm runs one task per setting; it does not take --workers or --devices');
  if (o.devices && o.devices.length === 0) throw new UsageError('--devices expects a comma-separated list such as cuda:0,cuda:1');
  const training = loadTraining(config, o);
  if (training) return runTrainingSweep(training, o, log);
  const loaded = load(config as string | SweepConfigInput, o);
  const cfg = loaded.config;
  const plan = planSweep(loaded);
  const unlock = lockFolder(cfg.out, 'sweep');
  try {
    return await runSweep(cfg, plan, o, log);
  } finally {
    unlock();
  }
}

async function runSweep(cfg: LoadedSweepConfig['config'], plan: SweepPlan, o: SweepOptions, log: (line: string) => void): Promise<SweepSummary> {
  freeze(cfg, plan, o.force === true);
  const pending = plan.settings.filter((p) => o.force || settingStatus(cfg.out, p, plan).status !== 'finished');
  const n = plan.settings.length;
  log(`sweep: ${n} setting${n === 1 ? '' : 's'}, ${n - pending.length} finished before, ${pending.length} to run (${cfg.out})`);
  // base settings that contradict the run or checkpoint: said once, whichever backend runs the settings
  if (pending.length > 0) for (const w of (await resolveBase(studyBase(cfg))).warnings) log(`warning: ${w}`);

  if (o.slurm) {
    const submission = pending.length > 0 ? await submitSlurm(cfg, pending.map((p) => p.index), { sbatchArgs: o.sbatchArgs, device: o.device, threads: o.threads }) : undefined;
    if (submission) log(`submitted Slurm job ${submission.job_id} (array ${submission.array}); when it has finished: spurmem sweep collect ${cfg.out}`);
    const summary = await collectSweep(cfg.out, { write: !submission });
    if (submission) summary.slurm = submission;
    return summary;
  }

  if (pending.length > 0) {
    if (o.workers !== undefined || o.devices) {
      const devices = o.devices ?? Array.from({ length: o.workers! }, () => cfg.base.device ?? 'cpu');
      const threads = cfg.base.threads ?? Math.max(1, Math.floor(processCores() / devices.length));
      await runWorkers({ base: studyBase(cfg), out: cfg.out, devices, threads, settings: pending, log });
    } else {
      // every pending setting in one pass over its split (see runPlannedSettings)
      const ctx = await prepareStudy(studyBase(cfg));
      let done = 0;
      await runPlannedSettings(ctx, cfg.out, pending, (r) => {
        done += 1;
        log(`[${done}/${pending.length}] ${r.line}`);
      });
    }
  }
  return collectSweep(cfg.out);
}

/**
 * Runs setting `index` of a sweep (what a Slurm array task does), unless it is finished (a training
 * sweep's: see runTrainingIndex; SIGTERM stops the run and a requeued task resumes it).
 * @returns the outcome (ok false when the setting failed; its error.json says why), or null when it had
 *   finished before
 * @throws UsageError for an index out of range; SpurmemError when the base cannot be loaded
 */
export async function runSweepIndex(config: string | SweepConfigInput | TrainingSweepConfigInput, index: number, o: SweepOptions = {}): Promise<SettingOutcome | TrainingOutcome | null> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const training = loadTraining(config, o);
  if (training) return runTrainingIndex(training, index, o, log);
  const loaded = load(config as string | SweepConfigInput, o);
  const cfg = loaded.config;
  const plan = planSweep(loaded);
  if (!Number.isInteger(index) || index < 0 || index >= plan.settings.length) {
    throw new UsageError(`--index ${index}: the sweep has ${plan.settings.length} settings (0-${plan.settings.length - 1})`);
  }
  const planPath = join(cfg.out, PLAN_FILE);
  if (existsSync(planPath)) {
    const old = JSON.parse(readFileSync(planPath, 'utf8')) as SweepPlan;
    if (old.settings[index]?.key !== plan.settings[index].key) {
      throw new SpurmemError(`${planPath}: setting ${index} is ${old.settings[index]?.key ?? 'absent'} there but ${plan.settings[index].key} in the configuration (was it edited after the sweep was planned?)`);
    }
  } else {
    writeJsonAtomic(join(cfg.out, CONFIG_FILE), cfg);
    writeJsonAtomic(planPath, plan);
  }
  const p = plan.settings[index];
  if (!o.force && settingStatus(cfg.out, p, plan).status === 'finished') {
    log(`#${index} ${p.key}: finished before`);
    return null;
  }
  const ctx = await prepareStudy(studyBase(cfg));
  const r = await runPlannedSetting(ctx, cfg.out, p);
  log(r.line);
  return r;
}

/** Re-export for the CLI and the Node API. */
export { collectSweep };
