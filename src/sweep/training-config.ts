/**
 * Sweep configurations of training runs (`command: train` or `command: finetune-prune`): a base and a grid
 * of the command's options (snake_case keys derived from the option table: every option of the command
 * except the run-folder options the sweep sets itself), expanded to one run per setting.
 *
 * Expansion: the grid's cross product (the first key outermost; a scalar is a list of one), minus the
 * settings matching an `exclude` entry, plus the `include` entries (each expanded like a grid whose
 * missing keys take the grid's lists); duplicates are dropped (the first stays). A finetune-prune sweep
 * may take its base from a train sweep's folder (`base: {sweep: DIR, select: best}`): each of its runs
 * starts from the ERM run of the same seed in the train sweep's selected hyperparameter setting, at that
 * run's selected epoch; the grid's seeds default to the train sweep's.
 */
import { basename, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { EPOCH_SELECTIONS, SWEEP_SELECTIONS, type EpochSelection, type SweepSelection } from '../options/enums.js';
import { TRAINING_SWEEP_SCOPES, trainingSweepValues, trainingValueTexts, type TrainingSweepCommand } from '../options/sweep-keys.js';
import { finetuneSchema } from '../train/finetune-prune.js';
import { trainSchema } from '../train/options.js';
import { OPTIONS } from '../options/table.js';
import { convertKeys, toCamel, toSnake } from '../util/case.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { similarKey } from './config.js';

export { TRAINING_SWEEP_SCOPES, type TrainingSweepCommand };

/** The commands of a training sweep. */
export const TRAINING_COMMANDS = Object.keys(TRAINING_SWEEP_SCOPES) as TrainingSweepCommand[];

/** The keys whose values are paths (relative to the configuration file's folder): the options whose argument is a folder or a file, and a finetune-prune base's train sweep. */
const PATH_KEYS = [
  ...Object.entries(OPTIONS).filter(([, o]) => 'arg' in o && (o.arg === '<dir>' || o.arg === '<file>')).map(([k]) => toSnake(k)),
  'sweep',
];

const listOf = <T extends z.ZodType>(s: T) => z.union([s, z.array(s).min(1)]);

/** How a finetune-prune sweep's base names a train sweep: `best` is the train sweep's `select` (default val_wga). */
const BASE_SWEEP_SELECT = ['best', ...SWEEP_SELECTIONS] as const;

/** The zod schema of a training sweep configuration of `command` (snake_case keys). */
export function trainingConfigSchema(command: TrainingSweepCommand) {
  const values = trainingSweepValues(command);
  const optional = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.optional()]));
  const lists = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, listOf(v).optional()]));
  const fromSweep = command === 'finetune-prune' ? { sweep: z.string().min(1).optional(), select: z.enum(BASE_SWEEP_SELECT).optional() } : {};
  const grid = z.object(lists).strict();
  return z
    .object({
      command: z.literal(command),
      base: z.object({ ...optional, ...fromSweep }).strict().default({}),
      grid: grid.default({}),
      exclude: z.array(grid).optional(),
      include: z.array(grid).optional(),
      out: z.string().min(1).optional(),
      group_by: z.array(z.string().min(1)).optional(),
      select: z.enum(SWEEP_SELECTIONS).default('val_wga'),
      epoch_select: z.enum(EPOCH_SELECTIONS).default('val_wga'),
    })
    .strict();
}

/** A training sweep configuration as written (snake_case keys). */
export interface TrainingSweepConfigInput {
  command: TrainingSweepCommand;
  base?: Record<string, unknown> & { sweep?: string; select?: (typeof BASE_SWEEP_SELECT)[number] };
  grid?: Record<string, unknown>;
  exclude?: Record<string, unknown>[];
  include?: Record<string, unknown>[];
  out?: string;
  group_by?: string[];
  select?: SweepSelection;
  epoch_select?: EpochSelection;
}

/** A validated training sweep configuration, paths absolute. */
export interface TrainingSweepConfig {
  command: TrainingSweepCommand;
  base: Record<string, unknown> & { sweep?: string; select?: (typeof BASE_SWEEP_SELECT)[number] };
  grid: Record<string, unknown>;
  exclude?: Record<string, unknown>[];
  include?: Record<string, unknown>[];
  out: string;
  group_by?: string[];
  select: SweepSelection;
  epoch_select: EpochSelection;
}

/**
 * Validates a training sweep configuration.
 * @throws UsageError `<where>: <key path>: <what was expected>, got <value>` (unknown keys with the allowed ones and the closest)
 */
