/**
 * The sweep's outputs, made from the settings' result folders: which settings finished, failed or are
 * missing; `sweep.csv` and `sweep.json` (one row per setting x block x group with the unmodified accuracy
 * and its confidence interval, the mean and standard deviation over the repeats and the change, plus
 * worst-group, average, plain-mean, minority and majority rows); plots of the minority and majority change against top-k per mode; and the
 * terminal table.
 *
 * Minority groups: unless the configuration names them (`minority_groups`), within each class y the group
 * with fewer training samples (ties: none). Waterbirds: 1 (landbird on water) and 2 (waterbird on land);
 * CelebA: 1 (non-blond male) and 3 (blond male) — the original calls only 3 a minority; name it with
 * `minority_groups: [3]` to follow it. Minority (majority) accuracy = correct / count over all the
 * minority (majority) groups' samples of the evaluated split.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { minorityGroups, pooledAccuracy, type GroupMetrics } from '../metrics/groups.js';
import { ciKey, proportionInterval, type Interval } from '../metrics/intervals.js';
import { mean, stat } from '../metrics/statistics.js';
import { toCamel } from '../util/case.js';
import type { PairedFields, StudyResult } from '../neurons/study.js';
import { lineChart, writePlot } from '../report/plots.js';
import { SpurmemError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { SETTING_KEYS, normalizeSetting, settingLabel, type PlannedSetting, type Setting, type SettingKey } from './config.js';

/** The file a sweep's plan is written to (the expanded settings, with the checkpoint they study). */
export const PLAN_FILE = 'sweep-plan.json';
/** The frozen configuration (absolute paths) that Slurm tasks and restarts read. */
export const CONFIG_FILE = 'sweep-config.json';

/** What `<out>/sweep-plan.json` holds. */
export interface SweepPlan {
  /** The configuration file the sweep was planned from (null for an object given to the Node API). */
  config_file: string | null;
  /** The checkpoint every setting studies (a result for another checkpoint is stale). */
  checkpoint: string;
  /** The base has a rewind_checkpoint (then rewind_epochs does not apply). */
  rewind_checkpoint: boolean;
  minority_groups: number[] | null;
  settings: PlannedSetting[];
}

/** The result folder of a setting. */
export function settingFolder(out: string, key: string): string {
  return join(out, 'settings', key);
}

export type SettingStatus =
  | { status: 'finished'; result: StudyResult }
  | { status: 'failed'; message: string }
  | { status: 'missing'; reason?: string };

/**
 * Where a setting stands: `finished` when its result.json (written last, atomically) is readable and is
 * for the same setting and checkpoint; `failed` when its error.json says why; else `missing` (a result of
 * another setting or checkpoint counts as missing, so it is run again).
 */
export function settingStatus(out: string, p: PlannedSetting, plan: Pick<SweepPlan, 'checkpoint' | 'rewind_checkpoint'>): SettingStatus {
  const folder = settingFolder(out, p.key);
  const resultPath = join(folder, 'result.json');
  let reason: string | undefined;
  if (existsSync(resultPath)) {
    try {
      const r = JSON.parse(readFileSync(resultPath, 'utf8')) as StudyResult;
      const snake: Setting = {};
      for (const k of SETTING_KEYS) (snake as Record<string, unknown>)[k] = (r.setting as unknown as Record<string, unknown>)[toCamel(k)];
      const same = JSON.stringify(normalizeSetting(snake, { rewindCheckpoint: plan.rewind_checkpoint })) === JSON.stringify(p.setting);
      if (same && r.checkpoint === plan.checkpoint) return { status: 'finished', result: r };
      reason = same ? `its result is for another checkpoint (${r.checkpoint})` : 'its result is for another setting';
    } catch (e) {
      reason = `unreadable result.json (${(e as Error).message})`;
    }
  }
  const errPath = join(folder, 'error.json');
  if (existsSync(errPath)) {
    try {
      return { status: 'failed', message: (JSON.parse(readFileSync(errPath, 'utf8')) as { message: string }).message };
    } catch {
      return { status: 'failed', message: 'unreadable error.json' };
    }
  }
  return { status: 'missing', reason };
}

