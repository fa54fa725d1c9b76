/**
 * Sweep configurations: a base (a `spurmem train` run folder, or a checkpoint + dataset) and a grid of
 * study options, expanded to the exact list of distinct experiments.
 *
 * Expansion (documented in the README's "Sweeps" section):
 * 1. `grid`: the cross product of its lists, the first key outermost (a scalar is a list of one);
 * 2. `exclude`: drops every grid setting that matches an entry (each key equal, or in the entry's list);
 * 3. `include`: each entry is expanded like a grid whose missing keys take the grid's lists, and added
 *    (exclude does not apply to it);
 * 4. every setting keeps only the keys that apply to it (std, repeats and distribution only for the random
 *    modes; rewind_epochs only for the rewind modes; top_k not for threshold; fraction, smallest,
 *    dropout_p and faithful_threshold only for threshold; poorest_limit and activated_loss only for activated; seed only
 *    where something is random), defaults are filled in, and duplicates are dropped (the first stays).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { Command } from 'commander';
import YAML from 'yaml';
import { z } from 'zod';
import { runCheckpoint } from '../base.js';
import { isRewindMode, resolveStudySetting, settingApplies, settingProblem, type StudyBaseInput, type StudySettingInput } from '../neurons/study.js';
import { settingNameParts } from '../options/setting-names.js';
import { SETTING_KEYS, SETTING_VALUES, SWEEP_BASE_VALUES, VALUE_TEXT, type SettingKey } from '../options/sweep-keys.js';
import { convertKeys, toCamel, toSnake } from '../util/case.js';
import { SpurmemError, UsageError } from '../util/errors.js';

/** Keys of a sweep's base (snake_case forms of `spurmem study`'s base options; see the option table). */
export const sweepBaseSchema = z.object(optionalFields(SWEEP_BASE_VALUES)).strict();

export { SETTING_KEYS, SETTING_VALUES, type SettingKey };

const listOf = <T extends z.ZodType>(s: T) => z.union([s, z.array(s).min(1)]);

/** A grid: each key a value or a list of values. */
export const gridSchema = z.object(listFields(SETTING_VALUES)).strict();

/** A sweep configuration (the JSON or YAML file of `spurmem sweep CONFIG`). */
export const sweepConfigSchema = z
  .object({
    /** What each setting runs: a study of the base (the default); train and finetune-prune sweeps have their own schema (training-config.ts). */
    command: z.literal('study').optional(),
    base: sweepBaseSchema,
    grid: gridSchema.default({}),
    exclude: z.array(gridSchema).optional(),
    include: z.array(gridSchema).optional(),
    /** Output folder (default: next to the config file, named after it). */
    out: z.string().min(1).optional(),
    /** Minority groups for the minority/majority rows and plots (default: within each class, the smaller training group). */
    minority_groups: z.array(z.number().int().min(0).max(3)).min(1).optional(),
  })
  .strict();

/** A configuration as written (file or object; snake_case keys). */
export type SweepConfigInput = z.input<typeof sweepConfigSchema>;
/** A validated configuration. */
export type SweepConfig = z.output<typeof sweepConfigSchema>;
/** A validated grid (each key a value or a list). */
export type Grid = z.output<typeof gridSchema>;

/**
 * One distinct experiment: the keys that apply to it, defaults filled in, in canonical order
 * (snake_case, as in the config).
 */
export type Setting = Partial<{ [K in SettingKey]: z.output<(typeof SETTING_VALUES)[K]> }>;

/** A setting with its position in the sweep and its folder name. */
export interface PlannedSetting {
  /** 0-based position in the expanded list (the Slurm array index). */
  index: number;
  /** Folder name under `<out>/settings/`, made of the setting's values; unique within a sweep. */
  key: string;
  setting: Setting;
}

/** A validated configuration with every path absolute, and where it came from. */
export interface LoadedSweepConfig {
  config: SweepConfig & { out: string };
  /** The file it was read from (null for an object given to the Node API). */
  file: string | null;
}

function optionalFields<T extends Record<string, z.ZodType>>(values: T): { [k in keyof T]: z.ZodOptional<T[k]> } {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v.optional()])) as { [k in keyof T]: z.ZodOptional<T[k]> };
}

function listFields<T extends Record<string, z.ZodType>>(values: T): { [k in keyof T]: z.ZodOptional<ReturnType<typeof listOf<T[k]>>> } {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, listOf(v).optional()])) as { [k in keyof T]: z.ZodOptional<ReturnType<typeof listOf<T[k]>>> };
}

/**
 * The allowed key closest to an unknown one, found by commander's own "did you mean" (the one the
 * command line's flags get), or undefined when none is close.
 */
