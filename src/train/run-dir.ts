/**
 * A training run folder (`spurmem train` and `spurmem finetune-prune`): config.json, one checkpoint per
 * epoch, metrics.jsonl, the original-compatible text files, plots and best.json. Everything is written
 * atomically; metrics.jsonl gets one whole line per finished epoch, after that epoch's checkpoint, so
 * the last line names the last complete epoch and `--resume` starts after it. Also the options a run
 * folder takes (shared by both commands) and the versions its config.json records.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { runEpochs } from '../base.js';
import { addon, packageRoot } from '../native.js';
import type { GroupMetrics } from '../metrics/groups.js';
import type { Split } from '../data/types.js';
import { intervalWords, lineChart, writePlot, type LinePoint } from '../report/plots.js';
import { ciKey, type Interval } from '../metrics/intervals.js';
import { evolutionText } from '../report/text.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { appendJsonLine, watchTempFiles, writeFileAtomic, writeJsonAtomic } from '../util/files.js';

/** Run-folder options (RUN_FOLDER_KEYS of the option table), device options and the interval options that may differ when a run is resumed. */
export const RESUMABLE_FIELDS = ['out', 'epochs', 'device', 'threads', 'decodeThreads', 'resume', 'force', 'cacheMb', 'evalBatchSize', 'skipBadImages', 'keepCheckpoints', 'resize', 'quiet', 'ci', 'ciLevel', 'bootstrap'];

/** Versions recorded in every config.json. */
export function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const v = addon().versions();
  return { spurmem: pkg.version, libtorch: v.libtorch, node: process.versions.node, sharp: sharp.versions.sharp ?? '', vips: sharp.versions.vips };
}

/** One line of metrics.jsonl. epoch -1 is the model before training. */
export interface EpochRecord {
  epoch: number;
  loss: number | null;
  /** Extra loss terms (finetune-prune: ntxent, ce). */
  losses?: Record<string, number>;
  lr: number | null;
  /** Wall seconds of the training pass and of the evaluation. */
  seconds: number;
  eval_seconds: number;
  train: GroupMetrics;
  val: GroupMetrics;
  test: GroupMetrics;
}

export const SPLIT_FILE_NAMES: Record<Split, string> = { train: 'training', val: 'validating', test: 'testing' };

export class RunDir {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** `epoch_<e>_checkpoints.pth.tar`, e 0-based, written after training epoch e (original naming). */
  checkpoint(epoch: number): string {
    return this.path(`epoch_${epoch}_checkpoints.pth.tar`);
  }

  /** A line for the log about what prepare() decided, when it is worth saying (nothing to resume ...). */
  note: string | undefined;