/** A row of sweep.csv / sweep.json. Accuracies are fractions in [0, 1]; change = unmodified − mean. */
export type SweepRow = { index: number; key: string } & { [K in SettingKey]: Setting[K] | null } & {
  /** Block of the setting (activated: one per source group). */
  block: number;
  /** activated: the group whose poorest samples gave the gradients. */
  source_group: number | null;
  /** A group id, or worst_group, average (train-count weighted), mean (plain), minority, majority. */
  group: number | 'worst_group' | 'average' | 'mean' | 'minority' | 'majority';
  name: string;
  /** Samples of the evaluated split (groups, minority, majority). */
  count: number | null;
  /** Whether the group is a minority group (groups only). */
  minority: boolean | null;
  accuracy_unmodified: number | null;
  accuracy_mean: number | null;
  /** Standard deviation over the repeats (ddof 0). */
  accuracy_std: number | null;
  change: number | null;
  /**
   * The confidence interval of `accuracy_unmodified` at `ci_level` (null where the study gave none): per
   * group and for the minority and majority rows the per-group method on their counts, for worst-group,
   * average and mean the study's bootstrap interval.
   */
  accuracy_unmodified_ci_low: number | null;
  accuracy_unmodified_ci_high: number | null;
  ci_level: number | null;
  /**
   * The paired result of the change (groups, and the minority and majority rows when they are the study's own
   * pooled groups; null elsewhere and in results written without it): images right before and wrong after
   * (`to_wrong`) and the reverse, the two-sided exact McNemar p-value and its Holm adjustment over the block
   * (see the study's result.json), and for random changes the 95% t-interval of the change over the repeats.
   */
  to_wrong: number | null;
  to_right: number | null;
  p_value: number | null;
  p_holm: number | null;
  change_ci_low: number | null;
  change_ci_high: number | null;
};

/** What `sweep.json` holds (and `sweep()` returns). */
export interface SweepSummary {
  out: string;
  config_file: string | null;
  checkpoint: string;
  group_names: string[];
  train_group_counts: number[];
  minority_groups: number[];
  /** How the minority groups were chosen. */
  minority_rule: string;
  settings: {
    index: number;
    key: string;
    setting: Setting;
    status: 'finished' | 'failed' | 'missing';
    folder: string;
    /** Wall time of the setting (finished ones). */
    seconds?: number;
    /** Why it failed, or why an old result was not used. */
    message?: string;
  }[];
  finished: number;
  failed: number[];
  missing: number[];
  rows: SweepRow[];
  /** Plot files written (SVG and PNG). */
  plots: string[];
  /** Set when the settings were handed to Slurm. */
  slurm?: SlurmSubmission;
}

/** A Slurm submission. */
export interface SlurmSubmission {
  job_id: string;
  /** The --array specification, e.g. `0-33` or `3,5-7`. */
  array: string;
  script: string;
  indices: number[];
}

function stats(unmodified: number | null, values: (number | null)[]) {
  const st = stat(unmodified, values);
  return { accuracy_unmodified: st.unmodified, accuracy_mean: st.mean, accuracy_std: st.std, change: st.change };
}

/** The interval columns of a row from an interval (or none). */
function ciColumns(iv: Interval | null | undefined, level: number | null) {
  return iv ? { accuracy_unmodified_ci_low: iv[0], accuracy_unmodified_ci_high: iv[1], ci_level: level } : { accuracy_unmodified_ci_low: null, accuracy_unmodified_ci_high: null, ci_level: null };
}

/** The per-group interval of the samples of a set of groups (minority, majority), as the study's metrics made it. */
function pooledInterval(m: GroupMetrics, ids: readonly number[]): Interval | null {
  if (!m.ci || m.ci.method === 'none') return null;
  const gs = m.groups.filter((g) => ids.includes(g.id));
  return proportionInterval(gs.reduce((a, g) => a + g.correct, 0), gs.reduce((a, g) => a + g.count, 0), m.ci.method, m.ci.level);
}