export function similarKey(key: string, allowed: readonly string[]): string | undefined {
  const probe = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined, outputError: () => undefined });
  for (const k of allowed) probe.option(`--${k}`);
  try {
    probe.parse([`--${key}`], { from: 'user' });
  } catch (e) {
    const m = /Did you mean --(\S+?)\?/.exec(e instanceof Error ? e.message : '');
    return m?.[1];
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  const show = (path: PropertyKey[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  const path = show(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const where = path || 'the top level';
    const allowed =
      path === '' ? Object.keys(sweepConfigSchema.shape) : path === 'base' ? Object.keys(sweepBaseSchema.shape) : SETTING_KEYS;
    const hints = issue.keys.map((k) => [k, similarKey(k, allowed)] as const).filter(([, m]) => m !== undefined);
    return (
      `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}` +
      (hints.length ? ` (did you mean ${hints.map(([k, m]) => (issue.keys.length > 1 ? `'${m}' for '${k}'` : `'${m}'`)).join(', ')}?)` : '') +
      ` (expected one of ${allowed.join(', ')})`
    );
  }
  const at = (p: PropertyKey[]) => {
    let v: unknown = data;
    for (const k of p) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
    return v;
  };
  // a grid key (grid.K, exclude[i].K, include[i].K, possibly [j] inside): say what one value must be
  const ki = issue.path.findIndex((p, i) => typeof p === 'string' && p in SETTING_VALUES && i > 0);
  if (ki > 0) {
    const key = issue.path[ki] as SettingKey;
    const keyPath = issue.path.slice(0, ki + 1);
    const value = at(keyPath);
    if (Array.isArray(value)) {
      if (value.length === 0) return `${show(keyPath)}: an empty list (give at least one value)`;
      const j = value.findIndex((x) => !SETTING_VALUES[key].safeParse(x).success);
      if (j >= 0) return `${show([...keyPath, j])}: expected ${VALUE_TEXT[key]}, got ${JSON.stringify(value[j])}`;
    }
    return `${show(keyPath)}: expected ${VALUE_TEXT[key]} or a list of them, got ${JSON.stringify(value)}`;
  }
  const got = at(issue.path);
  if (got === undefined && issue.code === 'invalid_type') return `${path}: missing (${issue.message.replace(/, received undefined$/, '')})`;
  return `${path || '(config)'}: ${issue.message}${got === undefined ? '' : `, got ${JSON.stringify(got)}`}`;
}

/**
 * Validates a configuration object.
 * @param where the file name used in messages (or "config")
 * @throws UsageError `<where>: <key path>: <what was expected>, got <value>`
 */
export function parseSweepConfig(data: unknown, where = 'config'): SweepConfig {
  const r = sweepConfigSchema.safeParse(data);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 5).map((i) => describeIssue(i, data));
    throw new UsageError(`${where}: ${lines.join('; ')}`);
  }
  return r.data;
}

/**
 * Reads a sweep configuration file (.json, .yaml or .yml) as it is written, without validating it.
 * @throws SpurmemError for a missing or unparsable file (with the line for YAML and JSON syntax errors);
 *   UsageError for another extension
 */
export function readSweepFile(file: string): { path: string; data: unknown } {
  const path = resolve(file);
  if (!existsSync(path)) throw new SpurmemError(`${file}: no such file`);
  if (statSync(path).isDirectory()) {
    throw new SpurmemError(`${file}: is a folder; expected a sweep configuration file (.json, .yaml) (to merge a finished sweep's folder: spurmem sweep collect ${file})`);
  }
  const text = readFileSync(path, 'utf8');
  const ext = extname(path).toLowerCase();
  let data: unknown;
  if (ext === '.json') {
    try {
      data = JSON.parse(text);
    } catch (e) {
      const m = /position (\d+)/.exec((e as Error).message);
      const line = m ? text.slice(0, Number(m[1])).split('\n').length : null;
      throw new SpurmemError(`${file}${line ? `:${line}` : ''}: not valid JSON (${(e as Error).message})`);
    }
  } else if (ext === '.yaml' || ext === '.yml') {
    const doc = YAML.parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) {
      const err = doc.errors[0];
      const line = err.linePos?.[0]?.line;
      // the whole message: the yaml library's excerpt of the line with a caret under the place
      throw new SpurmemError(`${file}${line ? `:${line}` : ''}: not valid YAML: ${err.message.trimEnd()}`);
    }
    data = doc.toJS();
  } else {
    throw new UsageError(`${file}: a sweep configuration must be a .json, .yaml or .yml file`);
  }
  return { path, data };
}

