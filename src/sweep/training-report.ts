/**
 * The outputs of a training sweep, made from its runs' folders: where each run stands (finished, running,
 * requeued, failed, missing), `sweep.csv` / `sweep.json` with one row per run (its selected epoch's
 * validation and test accuracies), and the paper tables `table.md`, `table.csv`, `table.tex` with one row
 * per setting group: the selected hyperparameters and the test accuracies of their runs as mean ± standard
 * deviation over seeds (ddof 1), the standard error (std / sqrt(n)) and the count of seeds.
 *
 * Model selection (SubpopBench's protocol): per run the epoch with the best validation worst-group accuracy
 * (`epoch_select`: val_wga, default; val_avg; last); per setting group the hyperparameter setting whose
 * seed-mean validation worst-group accuracy is best (`select`: val_wga, default; val_avg; oracle = test
 * worst-group accuracy, labelled as such). Ties: the earlier epoch, the setting first in the plan.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { GroupMetrics } from '../metrics/groups.js';
import { mean } from '../metrics/statistics.js';
import type { EpochSelection, SweepSelection } from '../options/enums.js';
import { RunDir, type EpochRecord } from '../train/run-dir.js';
import { toSnake } from '../util/case.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { trainingSettingLabel, type TrainingPlannedSetting, type TrainingSweepCommand } from './training-config.js';
import { PLAN_FILE, settingFolder, type SlurmSubmission } from './report.js';

/** What `<out>/sweep-plan.json` holds for a training sweep. */
export interface TrainingSweepPlan {
  command: TrainingSweepCommand;
  config_file: string | null;
  /** The configuration's table choices (`spurmem sweep table` overrides them). */
  group_by: string[] | null;
  select: SweepSelection;
  epoch_select: EpochSelection;
  /** finetune-prune from a train sweep: its folder and how its setting was selected. */
  base_sweep: { sweep: string; select: SweepSelection } | null;
  settings: TrainingPlannedSetting[];
}

/** The run folder of a setting (what `spurmem train --out` writes). */
export const runFolder = (out: string, key: string): string => join(settingFolder(out, key), 'run');

/** Where a run stands. */
export type RunStatus = 'finished' | 'running' | 'requeued' | 'failed' | 'missing';

/** The marker files of a setting folder (beside its run folder). */
export const MARKERS = { result: 'result.json', error: 'error.json', running: 'running.json', interrupted: 'interrupted.json' } as const;

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** What running.json says: the process running the setting. */
export interface RunningMarker {
  pid: number;
  host: string;
  /** `<array job>_<task>` of a Slurm task. */
  slurm_task: string | null;
  /** SLURM_RESTART_COUNT (how many times the task was requeued). */
  restarts: number;
  started: string;
}