/** The paired columns of a row from a group's or pooled row's paired fields (or none). */
function pairedColumns(f: PairedFields | undefined) {
  return {
    to_wrong: f?.flips?.to_wrong ?? null,
    to_right: f?.flips?.to_right ?? null,
    p_value: f?.p_value ?? null,
    p_holm: f?.p_holm ?? null,
    change_ci_low: f?.change_ci95?.[0] ?? null,
    change_ci_high: f?.change_ci95?.[1] ?? null,
  };
}

const sameGroups = (a: readonly number[], b: readonly number[] | undefined) => b !== undefined && a.length === b.length && a.every((g) => b.includes(g));

/** The rows of one finished setting (blocks that were skipped, for want of gradients, have none: their result.json says why). */
export function settingRows(p: PlannedSetting, r: StudyResult, minority: number[]): SweepRow[] {
  const head: Record<string, unknown> = { index: p.index, key: p.key };
  for (const k of SETTING_KEYS) head[k] = p.setting[k] ?? null;
  const rows: SweepRow[] = [];
  const u = r.unmodified;
  const majority = u.groups.map((g) => g.id).filter((g) => !minority.includes(g));
  // results written without intervals (--ci none --bootstrap 0, or before intervals existed) give empty columns
  const level = u.ci?.level ?? null;
  const key = level !== null ? ciKey(level) : null;
  r.blocks.forEach((b, bi) => {
    if (b.status === 'skipped') return;
    const base = { ...head, block: bi, source_group: b.source_group } as Omit<
      SweepRow,
      'group' | 'name' | 'count' | 'minority' | 'accuracy_unmodified' | 'accuracy_mean' | 'accuracy_std' | 'change' | 'accuracy_unmodified_ci_low' | 'accuracy_unmodified_ci_high' | 'ci_level' | keyof ReturnType<typeof pairedColumns>
    >;
    b.groups.forEach((g, gi) => {
      rows.push({
        ...base, group: g.id, name: g.name, count: g.count, minority: minority.includes(g.id), accuracy_unmodified: g.unmodified, accuracy_mean: g.mean, accuracy_std: g.std, change: g.change,
        ...ciColumns(key ? u.groups[gi]?.[key] : null, level),
        ...pairedColumns(g),
      });
    });
    for (const [group, name, st, agg] of [
      ['worst_group', 'worst-group accuracy', b.worst_group_accuracy, 'worst_group_accuracy'],
      ['average', 'average accuracy (train-count weighted)', b.average_accuracy, 'average_accuracy'],
      ['mean', 'mean accuracy (plain mean over groups)', b.mean_accuracy, 'mean_accuracy'],
    ] as const) {
      rows.push({
        ...base, group, name, count: null, minority: null, accuracy_unmodified: st.unmodified, accuracy_mean: st.mean, accuracy_std: st.std, change: st.change,
        ...ciColumns(key ? u[`${agg}_${key}`] : null, level),
        ...pairedColumns(undefined),
      });
    }
    for (const [group, ids] of [['minority', minority], ['majority', majority]] as const) {
      const count = u.groups.filter((g) => ids.includes(g.id)).reduce((a, g) => a + g.count, 0);
      rows.push({
        ...base,
        group,
        name: `${group} groups (${ids.join(', ') || 'none'})`,
        count,
        minority: null,
        ...stats(pooledAccuracy(u, ids), b.repeats.map((m) => pooledAccuracy(m, ids))),
        ...ciColumns(pooledInterval(u, ids), level),
        ...pairedColumns(sameGroups(ids, b[group]?.groups) ? b[group] : undefined),
      });
    }
  });
  return rows;
}

const CSV_COLUMNS = [
  'index', 'key', ...SETTING_KEYS, 'block', 'source_group', 'group', 'name', 'count', 'minority', 'accuracy_unmodified', 'accuracy_mean', 'accuracy_std', 'change',
  'accuracy_unmodified_ci_low', 'accuracy_unmodified_ci_high', 'ci_level', 'to_wrong', 'to_right', 'p_value', 'p_holm', 'change_ci_low', 'change_ci_high',
] as const;

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** sweep.csv: a header and one line per row; numbers at full precision, empty for not applicable. */
export function sweepCsv(rows: SweepRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(CSV_COLUMNS.map((c) => csvField((r as Record<string, unknown>)[c])).join(','));
  return lines.join('\n') + '\n';
}