  /**
   * Creates the folder or checks it against `config`. A folder holding another run's config is refused
   * unless `resume` (fields in `mayChange` may differ) or `force` (the old run is overwritten); so is a
   * folder of another command's run, or a non-empty folder that is not a run. A folder whose run never
   * finished an epoch (e.g. it stopped at a bad option) is started again. Returns the epoch to start from
   * (0, or the one after the last complete epoch when resuming).
   * @throws SpurmemError naming the folder; UsageError (exit status 2) for --resume with options that differ from the run's
   */
  prepare(config: Record<string, unknown>, o: { resume: boolean; force: boolean; mayChange: string[]; command: string }): number {
    this.note = undefined;
    if (existsSync(this.dir) && !statSync(this.dir).isDirectory()) {
      throw new SpurmemError(`--out ${this.dir} is a file, expected a run folder (new, or one to --resume)`);
    }
    mkdirSync(this.dir, { recursive: true });
    watchTempFiles(this.dir);
    // temporary files of writes that a killed process never renamed
    for (const f of readdirSync(this.dir)) if (/\.tmp-\d+-\d+$/.test(f)) rmSync(join(this.dir, f), { force: true });
    const cfgPath = this.path('config.json');
    const started = runEpochs(this.dir).length > 0;
    if (existsSync(cfgPath) && started) {
      const old = readRunConfig(cfgPath);
      if (old.command && old.command !== o.command && !o.force) {
        throw new SpurmemError(`${this.dir} holds a ${old.command} run, not a ${o.command} run: choose another --out (or pass --force to replace it)`);
      }
      const diff = Object.keys({ ...old.options, ...config })
        .filter((k) => !o.mayChange.includes(k))
        .filter((k) => JSON.stringify(old.options?.[k]) !== JSON.stringify(config[k]));
      if (o.force) {
        this.clear();
        writeFileAtomic(this.path('metrics.jsonl'), '');
        return 0;
      }
      if (!o.resume) {
        throw new SpurmemError(
          `${this.dir} already holds a run (config.json). Pass --resume to continue it, --out DIR to start a new run in another folder, or --force to start it again here (deletes the run's results)` +
            (diff.length ? ` (options that differ: ${diff.join(', ')})` : ''),
        );
      }
      if (diff.length) {
        // an option error like any other: exit status 2
        throw new UsageError(
          `${this.dir}: --resume with other options than the run was started with: ${diff
            .map((k) => `${k} (was ${JSON.stringify(old.options?.[k])}, now ${JSON.stringify(config[k])})`)
            .join('; ')}. Leave them out to continue with the run's own (--resume --out DIR reads them from config.json), or pass --force to discard the run and start again.`,
        );
      }
      const last = this.lastCompleteEpoch();
      if (typeof config.epochs === 'number' && last + 1 > config.epochs) {
        throw new UsageError(
          `${this.dir}: the run has ${last + 1} epochs done (0 to ${last}); --epochs ${config.epochs} is fewer. ` +
            `Pass --epochs ${last + 1} or more to continue it, or use --run ${this.dir} --epoch E to work on an earlier epoch`,
        );
      }
      return last + 1;
    }
    if (!existsSync(cfgPath) && !o.force) {
      const other = readdirSync(this.dir).filter((f) => !f.startsWith('.'));
      if (other.length > 0) {
        throw new SpurmemError(`--out ${this.dir} is not empty and holds no spurmem run (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}): choose another folder or pass --force`);
      }
    }
    if (o.resume) this.note = `nothing to resume in ${this.dir}: starting a new run`;
    writeFileAtomic(this.path('metrics.jsonl'), '');
    return 0;
  }

  /**
   * Removes what a run wrote (epoch checkpoints, metrics, best.json, the original's text files, loss lists,
   * plots, finetune-prune's pruned_layers files, and the studies and finetune-prune runs made from the run), for --force: nothing of
   * the old run may pass for the new one's.
   */
  private clear(): void {
    const produced = /^(epoch_\d+_checkpoints\.pth\.tar|metrics\.jsonl|best\.json|group_accuracy_.*\.(txt|svg|png)|loss\.(svg|png)|training_.*_list\.json|pruned_layers_epoch\d+\.json)$/;
    for (const f of readdirSync(this.dir)) if (produced.test(f)) rmSync(this.path(f), { force: true });
    rmSync(this.path('studies'), { recursive: true, force: true });
    rmSync(this.path('finetune_prune'), { recursive: true, force: true });
  }

  writeConfig(value: unknown): void {
    writeJsonAtomic(this.path('config.json'), value);
  }