export function parseTrainingConfig(data: Record<string, unknown>, where: string): Omit<TrainingSweepConfig, 'out'> & { out?: string } {
  const command = data.command as TrainingSweepCommand;
  const schema = trainingConfigSchema(command);
  const r = schema.safeParse(data);
  if (r.success) {
    // the grid's keys in the order written (the first outermost), not the schema's
    const ordered = (parsed: Record<string, unknown>, raw: unknown) =>
      Object.fromEntries(Object.keys((raw ?? {}) as object).filter((k) => parsed[k] !== undefined).map((k) => [k, parsed[k]]));
    const cfg = r.data as Omit<TrainingSweepConfig, 'out'> & { out?: string };
    cfg.grid = ordered(cfg.grid, data.grid);
    if (cfg.include) cfg.include = cfg.include.map((e, i) => ordered(e, (data.include as unknown[])[i]));
    return cfg;
  }
  const texts = trainingValueTexts(command);
  const keys = Object.keys(texts);
  const lines = r.error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    if (issue.code === 'unrecognized_keys') {
      const allowed = path === '' ? Object.keys(schema.shape) : path === 'base' ? [...keys, ...(command === 'finetune-prune' ? ['sweep', 'select'] : [])] : keys;
      const hints = issue.keys.map((k) => similarKey(k, allowed)).filter((m): m is string => m !== undefined);
      return `${path || 'the top level'}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}${hints.length ? ` (did you mean '${hints[0]}'?)` : ''} (expected one of ${allowed.join(', ')})`;
    }
    let got: unknown = data;
    for (const p of issue.path) got = got !== null && typeof got === 'object' ? (got as Record<PropertyKey, unknown>)[p] : undefined;
    const key = issue.path.find((p): p is string => typeof p === 'string' && p in texts);
    if (key && issue.path[0] !== 'base') return `${path}: expected ${texts[key]} or a list of them, got ${JSON.stringify(got)}`;
    if (key) return `${path}: expected ${texts[key]}, got ${JSON.stringify(got)}`;
    return `${path || '(config)'}: ${issue.message}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`;
  });
  throw new UsageError(`${where}: ${lines.join('; ')}`);
}

/** Makes the configuration's paths absolute (relative to `dir`) and fills in `out`. */
export function absoluteTrainingPaths(cfg: Omit<TrainingSweepConfig, 'out'> & { out?: string }, dir: string, defaultOut: string): TrainingSweepConfig {
  const abs = (p: unknown) => (typeof p === 'string' ? (isAbsolute(p) ? p : resolve(dir, p)) : p);
  const base = { ...cfg.base };
  for (const k of PATH_KEYS) if (base[k] !== undefined) base[k] = abs(base[k]);
  const fix = (g: Record<string, unknown>) => {
    const o = { ...g };
    for (const k of PATH_KEYS) if (o[k] !== undefined) o[k] = Array.isArray(o[k]) ? (o[k] as unknown[]).map(abs) : abs(o[k]);
    return o;
  };
  return {
    ...cfg,
    base,
    grid: fix(cfg.grid),
    ...(cfg.exclude ? { exclude: cfg.exclude.map(fix) } : {}),
    ...(cfg.include ? { include: cfg.include.map(fix) } : {}),
    out: (abs(cfg.out) as string | undefined) ?? defaultOut,
  };
}

/** One run of a training sweep: its grid values (snake_case) and the run's options (camelCase, without the run folder's). */
export interface TrainingPlannedSetting {
  /** 0-based position in the expanded list (the Slurm array index). */
  index: number;
  /** Folder name under `<out>/settings/`: every grid key with its value, `lr0.001-seed0`. */
  key: string;
  /** The grid's values of this run (snake_case), in the grid's key order. */
  setting: Record<string, unknown>;
  /** The command's options (camelCase): the base, then the setting (the run folder's options are the sweep's). */
  input: Record<string, unknown>;
  /** finetune-prune from a train sweep: the ERM run (folder, epoch) it starts from and that run's setting key. */
  base_run?: { run: string; epoch: number; key: string };
}

/** A value's part of a run's folder name (a path: its file name; a list: joined with +). */
function valuePart(v: unknown): string {
  if (Array.isArray(v)) return v.map(valuePart).join('+');
  if (typeof v === 'string') return (v.includes('/') ? basename(v).replace(/\.[^.]*$/, '') : v).replace(/[^A-Za-z0-9._+-]/g, '_');
  return String(v);
}

/** A run's folder name: each grid key and its value (`lr0.001-seed0`; booleans: `reweight` / `no_reweight`); `run` for a sweep of one run with no grid. */
export function trainingSettingKey(setting: Record<string, unknown>): string {
  const parts = Object.entries(setting).map(([k, v]) => (typeof v === 'boolean' ? (v ? k : `no_${k}`) : `${k}${valuePart(v)}`));
  return parts.length ? parts.join('-') : 'run';
}

/** A readable label of a run's setting: `lr=0.001 seed=0`. */
export function trainingSettingLabel(setting: Record<string, unknown>): string {
  return Object.entries(setting).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(' ') || '(base)';
}

const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);

/** Whether a list-valued option (prune) is given as one list value: a grid value of such a key is a list of lists, or one list. */
function gridValues(key: string, v: unknown, listValued: Set<string>): unknown[] {
  if (!listValued.has(key)) return asList(v);
  // `prune: [magnitude-smallest]` is one value; `prune: [[a], [a, b]]` two
  return Array.isArray(v) && v.length > 0 && v.every(Array.isArray) ? v : [v];
}