/** The line label of a setting in a plot: what varies besides top-k/fraction (std, rewind epochs, R, ...). */
function variantLabel(s: Setting): string {
  const parts: string[] = [];
  if (s.std !== undefined) parts.push(`std ${s.std}`);
  if (s.distribution !== undefined && s.distribution !== 'normal') parts.push(s.distribution);
  if (s.rewind_epochs !== undefined) parts.push(`${s.rewind_epochs} epochs back`);
  if (s.repeats !== undefined) parts.push(`R ${s.repeats}`);
  if (s.smallest) parts.push('smallest');
  if (s.dropout_p) parts.push(`dropout ${s.dropout_p}`);
  if (s.poorest_limit !== undefined && s.poorest_limit !== 200) parts.push(`poorest ${s.poorest_limit}`);
  if (s.activated_loss === 'logits') parts.push('logits loss');
  return parts.join(', ') || String(s.mode);
}

/**
 * Plots of the minority and majority change (percentage points, unmodified − modified) against top-k
 * (fraction for threshold), one per ranking, split and mode: `plots/change_<ranking>_<split>_<mode>.svg`
 * and `.png`. Panels: one row for the minority and one for the majority groups, one column per source
 * group of an activated ranking; colour = the other varied options (std, rewind epochs, ...); the x axis
 * holds only the measured top-k (fraction) values; points average over seeds.
 */
export async function writeSweepPlots(out: string, rows: SweepRow[], minority: number[], groupIds: number[]): Promise<string[]> {
  const majority = groupIds.filter((g) => !minority.includes(g));
  const files: string[] = [];
  const sets = new Map<string, SweepRow[]>();
  for (const r of rows) {
    if (r.group !== 'minority' && r.group !== 'majority') continue;
    const id = `${r.ranking}_${r.split}_${r.mode}`;
    if (!sets.has(id)) sets.set(id, []);
    sets.get(id)!.push(r);
  }
  const rowTitle = { minority: `minority groups (${minority.join(', ')})`, majority: `majority groups (${majority.join(', ')})` };
  for (const [id, rs] of sets) {
    const threshold = rs[0].ranking === 'threshold';
    const seeds = new Set(rs.map((r) => r.seed)).size > 1;
    const points = new Map<string, { x: number; series: string; row: string; column?: string; ys: number[] }>();
    for (const r of rs) {
      const x = threshold ? r.fraction : r.top_k;
      if (x === null || x === undefined || r.change === null) continue;
      const setting = Object.fromEntries(SETTING_KEYS.map((k) => [k, r[k] ?? undefined])) as Setting;
      const series = variantLabel(setting);
      const row = rowTitle[r.group as 'minority' | 'majority'];
      const column = r.source_group !== null ? `gradients of group ${r.source_group}` : undefined;
      const k = `${series}|${row}|${column}|${x}`;
      if (!points.has(k)) points.set(k, { x: x as number, series, row, column, ys: [] });
      points.get(k)!.ys.push(100 * r.change);
    }
    if (points.size === 0) continue;
    const data = [...points.values()]
      .sort((a, b) => (a.row === b.row ? a.x - b.x : a.row === rowTitle.minority ? -1 : 1))
      .map((p) => ({ x: p.x, y: mean(p.ys), series: p.series, row: p.row, ...(p.column !== undefined ? { column: p.column } : {}) }));
    const [ranking, split, ...mode] = id.split('_');
    const stem = join(out, 'plots', `change_${id}`);
    await writePlot(
      stem,
      lineChart({
        title: `${ranking} / ${mode.join('_')} on the ${split} split: accuracy change = unmodified − modified`,
        rows: data,
        xTitle: threshold ? 'fraction of weights (measured values)' : 'top-k channels (measured values)',
        yTitle: 'change (percentage points)',
        xKind: 'measured',
        subtitle: `positive: accuracy lost${seeds ? '; points average over seeds' : ''}`,
        rule: 0,
      }),
    );
    files.push(`${stem}.svg`, `${stem}.png`);
  }
  return files;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '   n/a' : (100 * x).toFixed(2).padStart(6));