/** Slurm states of a sweep's submitted tasks (best effort: empty without squeue), by array index. */
function slurmStates(out: string): Map<number, string> {
  const states = new Map<number, string>();
  const subs = join(out, 'slurm', 'submissions.jsonl');
  if (!existsSync(subs)) return states;
  const ids = new Set<string>();
  for (const l of readFileSync(subs, 'utf8').split('\n')) {
    try {
      if (l.trim()) ids.add((JSON.parse(l) as SlurmSubmission).job_id);
    } catch {
      // a torn last line: that submission's tasks are not asked about
    }
  }
  if (ids.size === 0) return states;
  const r = spawnSync('squeue', ['-h', '-r', '-j', [...ids].join(','), '-o', '%K %T'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return states;
  for (const line of r.stdout.split('\n')) {
    const [k, state] = line.trim().split(/\s+/);
    if (k !== undefined && /^\d+$/.test(k) && state) states.set(Number(k), state.toLowerCase());
  }
  return states;
}

function alive(m: RunningMarker): boolean {
  if (m.host !== hostname()) return false;
  try {
    process.kill(m.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Where a run stands: `finished` (result.json, written last, for the same options); `running` (running.json of a live process, or
 * its Slurm task is running); `requeued` (stopped by SIGTERM after a complete epoch, or its Slurm task is
 * pending again after it started: it resumes from its last complete epoch); `failed` (error.json says why);
 * else `missing` (never started, or stopped without a word: the message says after which epoch).
 */
export function runStatus(out: string, p: TrainingPlannedSetting, slurm: Map<number, string> = new Map()): { status: RunStatus; message?: string } {
  const folder = settingFolder(out, p.key);
  const result = readJson<{ key: string; input?: Record<string, unknown> }>(join(folder, MARKERS.result));
  // a result of other options (the base was edited) is not this run's: it is run again (resumed: more epochs continue it)
  const stale = result !== null && JSON.stringify(result.input) !== JSON.stringify(p.input);
  if (result && result.key === p.key && !stale) return { status: 'finished' };
  const last = existsSync(join(runFolder(out, p.key), 'metrics.jsonl')) ? new RunDir(runFolder(out, p.key)).lastCompleteEpoch() : -1;
  const after = last >= 0 ? `after epoch ${last}` : 'before its first epoch';
  const state = slurm.get(p.index);
  const running = readJson<RunningMarker>(join(folder, MARKERS.running));
  if (state === 'running' || (running && alive(running))) {
    return { status: 'running', message: `${running?.slurm_task ? `Slurm task ${running.slurm_task}` : running ? `pid ${running.pid}` : 'Slurm task'}, ${last >= 0 ? `epoch ${last} done` : 'no epoch done yet'}` };
  }
  const interrupted = readJson<{ last_complete_epoch: number }>(join(folder, MARKERS.interrupted));
  if (interrupted || (state && (running || last >= 0))) {
    return { status: 'requeued', message: `stopped ${after}${state ? `; Slurm task ${state}` : '; the next spurmem sweep resumes it'}` };
  }
  const error = readJson<{ message: string }>(join(folder, MARKERS.error));
  if (error || existsSync(join(folder, MARKERS.error))) return { status: 'failed', message: error?.message ?? 'unreadable error.json' };
  if (state) return { status: 'missing', message: `Slurm task ${state}` };
  if (stale) return { status: 'missing', message: 'its result is for other options (the configuration was edited); the next spurmem sweep runs it again' };
  if (running || last >= 0) return { status: 'missing', message: `stopped without a word ${after} (killed?); the next spurmem sweep resumes it` };
  return { status: 'missing' };
}

/** The four accuracies of a split at one epoch (fractions in [0, 1]). */
export interface Accuracies {
  worst_group: number | null;
  average: number | null;
  mean: number | null;
  overall: number | null;
}

const accuracies = (m: GroupMetrics): Accuracies => ({
  worst_group: m.worst_group_accuracy,
  average: m.average_accuracy,
  mean: m.mean_accuracy,
  overall: m.overall_accuracy ?? null,
});

/**
 * The epoch of a run's records that `how` selects: best validation worst-group or average accuracy (the
 * earlier epoch on ties), or the last. The record before training (epoch -1) is never selected.
 */
export function selectEpoch(records: EpochRecord[], how: EpochSelection): EpochRecord | undefined {
  const recs = records.filter((r) => r.epoch >= 0);
  if (how === 'last') return recs[recs.length - 1];
  const score = (r: EpochRecord) => (how === 'val_wga' ? r.val.worst_group_accuracy : r.val.average_accuracy) ?? -1;
  let best: EpochRecord | undefined;
  for (const r of recs) if (!best || score(r) > score(best)) best = r;
  return best;
}

/** A row of a training sweep's sweep.csv / sweep.json: one run. */
export type TrainingSweepRow = { index: number; key: string; status: RunStatus } & Record<string, unknown> & {
  seed: number | null;
  /** The selected epoch (by `epoch_select`), and the run's epochs done. */
  epoch: number | null;
  epochs_done: number | null;
  val: Accuracies | null;
  test: Accuracies | null;
};

/** One row of the paper table: a setting group, its selected hyperparameters and the test accuracies over seeds. */
export interface TableRow {
  /** The group's values (snake_case keys of `group_by`). */
  group: Record<string, unknown>;
  /** The selected hyperparameter setting: its varied options (not seed, not the group's), `lr=0.001 weight_decay=0`. */
  selected: Record<string, unknown>;
  /** The keys of the runs (one per seed) that make the row. */
  runs: string[];
  seeds: number[];
  n: number;
  /** The selection's score: seed-mean validation worst-group (val_wga) or average (val_avg) accuracy, or test worst-group (oracle). */
  score: number | null;
  /** Per test accuracy: mean, standard deviation over seeds (ddof 1; null for one seed) and standard error. */
  test: Record<keyof Accuracies, { mean: number | null; std: number | null; se: number | null }>;
  /** The other hyperparameter settings of the group, with their scores (for the record). */
  candidates: { selected: Record<string, unknown>; score: number | null; n: number }[];
}

/** What a training sweep's sweep.json holds (and `sweep()` resolves to). */
export interface TrainingSweepSummary {
  command: TrainingSweepCommand;
  out: string;
  config_file: string | null;
  group_by: string[];
  select: SweepSelection;
  epoch_select: EpochSelection;
  base_sweep: TrainingSweepPlan['base_sweep'];
  settings: { index: number; key: string; setting: Record<string, unknown>; status: RunStatus; folder: string; message?: string; base_run?: TrainingPlannedSetting['base_run'] }[];
  finished: number;
  running: number[];
  requeued: number[];
  failed: number[];
  missing: number[];
  rows: TrainingSweepRow[];
  table: TableRow[];
  /** Files written: sweep.csv, sweep.json, table.md, table.csv, table.tex. */
  files: string[];
  slurm?: SlurmSubmission;
}

/** Standard deviation with ddof 1 (the sample standard deviation over seeds), or null for fewer than two values. */
export function sampleStd(xs: readonly number[]): number | null {
  if (xs.length < 2) return null;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** The default group-by keys: the command (and its algorithm, when the option table has one), the dataset and the architecture. */
export function defaultGroupBy(options: readonly string[]): string[] {
  return ['command', ...(options.includes('algorithm') ? ['algorithm'] : []), 'dataset', 'arch'];
}

const METRICS = ['worst_group', 'average', 'mean', 'overall'] as const;
const METRIC_NAMES: Record<(typeof METRICS)[number], string> = { worst_group: 'worst-group', average: 'average', mean: 'mean', overall: 'overall' };
const SELECT_WORDS: Record<SweepSelection, string> = {
  val_wga: 'best seed-mean validation worst-group accuracy (training-domain validation)',
  val_avg: 'best seed-mean validation average accuracy',
  oracle: 'ORACLE: best seed-mean test worst-group accuracy (test data chose the hyperparameters; not a valid model selection)',
};
const EPOCH_WORDS: Record<EpochSelection, string> = {
  val_wga: 'the epoch of best validation worst-group accuracy',
  val_avg: 'the epoch of best validation average accuracy',
  last: 'the last epoch',
};

function stats(xs: number[]) {
  const m = mean(xs);
  const s = sampleStd(xs);
  return { mean: m, std: s, se: s === null ? null : s / Math.sqrt(xs.length) };
}

/**
 * The paper table: runs grouped by the `groupBy` values of their options; in each group the hyperparameter
 * settings (the runs' grid values except seed and the group's keys) scored by `select`, and the best one's
 * test accuracies over its seeds. Only finished runs count.
 */
export function paperTable(rows: TrainingSweepRow[], options: Map<string, Record<string, unknown>>, groupBy: string[], select: SweepSelection, gridKeys: string[]): TableRow[] {
  const value = (r: TrainingSweepRow, k: string) => (k in r && k !== 'status' ? r[k] : options.get(r.key)?.[k]);
  const hyper = gridKeys.filter((k) => k !== 'seed' && !groupBy.includes(k));
  const groups = new Map<string, { group: Record<string, unknown>; cands: Map<string, { selected: Record<string, unknown>; runs: TrainingSweepRow[] }> }>();
  for (const r of rows) {
    if (r.status !== 'finished' || !r.val || !r.test) continue;
    const group = Object.fromEntries(groupBy.map((k) => [k, value(r, k) ?? null]));
    const gid = JSON.stringify(group);
    if (!groups.has(gid)) groups.set(gid, { group, cands: new Map() });
    const selected = Object.fromEntries(hyper.filter((k) => value(r, k) !== undefined).map((k) => [k, value(r, k)]));
    const cid = JSON.stringify(selected);
    const g = groups.get(gid)!;
    if (!g.cands.has(cid)) g.cands.set(cid, { selected, runs: [] });
    g.cands.get(cid)!.runs.push(r);
  }
  const score = (runs: TrainingSweepRow[]) =>
    mean(runs.map((r) => (select === 'val_wga' ? r.val!.worst_group : select === 'val_avg' ? r.val!.average : r.test!.worst_group)).filter((x): x is number => x !== null));
  const out: TableRow[] = [];
  for (const { group, cands } of groups.values()) {
    const scored = [...cands.values()].map((c) => ({ ...c, score: score(c.runs) }));
    let best = scored[0];
    for (const c of scored) if ((c.score ?? -1) > (best.score ?? -1)) best = c;
    const test = Object.fromEntries(METRICS.map((m) => [m, stats(best.runs.map((r) => r.test![m]).filter((x): x is number => x !== null))])) as TableRow['test'];
    out.push({
      group,
      selected: best.selected,
      runs: best.runs.map((r) => r.key),
      seeds: best.runs.map((r) => r.seed).filter((s): s is number => s !== null),
      n: best.runs.length,
      score: best.score,
      test,
      candidates: scored.map((c) => ({ selected: c.selected, score: c.score, n: c.runs.length })),
    });
  }
  return out;
}

const csvField = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  const s = Array.isArray(v) ? v.join('+') : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};
const pct = (x: number | null) => (x === null ? 'n/a' : (100 * x).toFixed(2));
const named = (o: Record<string, unknown>) => trainingSettingLabel(o) === '(base)' ? '(one setting)' : trainingSettingLabel(o);
const cell = (s: { mean: number | null; std: number | null; se: number | null }, pm: string) => `${pct(s.mean)}${s.std === null ? '' : ` ${pm} ${pct(s.std)}`}`;

/** table.csv: one line per setting group; fractions at full precision; std and se empty for one seed. */
export function tableCsv(t: TableRow[], groupBy: string[], select: SweepSelection): string {
  const cols = [...groupBy, 'selected', 'select', 'score', 'n_seeds', 'seeds', ...METRICS.flatMap((m) => [`test_${m}_mean`, `test_${m}_std`, `test_${m}_se`])];
  const lines = [cols.join(',')];
  for (const r of t) {
    lines.push(
      [
        ...groupBy.map((k) => csvField(r.group[k])),
        csvField(named(r.selected)),
        select,
        csvField(r.score),
        String(r.n),
        csvField(r.seeds.join(' ')),
        ...METRICS.flatMap((m) => [csvField(r.test[m].mean), csvField(r.test[m].std), csvField(r.test[m].se)]),
      ].join(','),
    );
  }
  return lines.join('\n') + '\n';
}

/** table.md: a Markdown table, accuracies in percent as mean ± std (ddof 1) over seeds with the standard error, and how the rows were selected. */
export function tableMarkdown(t: TableRow[], groupBy: string[], select: SweepSelection, epochSelect: EpochSelection): string {
  const head = [...groupBy, 'selected hyperparameters', 'seeds', ...METRICS.map((m) => `test ${METRIC_NAMES[m]} % (SE)`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i >= groupBy.length + 1 ? ' ---: ' : ' --- ')).join('|')}|`];
  for (const r of t) {
    const cells = [
      ...groupBy.map((k) => csvField(r.group[k]) || '—'),
      named(r.selected),
      String(r.n),
      ...METRICS.map((m) => `${cell(r.test[m], '±')}${r.test[m].se === null ? '' : ` (${pct(r.test[m].se)})`}`),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push(`Mean ± standard deviation over seeds (ddof 1), standard error in brackets. Per run: ${EPOCH_WORDS[epochSelect]}. Hyperparameters: ${SELECT_WORDS[select]}.`);
  return lines.join('\n') + '\n';
}

const tex = (s: string) => s.replace(/\\/g, '\\textbackslash{}').replace(/([&%$#_{}])/g, '\\$1').replace(/~/g, '\\textasciitilde{}').replace(/\^/g, '\\textasciicircum{}');

/** table.tex: a booktabs tabular with the same cells as table.md ($\pm$), and the selection in a comment and the caption text. */
export function tableTex(t: TableRow[], groupBy: string[], select: SweepSelection, epochSelect: EpochSelection): string {
  const head = [...groupBy.map(tex), 'selected', 'seeds', ...METRICS.map((m) => `${METRIC_NAMES[m]} (\\%)`)];
  const lines = [
    `% Test accuracies: mean $\\pm$ standard deviation over seeds (ddof 1), standard error in brackets.`,
    `% Per run: ${EPOCH_WORDS[epochSelect]}. Hyperparameters: ${SELECT_WORDS[select]}.`,
    `\\begin{tabular}{${'l'.repeat(groupBy.length + 1)}r${'r'.repeat(METRICS.length)}}`,
    '\\toprule',
    `${head.join(' & ')} \\\\`,
    '\\midrule',
  ];
  for (const r of t) {
    const cells = [
      ...groupBy.map((k) => tex(csvField(r.group[k]) || '--')),
      tex(named(r.selected)),
      String(r.n),
      ...METRICS.map((m) => `${cell(r.test[m], '$\\pm$')}${r.test[m].se === null ? '' : ` (${pct(r.test[m].se)})`}`),
    ];
    lines.push(`${cells.join(' & ')} \\\\`);
  }
  lines.push('\\bottomrule', '\\end{tabular}', '');
  return lines.join('\n');
}

const ROW_COLUMNS = ['epoch', 'epochs_done'] as const;

/** sweep.csv of a training sweep: one line per run (grid keys, seed, status, the selected epoch, validation and test accuracies). */
export function trainingSweepCsv(rows: TrainingSweepRow[], gridKeys: string[]): string {
  const keys = [...gridKeys.filter((k) => k !== 'seed'), 'seed'];
  const cols = ['index', 'key', ...keys, 'status', ...ROW_COLUMNS, ...METRICS.map((m) => `val_${m}`), ...METRICS.map((m) => `test_${m}`)];
  const lines = [cols.join(',')];
  for (const r of rows) {
    lines.push(
      [String(r.index), csvField(r.key), ...keys.map((k) => csvField(r[k])), r.status, ...ROW_COLUMNS.map((c) => csvField(r[c])), ...METRICS.map((m) => csvField(r.val?.[m])), ...METRICS.map((m) => csvField(r.test?.[m]))].join(','),
    );
  }
  return lines.join('\n') + '\n';
}

/** Reads a training sweep's plan. @throws SpurmemError when `out` holds no plan of a training sweep */
export function readTrainingPlan(out: string): TrainingSweepPlan {
  const planPath = join(out, PLAN_FILE);
  if (!existsSync(out)) throw new SpurmemError(`${out}: no such folder (expected a sweep's output folder)`);
  if (!existsSync(planPath)) throw new SpurmemError(`${out}: no ${PLAN_FILE} (not a sweep folder, or the sweep was never started)`);
  const plan = readJson<TrainingSweepPlan>(planPath);
  if (!plan) throw new SpurmemError(`${planPath}: unreadable`);
  if (plan.command !== 'train' && plan.command !== 'finetune-prune') throw new SpurmemError(`${out}: a sweep of studies, not of training runs (spurmem sweep table takes a train or finetune-prune sweep)`);
  return plan;
}

/** Whether a sweep folder holds a training sweep (its plan names a train or finetune-prune command). */
export function isTrainingSweep(dir: string): boolean {
  const plan = readJson<{ command?: string }>(join(resolve(dir), PLAN_FILE));
  return plan?.command === 'train' || plan?.command === 'finetune-prune';
}

/** The grid keys of a plan, in the order of the settings' keys. */
const gridKeysOf = (plan: TrainingSweepPlan) => [...new Set(plan.settings.flatMap((p) => Object.keys(p.setting)))];

/**
 * Reads a training sweep's run folders and writes sweep.csv, sweep.json, table.md, table.csv and table.tex
 * (from the finished runs; the others are listed with where they stand).
 * @param o.groupBy, o.select, o.epochSelect override the plan's (the configuration's) choices
 * @throws SpurmemError when `dir` holds no training sweep; UsageError for a group-by key that no run has
 */
export async function collectTrainingSweep(
  dir: string,
  o: { write?: boolean; groupBy?: string[]; select?: SweepSelection; epochSelect?: EpochSelection } = {},
): Promise<TrainingSweepSummary> {
  const out = resolve(dir);
  const plan = readTrainingPlan(out);
  const select = o.select ?? plan.select;
  const epochSelect = o.epochSelect ?? plan.epoch_select;
  const slurm = slurmStates(out);
  const rows: TrainingSweepRow[] = [];
  const options = new Map<string, Record<string, unknown>>();
  const settings: TrainingSweepSummary['settings'] = [];
  const gridKeys = gridKeysOf(plan);
  for (const p of plan.settings) {
    const st = runStatus(out, p, slurm);
    settings.push({ index: p.index, key: p.key, setting: p.setting, status: st.status, folder: settingFolder(out, p.key), ...(st.message ? { message: st.message } : {}), ...(p.base_run ? { base_run: p.base_run } : {}) });
    const row: TrainingSweepRow = { index: p.index, key: p.key, ...p.setting, status: st.status, seed: null, epoch: null, epochs_done: null, val: null, test: null };
    const run = new RunDir(runFolder(out, p.key));
    const cfg = readJson<{ command: string; options: Record<string, unknown> }>(run.path('config.json'));
    if (cfg) {
      const snake = Object.fromEntries(Object.entries(cfg.options).map(([k, v]) => [toSnake(k), v]));
      options.set(p.key, { command: cfg.command, ...snake });
      row.seed = (snake.seed as number | undefined) ?? null;
    }
    if (st.status === 'finished') {
      const recs = run.records();
      const e = selectEpoch(recs, epochSelect);
      if (e) Object.assign(row, { epoch: e.epoch, epochs_done: recs.filter((r) => r.epoch >= 0).length, val: accuracies(e.val), test: accuracies(e.test) });
    }
    rows.push(row);
  }
  const allKeys = new Set([...gridKeys, ...[...options.values()].flatMap((x) => Object.keys(x))]);
  const groupBy = o.groupBy ?? plan.group_by ?? defaultGroupBy([...allKeys]).filter((k) => allKeys.has(k) || options.size === 0);
  const unknown = groupBy.filter((k) => !allKeys.has(k));
  if (unknown.length && options.size > 0) throw new UsageError(`--group-by: ${unknown.map((k) => `'${k}'`).join(', ')}: not an option of these runs (expected some of ${[...allKeys].join(', ')})`);
  const table = paperTable(rows, options, groupBy, select, gridKeys);
  const summary: TrainingSweepSummary = {
    command: plan.command,
    out,
    config_file: plan.config_file,
    group_by: groupBy,
    select,
    epoch_select: epochSelect,
    base_sweep: plan.base_sweep,
    settings,
    finished: settings.filter((s) => s.status === 'finished').length,
    running: settings.filter((s) => s.status === 'running').map((s) => s.index),
    requeued: settings.filter((s) => s.status === 'requeued').map((s) => s.index),
    failed: settings.filter((s) => s.status === 'failed').map((s) => s.index),
    missing: settings.filter((s) => s.status === 'missing').map((s) => s.index),
    rows,
    table,
    files: [],
  };
  if (o.write !== false) {
    const files: [string, string][] = [
      ['sweep.csv', trainingSweepCsv(rows, gridKeys)],
      ['table.md', tableMarkdown(table, groupBy, select, epochSelect)],
      ['table.csv', tableCsv(table, groupBy, select)],
      ['table.tex', tableTex(table, groupBy, select, epochSelect)],
    ];
    for (const [name, text] of files) writeFileAtomic(join(out, name), text);
    summary.files = [...files.map(([n]) => join(out, n)), join(out, 'sweep.json')];
    writeJsonAtomic(join(out, 'sweep.json'), summary);
  }
  return summary;
}

/** The terminal text of a training sweep: table.md, then one line per run that is not finished. */
export function trainingSweepText(s: TrainingSweepSummary): string {
  const lines = [tableMarkdown(s.table, s.group_by, s.select, s.epoch_select).trimEnd()];
  for (const st of s.settings) if (st.status !== 'finished') lines.push(`#${st.index} ${st.key}: ${st.status}${st.message ? `: ${st.message}` : ''}`);
  const parts = [`${s.finished} of ${s.settings.length} runs finished`];
  for (const k of ['running', 'requeued', 'failed', 'missing'] as const) if (s[k].length) parts.push(`${k}: ${s[k].join(', ')}`);
  lines.push(parts.join('; '));
  lines.push(`results: ${join(s.out, 'table.md')}, table.csv, table.tex, sweep.csv, sweep.json, settings/<setting>/run/`);
  return lines.join('\n') + '\n';
}