  /** The records of metrics.jsonl; a torn last line (the process was killed while appending) is ignored. */
  records(): EpochRecord[] {
    const p = this.path('metrics.jsonl');
    if (!existsSync(p)) return [];
    const out: EpochRecord[] = [];
    for (const line of readFileSync(p, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as EpochRecord);
      } catch {
        break;
      }
    }
    return out;
  }

  /**
   * Deletes the epoch checkpoints older than the newest `keep`, except the best validation epoch's
   * (best.json's). Called after an epoch's checkpoint and metrics line are written, so a run killed at
   * any point still has its last complete epoch. Returns the epochs whose checkpoints were deleted.
   */
  pruneCheckpoints(keep: number): number[] {
    const epochs = runEpochs(this.dir);
    if (epochs.length === 0) return [];
    const newest = epochs[epochs.length - 1];
    const best = bestEpoch(this.records())?.epoch;
    const gone = epochs.filter((e) => e <= newest - keep && e !== best);
    for (const e of gone) rmSync(this.checkpoint(e), { force: true });
    return gone;
  }

  /** Largest epoch with a metrics line and a checkpoint file; -1 when none. */
  lastCompleteEpoch(): number {
    let last = -1;
    for (const r of this.records()) if (r.epoch >= 0 && existsSync(this.checkpoint(r.epoch))) last = Math.max(last, r.epoch);
    return last;
  }

  /** Keeps only the records up to `epoch` (drops what a killed run left after its last checkpoint). */
  truncate(epoch: number): void {
    const keep = this.records().filter((r) => r.epoch <= epoch);
    writeFileAtomic(this.path('metrics.jsonl'), keep.map((r) => JSON.stringify(r)).join('\n') + (keep.length ? '\n' : ''));
  }

  append(r: EpochRecord): void {
    appendJsonLine(this.path('metrics.jsonl'), r);
  }

  /**
   * Rewrites the summaries from metrics.jsonl: the original's text files, training_loss_list.json,
   * plots (per-group accuracy per split, loss; left out with `plots: false`, as rendering them takes about
   * a second), and best.json (best validation worst-group accuracy).
   */
  async writeSummaries(o: { extraLossLists?: Record<string, string>; plots?: boolean } = {}): Promise<void> {
    const recs = this.records().filter((r) => r.epoch >= 0);
    if (recs.length === 0) return;
    for (const split of ['train', 'val', 'test'] as const) {
      writeFileAtomic(this.path(`group_accuracy_evolution_in_${SPLIT_FILE_NAMES[split]}_set.txt`), evolutionText(recs.map((r) => r[split])));
    }
    writeJsonAtomic(this.path('training_loss_list.json'), recs.map((r) => r.loss));
    for (const [key, file] of Object.entries(o.extraLossLists ?? {})) {
      writeJsonAtomic(this.path(file), recs.map((r) => r.losses?.[key] ?? null));
    }
    const best = bestEpoch(recs);
    if (best) {
      writeJsonAtomic(this.path('best.json'), {
        criterion: 'highest validation worst-group accuracy (ties: the earlier epoch)',
        epoch: best.epoch,
        checkpoint: `epoch_${best.epoch}_checkpoints.pth.tar`,
        val: { worst_group_accuracy: best.val.worst_group_accuracy, average_accuracy: best.val.average_accuracy },
        test: { worst_group_accuracy: best.test.worst_group_accuracy, average_accuracy: best.test.average_accuracy, mean_accuracy: best.test.mean_accuracy },
      });
    }
    if (o.plots === false) return;
    const all = this.records();
    const initial = all.some((r) => r.epoch < 0);
    const epochTitle = initial ? 'epoch (-1: before training)' : 'epoch';
    const epochNote = 'epochs count from 0, as the checkpoint names';
    for (const split of ['train', 'val', 'test'] as const) {
      // the groups in one panel, worst-group and average in another: the worst-group line would hide the
      // group that is worst
      // error bars: the intervals metrics.jsonl holds (per group, and the bootstrap's for the summaries)
      const rows: LinePoint[] = [];
      const bar = (iv: Interval | null | undefined) => (iv ? { lo: iv[0], hi: iv[1] } : {});
      let withBars: GroupMetrics | undefined;
      for (const r of all) {
        const m = r[split];
        const key = m.ci ? ciKey(m.ci.level) : null;
        if (key) withBars = m;
        for (const g of m.groups) rows.push({ x: r.epoch, y: g.accuracy, series: `${g.id} ${g.name}`, column: 'groups', ...bar(key ? g[key] : null) });
        rows.push({ x: r.epoch, y: m.worst_group_accuracy, series: 'worst group', column: 'worst group and average', ...bar(key ? m[`worst_group_accuracy_${key}`] : null) });
        rows.push({ x: r.epoch, y: m.average_accuracy, series: 'average (train-weighted)', column: 'worst group and average', ...bar(key ? m[`average_accuracy_${key}`] : null) });
      }
      const barParts: string[] = [];
      if (withBars && withBars.ci!.method !== 'none') barParts.push(`${intervalWords(withBars)} per group`);
      if (withBars && withBars.ci!.bootstrap > 0) barParts.push(`group-stratified bootstrap ${intervalWords(withBars).replace(/ (Wilson score|Clopper-Pearson)/, '')} for worst group and average`);
      const barNote = barParts.length && rows.some((p) => p.lo !== undefined) ? `; bars: ${barParts.join(', ')}` : '';
      await writePlot(
        this.path(`group_accuracy_${split}`),
        lineChart({ title: `Per-group accuracy, ${split} split`, subtitle: epochNote + barNote, rows, xTitle: epochTitle, yTitle: 'accuracy', yDomain: [0, 1], xKind: 'integer' }),
      );
    }
    // the total and its terms in separate panels, each with its own scale: the total would hide its largest term
    const terms = recs.some((r) => Object.keys(r.losses ?? {}).length > 0);
    const lossRows: LinePoint[] = [];
    for (const r of recs) {
      lossRows.push({ x: r.epoch, y: r.loss, series: 'total', ...(terms ? { column: 'total' } : {}) });
      for (const [k, v] of Object.entries(r.losses ?? {})) lossRows.push({ x: r.epoch, y: v, series: k, column: 'terms' });
    }
    await writePlot(
      this.path('loss'),
      lineChart({ title: 'Training loss (sum of batch means)', subtitle: epochNote, rows: lossRows, xTitle: 'epoch', yTitle: 'loss', xKind: 'integer', independentY: true }),
    );
  }
}