const signed = (x: number | null | undefined) => {
  if (x === null || x === undefined) return '    n/a';
  const t = (100 * x).toFixed(2);
  return (Number(t) === 0 ? '+0.00' : `${x >= 0 ? '+' : ''}${t}`).padStart(7);
};

/**
 * The terminal table: per setting (and block) the worst-group accuracy before and after (mean over the
 * repeats) and the change of the minority, majority and average accuracy, in percent / percentage points.
 */
export function sweepTable(s: SweepSummary): string {
  const byIndex = new Map<string, Map<string, SweepRow>>();
  for (const r of s.rows) {
    const id = `${r.index}/${r.block}`;
    if (!byIndex.has(id)) byIndex.set(id, new Map());
    byIndex.get(id)!.set(String(r.group), r);
  }
  const blocks = (i: number) => [...byIndex.keys()].filter((k) => k.startsWith(`${i}/`)).length;
  const labels = s.settings.map((x) => settingLabel(x.setting) + (blocks(x.index) > 1 ? ' [grad. group 0]' : ''));
  const w = Math.max(7, ...labels.map((l) => l.length));
  const out: string[] = [];
  out.push(`minority groups: ${s.minority_groups.map((g) => `${g} (${s.group_names[g] ?? '?'})`).join(', ') || 'none'} — ${s.minority_rule}`);
  out.push(`${'#'.padStart(4)}  ${'setting'.padEnd(w)}  worst-group %           change = before - after (percentage points; positive: accuracy lost)`);
  out.push(`${''.padStart(4)}  ${''.padEnd(w)}  before   after    std   minority majority  average`);
  for (const st of s.settings) {
    const label = settingLabel(st.setting);
    if (st.status !== 'finished') {
      out.push(`${String(st.index).padStart(4)}  ${label.padEnd(w)}  ${st.status}${st.message ? `: ${st.message}` : ''}`);
      continue;
    }
    // skipped blocks (activated, for want of gradients) have no rows: their result.json says why
    const present = [...byIndex.keys()].filter((k) => k.startsWith(`${st.index}/`)).map((k) => Number(k.split('/')[1])).sort((a, b) => a - b);
    for (const b of present) {
      const m = byIndex.get(`${st.index}/${b}`)!;
      const src = m.get('worst_group')!.source_group;
      const l = src !== null ? `${label} [grad. group ${src}]` : label;
      const wg = m.get('worst_group')!;
      out.push(
        `${String(st.index).padStart(4)}  ${l.padEnd(w)}  ${pct(wg.accuracy_unmodified)}  ${pct(wg.accuracy_mean)}  ${pct(wg.accuracy_std)}  ` +
          `${signed(m.get('minority')?.change)}  ${signed(m.get('majority')?.change)}  ${signed(m.get('average')?.change)}`,
      );
    }
  }
  out.push(`${s.finished} of ${s.settings.length} settings finished${s.failed.length ? `; failed: ${s.failed.join(', ')}` : ''}${s.missing.length ? `; missing: ${s.missing.join(', ')}` : ''}`);
  out.push(`results: ${join(s.out, 'sweep.csv')}, sweep.json, plots/, settings/<setting>/`);
  return out.join('\n') + '\n';
}