/**
 * Reads a configuration file (.json, .yaml or .yml) and makes its paths absolute: `out` and the base's
 * `run`, `checkpoint`, `rewind_checkpoint` and `root` are relative to the file's folder. The default
 * `out` is the file's folder joined with its name without the extension.
 * @throws SpurmemError for a missing or unparsable file (with the line for YAML and JSON syntax errors);
 *   UsageError naming the file and the bad key
 */
export function loadSweepConfigFile(file: string): LoadedSweepConfig {
  const { path, data } = readSweepFile(file);
  const cfg = parseSweepConfig(data, file);
  const dir = dirname(path);
  return { config: absolutePaths(cfg, dir, join(dir, basename(path, extname(path)))), file: path };
}

/**
 * Validates a configuration object given to the Node API; relative paths are relative to `cwd`.
 * @throws UsageError naming the bad key; UsageError when `out` is missing
 */
export function loadSweepConfigObject(data: unknown, cwd = process.cwd()): LoadedSweepConfig {
  const cfg = parseSweepConfig(data, 'config');
  if (!cfg.out) throw new UsageError('config: out: the output folder is needed when the configuration is not a file');
  return { config: absolutePaths(cfg, cwd, cfg.out), file: null };
}

function absolutePaths(cfg: SweepConfig, dir: string, defaultOut: string): SweepConfig & { out: string } {
  const abs = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(dir, p));
  const base = { ...cfg.base };
  for (const k of ['run', 'checkpoint', 'rewind_checkpoint', 'root'] as const) if (base[k] !== undefined) base[k] = abs(base[k]);
  return { ...cfg, base, out: abs(cfg.out) ?? resolve(defaultOut) };
}

/**
 * The base as `prepareStudy` takes it (camelCase). Checks what a plan needs before anything is loaded.
 * @throws UsageError when neither or both of run and checkpoint are given
 */
export function studyBase(cfg: SweepConfig): StudyBaseInput {
  const b = cfg.base;
  if (!b.run === !b.checkpoint) throw new UsageError('base: give exactly one of run (a spurmem train folder) and checkpoint (with dataset and root)');
  if (b.checkpoint && (!b.dataset || !b.root)) throw new UsageError('base: checkpoint needs dataset and root');
  return convertKeys(b, toCamel) as StudyBaseInput;
}

/**
 * The checkpoint a base studies, without reading it: `<run>/epoch_<e>_checkpoints.pth.tar` (e = `epoch` or
 * the run's last), or the checkpoint file.
 * @throws SpurmemError when the run folder has no (such) epoch
 */
export function baseCheckpointPath(cfg: SweepConfig): string {
  const b = cfg.base;
  if (b.checkpoint) return resolve(b.checkpoint);
  return runCheckpoint(resolve(b.run!), b.epoch).path;
}


/** Whether a key applies to a setting of this ranking and mode (the study's settingApplies, snake_case keys). */
export function applies(key: SettingKey, s: Setting, o: { rewindCheckpoint?: boolean } = {}): boolean {
  return settingApplies(toCamel(key), { ranking: s.ranking, mode: s.mode, dropoutP: s.dropout_p }, o);
}

/**
 * Fills in the study's defaults and keeps the keys that apply, in canonical order.
 * @throws UsageError for a combination the study refuses (threshold with layer_rewind)
 */
export function normalizeSetting(raw: Setting, o: { rewindCheckpoint?: boolean } = {}): Setting {
  // keys that do not apply are left out before the study resolves the rest (a result.json's resolved setting says rewind_epochs 0 for no rewind)
  const given = Object.fromEntries(Object.entries(raw).filter(([k]) => applies(k as SettingKey, raw, o)));
  const resolved = resolveStudySetting(convertKeys(given, toCamel) as StudySettingInput);
  const problem = settingProblem(resolved, { ...o, name: toSnake });
  if (problem) throw new UsageError(`${problem} (change the grid, or add an exclude entry)`);
  const r = resolved as unknown as Record<string, unknown>;
  const full: Setting = {};
  for (const k of SETTING_KEYS) (full as Record<string, unknown>)[k] = r[toCamel(k)];
  const out: Setting = {};
  for (const k of SETTING_KEYS) if (applies(k, full, o)) (out as Record<string, unknown>)[k] = full[k];
  return out;
}

/** The study's input (camelCase) for a normalized setting. */
export function studySetting(s: Setting): StudySettingInput {
  return convertKeys(s, toCamel) as StudySettingInput;
}