function crossProduct(lists: [string, unknown[]][]): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, values] of lists) {
    const next: Record<string, unknown>[] = [];
    for (const s of out) for (const v of values) next.push({ ...s, [k]: v });
    out = next;
  }
  return out;
}

function matches(s: Record<string, unknown>, entry: Record<string, unknown>, listValued: Set<string>): boolean {
  return Object.entries(entry).every(([k, v]) => v === undefined || (k in s && gridValues(k, v, listValued).some((x) => JSON.stringify(x) === JSON.stringify(s[k]))));
}

/** The ERM runs a finetune-prune sweep starts from (one per seed), from a train sweep's selection. */
export interface SelectedBaseRuns {
  /** The train sweep's folder. */
  sweep: string;
  /** The selected hyperparameter setting's runs, by seed. */
  runs: Map<number, { run: string; epoch: number; key: string }>;
}

/**
 * Expands a training sweep configuration into its runs, each checked against the command's options (so a
 * bad combination is reported before anything runs).
 * @param baseRuns for a finetune-prune sweep whose base names a train sweep: that sweep's selected runs
 * @throws UsageError naming the setting for a refused combination, a seed the train sweep lacks, or an empty expansion
 */
export function expandTrainingSweep(cfg: TrainingSweepConfig, where: string, baseRuns?: SelectedBaseRuns): TrainingPlannedSetting[] {
  const schema = cfg.command === 'train' ? trainSchema : finetuneSchema;
  const listValued = new Set(Object.entries(trainingSweepValues(cfg.command)).filter(([, v]) => v instanceof z.ZodArray).map(([k]) => k));
  const gridKeys = Object.keys(cfg.grid).filter((k) => cfg.grid[k] !== undefined);
  const lists = (g: Record<string, unknown>, keys: string[]) => keys.map((k) => [k, gridValues(k, g[k], listValued)] as [string, unknown[]]);
  const raws: Record<string, unknown>[] = [];
  for (const raw of crossProduct(lists(cfg.grid, gridKeys))) if (!(cfg.exclude ?? []).some((e) => matches(raw, e, listValued))) raws.push(raw);
  for (const entry of cfg.include ?? []) {
    const keys = [...gridKeys, ...Object.keys(entry).filter((k) => !gridKeys.includes(k) && entry[k] !== undefined)];
    raws.push(...crossProduct(lists({ ...cfg.grid, ...Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) }, keys)));
  }
  const { sweep: _sweep, select: _select, ...baseOptions } = cfg.base;
  const out: TrainingPlannedSetting[] = [];
  const seen = new Set<string>();
  const add = (setting: Record<string, unknown>, baseRun?: { run: string; epoch: number; key: string }) => {
    const id = JSON.stringify(setting);
    if (seen.has(id)) return;
    seen.add(id);
    const input = convertKeys({ ...baseOptions, ...(baseRun ? { run: baseRun.run, epoch: baseRun.epoch } : {}), ...setting }, toCamel);
    const key = trainingSettingKey(setting);
    if (cfg.command === 'train' && (input.dataset === undefined || input.root === undefined)) {
      throw new UsageError(`${where}: base: ${input.dataset === undefined ? 'dataset' : 'root'} is needed (setting ${out.length}, ${key})`);
    }
    const r = schema.safeParse({ ...input, out: '/dev/null' });
    if (!r.success) {
      const i = r.error.issues[0];
      throw new UsageError(`${where}: setting ${out.length} (${key}): ${i.path.join('.') || 'options'}: ${i.message}`);
    }
    if (cfg.command === 'finetune-prune' && !input.run === !input.checkpoint) {
      throw new UsageError(`${where}: base: give one of sweep (a train sweep's folder), run (a train folder) or checkpoint (with dataset and root) (setting ${out.length}, ${key})`);
    }
    out.push({ index: out.length, key, setting, input, ...(baseRun ? { base_run: baseRun } : {}) });
  };
  for (const raw of raws.length ? raws : [{}]) {
    if (!baseRuns) {
      add(raw);
      continue;
    }
    const seeds = raw.seed !== undefined ? [raw.seed as number] : [...baseRuns.runs.keys()];
    for (const seed of seeds) {
      const b = baseRuns.runs.get(seed);
      if (!b) throw new UsageError(`${where}: grid: seed ${seed}: the train sweep ${baseRuns.sweep} has no finished run of seed ${seed} in its selected setting (it has ${[...baseRuns.runs.keys()].join(', ') || 'none'})`);
      add({ ...raw, seed }, b);
    }
  }
  if (out.length === 0) throw new UsageError(`${where}: grid: the configuration expands to no setting (everything excluded?)`);
  if (new Set(out.map((p) => p.key)).size !== out.length) {
    const dup = out.find((p, i) => out.findIndex((q) => q.key === p.key) !== i)!;
    throw new SpurmemError(`${where}: two settings share the folder name ${dup.key} (values that differ only in characters a folder name cannot hold?)`);
  }
  return out;
}
