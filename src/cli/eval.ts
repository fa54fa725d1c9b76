/**
 * `spurmem eval`: per-group accuracies of a checkpoint on one split, computed as the original computes
 * them (reference §7): one inference pass with the eval transform, accuracy = argmax(output) ==
 * argmax(target) per group, average weighted by the train split's group counts, plus worst-group and
 * plain-mean accuracy.
 */
import { Command } from 'commander';
import type { Arch } from '../model/index.js';
import { countsTable } from '../data/dataset.js';
import type { Split } from '../data/types.js';
import type { Head, ResizeMethod } from '../options/enums.js';
import type { GroupMetrics, LabelOrder } from '../metrics/groups.js';
import { evaluateDetailed, evaluationResult, type EvaluateInput } from '../eval/evaluate.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { QUIET_HELP } from './common.js';
import type { DatasetFlags } from './dataset-options.js';
import { progressBar } from '../util/progress.js';

export { detectHead } from '../eval/evaluate.js';

/** The JSON `spurmem eval --json` prints (see evaluationResult in src/eval/evaluate.ts). */
export function evalJson(m: GroupMetrics): Record<string, unknown> {
  return { ...evaluationResult(m) };
}

const fmt = (v: number | null) => (v === null ? 'no samples' : v.toFixed(4));

/** The text table of `spurmem eval`: group, name, count, accuracy, then the summaries. */
export function evalTable(m: GroupMetrics): string {
  const nameW = Math.max(4, ...m.groups.map((g) => g.name.length));
  const countW = Math.max(5, ...m.groups.map((g) => String(g.count).length));
  const lines = [`${'group'.padEnd(5)}  ${'name'.padEnd(nameW)}  ${'count'.padStart(countW)}  accuracy`];
  for (const g of m.groups) lines.push(`${String(g.id).padEnd(5)}  ${g.name.padEnd(nameW)}  ${String(g.count).padStart(countW)}  ${fmt(g.accuracy)}`);
  lines.push(`worst-group accuracy  ${fmt(m.worst_group_accuracy)}`);
  lines.push(`average accuracy      ${fmt(m.average_accuracy)}  (weighted by the train split's group counts)`);
  lines.push(`mean accuracy         ${fmt(m.mean_accuracy)}  (plain mean over groups)`);
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
  json?: boolean;
  quiet?: boolean;
  perSample?: boolean;
}

/** The flags of `spurmem eval` in --help order (the option table declares each; --quiet and --json follow). */
const EVAL_FLAGS: readonly OptionKey[] = [
  'checkpoint', 'arch', 'dataset', 'root', 'target', 'attribute', 'skipBadImages', 'split', 'resolution', 'resize', 'batchSize', 'device', 'threads',
  'vitLnEps', 'labelOrder', 'head', 'perSample',
];

export function evalCommand(): Command {
  const cmd = new Command('eval').description('per-group accuracy, worst-group and average accuracy of a checkpoint on one split');
  addOptions(cmd, 'eval', EVAL_FLAGS);
  return cmd
    .option('--quiet', QUIET_HELP)
    .option('--json', 'print {"split", "groups": [{"id", "name", "count", "accuracy"}], "worst_group_accuracy", "average_accuracy", "mean_accuracy"} (and "skipped" with --skip-bad-images, "resize": "sharp" with --resize sharp)')
    .action(async (o: EvalFlags) => {
      const { json, quiet, ...opts } = o;
      const bar = progressBar(`eval ${o.split}`);
      const r = await evaluateDetailed(opts as EvaluateInput, {
        onDataset: (ds) => {
          if (!quiet) (json ? process.stderr : process.stdout).write(countsTable(ds) + '\n');
          for (const w of ds.warnings) process.stderr.write(`warning: ${w}\n`);
        },
        onProgress: bar.update,
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
