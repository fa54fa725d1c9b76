/**
 * `spurmem eval`: per-group accuracies of a checkpoint on one split, computed as the original computes
 * them (reference §7): one inference pass with the eval transform, accuracy = argmax(output) ==
 * argmax(target) per group, average weighted by the train split's group counts, plus worst-group,
 * plain-mean and overall accuracy, each with its confidence interval.
 */
import { Command } from 'commander';
import type { Arch } from '../model/index.js';
import { countsTable } from '../data/dataset.js';
import type { Split } from '../data/types.js';
import type { Head, ResizeMethod } from '../options/enums.js';
import type { GroupMetrics, LabelOrder } from '../metrics/groups.js';
import { ciKey, type Aggregate, type CiMethod, type Interval } from '../metrics/intervals.js';
import type { EvaluateInput } from '../eval/evaluate.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { QUIET_HELP } from './common.js';
import type { DatasetFlags } from './dataset-options.js';
import { progressBar } from '../util/progress.js';

const fmt = (v: number | null) => (v === null ? 'no samples' : v.toFixed(4));
const fmtCi = (v: Interval | null | undefined) => (v ? `[${v[0].toFixed(4)}, ${v[1].toFixed(4)}]` : '');

/** "95%" for a level of 0.95. */
const percent = (level: number) => `${Number((level * 100).toFixed(10))}%`;

/**
 * The text table of `spurmem eval`: group, name, count, accuracy and (with intervals) the interval
 * column, then the summaries (each followed by its bootstrap interval, when there is one) and a line
 * saying how the intervals were made.
 */
export function evalTable(m: GroupMetrics): string {
  const key = m.ci ? ciKey(m.ci.level) : null;
  const groupCi = key !== null && m.ci!.method !== 'none';
  const aggCi = (name: Aggregate) => {
    const v = key !== null ? m[`${name}_${key}`] : undefined;
    return v ? `  ${fmtCi(v)}` : '';
  };
  const nameW = Math.max(4, ...m.groups.map((g) => g.name.length));
  const countW = Math.max(5, ...m.groups.map((g) => String(g.count).length));
  const accW = Math.max(8, ...m.groups.map((g) => fmt(g.accuracy).length));
  const head = `${'group'.padEnd(5)}  ${'name'.padEnd(nameW)}  ${'count'.padStart(countW)}  accuracy`;
  const lines = [groupCi ? `${head.padEnd(head.length + accW - 8)}  ${percent(m.ci!.level)} interval` : head];
  for (const g of m.groups) {
    const row = `${String(g.id).padEnd(5)}  ${g.name.padEnd(nameW)}  ${String(g.count).padStart(countW)}  ${fmt(g.accuracy)}`;
    const ci = groupCi ? fmtCi(g[key!]) : '';
    lines.push(ci ? `${row.padEnd(head.length + accW - 8)}  ${ci}` : row);
  }
  lines.push(`worst-group accuracy  ${fmt(m.worst_group_accuracy)}${aggCi('worst_group_accuracy')}`);
  lines.push(`average accuracy      ${fmt(m.average_accuracy)}${aggCi('average_accuracy')}  (weighted by the train split's group counts)`);
  lines.push(`mean accuracy         ${fmt(m.mean_accuracy)}${aggCi('mean_accuracy')}  (plain mean over groups)`);
  if (m.overall_accuracy !== undefined) lines.push(`overall accuracy      ${fmt(m.overall_accuracy)}${aggCi('overall_accuracy')}  (correct / images of the split)`);
  if (m.ci && (groupCi || m.ci.bootstrap > 0)) {
    const parts = [];
    if (groupCi) parts.push(`groups: ${m.ci.method === 'wilson' ? 'Wilson score' : 'Clopper-Pearson'}`);
    if (m.ci.bootstrap > 0) parts.push(`summaries: group-stratified bootstrap, ${m.ci.bootstrap} draws`);
    lines.push(`${percent(m.ci.level)} intervals (${parts.join('; ')})`);
  }
  if (m.skipped !== undefined) lines.push(`skipped images        ${m.skipped}`);
  for (const f of m.skipped_files ?? []) lines.push(`  skipped ${f}`);
  return lines.join('\n');
}

interface EvalFlags extends DatasetFlags {
  checkpoint: string;
  arch?: Arch;
  split: Split;
  resolution?: number;
  resize: ResizeMethod;
  batchSize: number;
  device: string;
  threads?: number;
  labelOrder?: LabelOrder;
  head: Head | 'auto';
  ci: CiMethod;
  ciLevel: number;
  bootstrap: number;
  json?: boolean;
  quiet?: boolean;
  perSample?: boolean;
}

/** The flags of `spurmem eval` in --help order (the option table declares each; --quiet and --json follow). */
const EVAL_FLAGS: readonly OptionKey[] = [
  'checkpoint', 'arch', 'dataset', 'root', 'target', 'attribute', 'skipBadImages', 'split', 'resolution', 'resize', 'batchSize', 'device', 'threads', 'decodeThreads',
  'vitLnEps', 'labelOrder', 'head', 'perSample', 'ci', 'ciLevel', 'bootstrap',
];

export function evalCommand(): Command {
  const cmd = new Command('eval').description('per-group accuracy, worst-group and average accuracy of a checkpoint on one split');
  addOptions(cmd, 'eval', EVAL_FLAGS);
  return cmd
    .option('--quiet', QUIET_HELP)
    .option(
      '--json',
      'print {"split", "groups": [{"id", "name", "count", "accuracy", "ci95"}], "worst_group_accuracy", "average_accuracy", "mean_accuracy", "overall_accuracy", ' +
        '"<each of them>_ci95", "ci": {"method", "level", "bootstrap"}} (the key says the level: ci90 at 0.9; and "skipped" with --skip-bad-images, "resize": "sharp" with --resize sharp)',
    )
    .action(async (o: EvalFlags) => {
      const { json, quiet, ...opts } = o;
      const bar = progressBar(`eval ${o.split}`);
      const { evaluateDetailed } = await import('../eval/evaluate.js');
      const r = await evaluateDetailed(opts as EvaluateInput, {
        onDataset: (ds) => {
          if (!quiet) (json ? process.stderr : process.stdout).write(countsTable(ds) + '\n');
          for (const w of ds.warnings) process.stderr.write(`warning: ${w}\n`);
        },
        onProgress: bar.update,
        oneOff: true,
      }).finally(() => bar.stop());
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const n of r.notes) process.stderr.write(`note: ${n}\n`);
      if (r.samplesFile) process.stderr.write(`per-sample results: ${r.samplesFile}\n`);
      if (json) {
        process.stdout.write(JSON.stringify(r.result) + '\n');
        return;
      }
      const head = r.head;
      const n = r.metrics.groups.reduce((a, g) => a + g.count, 0);
      process.stdout.write(
        `${o.split} split: ${n} images, ${r.options.arch} (${head} head) from ${o.checkpoint}, ${r.options.labelOrder} label order` +
          `${r.labelOrderAssumed ? ` (${r.labelOrderReason}; --label-order sets it)` : ''}, R = ${r.options.resolution}` +
          `${r.options.resize === 'sharp' ? ', resized with sharp (approximate)' : ''}, ${r.seconds.toFixed(1)} s\n` +
          evalTable(r.metrics) + '\n',
      );
    });
}