/** For a setting without a result: the Slurm log of its last submitted task, and that log's last line. */
function slurmLogHints(out: string): (index: number) => string | undefined {
  const subs = join(out, 'slurm', 'submissions.jsonl');
  if (!existsSync(subs)) return () => undefined;
  const jobs = readFileSync(subs, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        return JSON.parse(l) as SlurmSubmission;
      } catch {
        return null;
      }
    })
    .filter((j): j is SlurmSubmission => j !== null);
  const queued = new Map<string, Map<number, string>>();
  const stateOf = (jobId: string, index: number): string | undefined => {
    if (!queued.has(jobId)) {
      const m = new Map<number, string>();
      // best effort: where squeue is there, tell queued or running tasks from lost ones
      const r = spawnSync('squeue', ['-h', '-r', '-j', jobId, '-o', '%K %T'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status === 0) {
        for (const line of r.stdout.split('\n')) {
          const [k, state] = line.trim().split(/\s+/);
          if (k !== undefined && /^\d+$/.test(k)) m.set(Number(k), state);
        }
      }
      queued.set(jobId, m);
    }
    return queued.get(jobId)!.get(index);
  };
  return (index) => {
    const job = [...jobs].reverse().find((j) => j.indices.includes(index));
    if (!job) return undefined;
    const state = stateOf(job.job_id, index);
    if (state) return `Slurm job ${job.job_id} task ${index} is ${state.toLowerCase()}`;
    const log = join(out, 'slurm', `${job.job_id}_${index}.out`);
    if (!existsSync(log)) return `Slurm job ${job.job_id} task ${index} is not in the queue and wrote no log (${log})`;
    const last = readFileSync(log, 'utf8').trim().split('\n').pop() ?? '';
    return `see ${log}${last ? ` (last line: ${last.slice(0, 200)})` : ''}`;
  };
}

/**
 * Reads the settings' folders of a planned sweep and writes sweep.csv, sweep.json and the plots
 * (from the finished settings; failed and missing ones are listed).
 * @throws SpurmemError when `out` holds no sweep plan
 */
export async function collectSweep(dir: string, o: { write?: boolean } = {}): Promise<SweepSummary> {
  const out = resolve(dir);
  const planPath = join(out, PLAN_FILE);
  if (!existsSync(out)) throw new SpurmemError(`${out}: no such folder (expected a sweep's output folder)`);
  if (!existsSync(planPath)) throw new SpurmemError(`${out}: no ${PLAN_FILE} (not a sweep folder, or the sweep was never started)`);
  let plan: SweepPlan;
  try {
    plan = JSON.parse(readFileSync(planPath, 'utf8')) as SweepPlan;
  } catch (e) {
    throw new SpurmemError(`${planPath}: unreadable (${(e as Error).message})`);
  }
  const statuses = plan.settings.map((p) => settingStatus(out, p, plan));
  const first = statuses.find((s): s is Extract<SettingStatus, { status: 'finished' }> => s.status === 'finished');
  const trainCounts = first?.result.train_group_counts ?? [];
  const groupNames = first?.result.unmodified.groups.map((g) => g.name) ?? [];
  const minority = plan.minority_groups ?? minorityGroups(trainCounts);
  const rule = plan.minority_groups ? 'named in the configuration' : 'within each class, the group with fewer training samples';
  const logHint = slurmLogHints(out);
  const rows: SweepRow[] = [];
  const settings: SweepSummary['settings'] = plan.settings.map((p, i) => {
    const st = statuses[i];
    const folder = settingFolder(out, p.key);
    if (st.status === 'finished') {
      rows.push(...settingRows(p, st.result, minority));
      return { index: p.index, key: p.key, setting: p.setting, status: 'finished', folder, seconds: st.result.seconds };
    }
    if (st.status === 'failed') return { index: p.index, key: p.key, setting: p.setting, status: 'failed', folder, message: st.message };
    const message = [st.reason, logHint(p.index)].filter(Boolean).join('; ');
    return { index: p.index, key: p.key, setting: p.setting, status: 'missing', folder, ...(message ? { message } : {}) };
  });
  const summary: SweepSummary = {
    out,
    config_file: plan.config_file,
    checkpoint: plan.checkpoint,
    group_names: groupNames,
    train_group_counts: trainCounts,
    minority_groups: minority,
    minority_rule: rule,
    settings,
    finished: settings.filter((s) => s.status === 'finished').length,
    failed: settings.filter((s) => s.status === 'failed').map((s) => s.index),
    missing: settings.filter((s) => s.status === 'missing').map((s) => s.index),
    rows,
    plots: [],
  };
  if (o.write !== false) {
    summary.plots = await writeSweepPlots(out, rows, minority, first?.result.unmodified.groups.map((g) => g.id) ?? []);
    writeFileAtomic(join(out, 'sweep.csv'), sweepCsv(rows));
    writeJsonAtomic(join(out, 'sweep.json'), summary);
  }
  return summary;
}

export { minorityGroups, pooledAccuracy };