/** What a run's config.json holds, as far as resuming needs it. */
interface RunConfig {
  command?: string;
  options?: Record<string, unknown>;
}

/** Reads a run's config.json. @throws SpurmemError naming the file when it is not valid JSON */
function readRunConfig(cfgPath: string): RunConfig {
  try {
    return JSON.parse(readFileSync(cfgPath, 'utf8')) as RunConfig;
  } catch {
    throw new SpurmemError(`${cfgPath}: not valid JSON; remove the folder or pass --force`);
  }
}

/**
 * For `--resume --out DIR`: the options the run in DIR was started with (its config.json), overridden by
 * the ones given now, so that a run continues with `--resume --out DIR` alone. `input` unchanged when
 * not resuming, or DIR holds no run of `command`.
 */
export function withRunOptions<T extends { resume?: boolean; out?: string }>(input: T, command: string): T {
  if (!input.resume || !input.out) return input;
  const cfgPath = join(resolve(input.out), 'config.json');
  if (!existsSync(cfgPath)) return input;
  // an unreadable config.json is left to RunDir.prepare, which names it
  let old: RunConfig;
  try {
    old = readRunConfig(cfgPath);
  } catch {
    return input;
  }
  if (old.command !== command || !old.options) return input;
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const { out: _out, resume: _resume, force: _force, ...recorded } = old.options;
  // finetune-prune records its base as a run folder and the checkpoint it resolved to: one is the base
  if (recorded.run !== undefined) delete recorded.checkpoint;
  if ('run' in given || 'checkpoint' in given) {
    delete recorded.run;
    delete recorded.checkpoint;
  }
  return { ...recorded, ...given } as T;
}

/** The record with the highest validation worst-group accuracy (the earlier epoch on ties). */
export function bestEpoch(recs: EpochRecord[]): EpochRecord | undefined {
  let best: EpochRecord | undefined;
  for (const r of recs) {
    if (r.epoch < 0) continue;
    const w = r.val.worst_group_accuracy ?? -1;
    if (!best || w > (best.val.worst_group_accuracy ?? -1)) best = r;
  }
  return best;
}