/** A short, unique, readable name: `train-largest-random_init-top3-std0.02-r10-seed0`. */
export function settingKey(s: Setting): string {
  return settingNameParts(convertKeys(s, toCamel)).join('-');
}

/** A readable label: `largest random_init top 3 std 0.02 (train, R=10, seed 0)`. */
export function settingLabel(s: Setting): string {
  return settingKey(s).replace(/-/g, ' ');
}

const asList = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

function crossProduct(lists: [SettingKey, unknown[]][]): Setting[] {
  let out: Setting[] = [{}];
  for (const [k, values] of lists) {
    const next: Setting[] = [];
    for (const s of out) for (const v of values) next.push({ ...s, [k]: v });
    out = next;
  }
  return out;
}

function matches(s: Setting, entry: Grid): boolean {
  for (const [k, v] of Object.entries(entry)) {
    if (v === undefined) continue;
    const have = (s as Record<string, unknown>)[k];
    if (have === undefined) return false;
    if (!(asList(v) as unknown[]).includes(have)) return false;
  }
  return true;
}

/**
 * Expands a configuration into the distinct experiments, in order (see the module comment).
 * @throws UsageError when nothing is left, or for a refused combination (naming the setting)
 */
export function expandSweep(cfg: SweepConfig, where = 'config'): PlannedSetting[] {
  const o = { rewindCheckpoint: cfg.base.rewind_checkpoint !== undefined };
  const gridKeys = Object.keys(cfg.grid).filter((k) => (cfg.grid as Record<string, unknown>)[k] !== undefined) as SettingKey[];
  const lists = (g: Grid, keys: SettingKey[]) => keys.map((k) => [k, asList((g as Record<string, unknown>)[k]) as unknown[]] as [SettingKey, unknown[]]);
  const norm = (raw: Setting, at: string) => {
    try {
      return normalizeSetting(raw, o);
    } catch (e) {
      throw new UsageError(`${where}: ${at}: ${(e as Error).message}`);
    }
  };
  const out: PlannedSetting[] = [];
  const seen = new Set<string>();
  const add = (s: Setting) => {
    const id = JSON.stringify(s);
    if (seen.has(id)) return;
    seen.add(id);
    const key = settingKey(s);
    out.push({ index: out.length, key, setting: s });
  };
  for (const raw of crossProduct(lists(cfg.grid, gridKeys))) {
    const s = norm(raw, `grid (${JSON.stringify(raw)})`);
    if ((cfg.exclude ?? []).some((e) => matches(s, e))) continue;
    add(s);
  }
  (cfg.include ?? []).forEach((entry, i) => {
    const keys = [...gridKeys, ...(Object.keys(entry) as SettingKey[]).filter((k) => !gridKeys.includes(k) && (entry as Record<string, unknown>)[k] !== undefined)];
    const merged = { ...cfg.grid, ...Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== undefined)) } as Grid;
    for (const raw of crossProduct(lists(merged, keys))) add(norm(raw, `include[${i}] (${JSON.stringify(raw)})`));
  });
  if (out.length === 0) throw new UsageError(`${where}: grid: the configuration expands to no setting (everything excluded?)`);
  const keys = new Set(out.map((p) => p.key));
  if (keys.size !== out.length) throw new SpurmemError('internal: two settings share a folder name');
  if (!cfg.base.run && !cfg.base.rewind_checkpoint) {
    const rw = out.find((p) => isRewindMode(p.setting.mode));
    if (rw) throw new UsageError(`${where}: base: setting ${rw.index} (${rw.key}) rewinds, which needs base.run (a train folder) or base.rewind_checkpoint`);
  }
  if (cfg.base.run && !cfg.base.rewind_checkpoint && existsSync(resolve(cfg.base.run))) {
    // every rewind source must be in the run folder: a Slurm task should not be the first to find out
    const { epoch: at, epochs } = runCheckpoint(resolve(cfg.base.run), cfg.base.epoch);
    for (const p of out) {
      if (!isRewindMode(p.setting.mode)) continue;
      const e = at - (p.setting.rewind_epochs ?? 0);
      if (e < 0) throw new UsageError(`${where}: setting ${p.index} (${p.key}): rewind_epochs ${p.setting.rewind_epochs} reaches before epoch 0 (the sweep studies epoch ${at})`);
      if (!epochs.includes(e)) {
        throw new UsageError(
          `${where}: setting ${p.index} (${p.key}): rewind_epochs ${p.setting.rewind_epochs} from epoch ${at} needs epoch ${e}'s checkpoint, ` +
            `which ${resolve(cfg.base.run)} does not have (it has epochs ${epochs.join(', ')})`,
        );
      }
    }
  }
  return out;
}
