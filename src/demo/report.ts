/**
 * The demo's report: report.md, report.html (the Markdown rendered by marked) and report.json.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, relative } from 'node:path';
import { marked } from 'marked';
import { minorityGroups, pooledAccuracy, type GroupMetrics } from '../metrics/groups.js';
import type { StudyResult } from '../neurons/study.js';
import type { TrainSummary } from '../train/erm.js';
import type { FinetuneSummary } from '../train/finetune-prune.js';
import type { EpochRecord } from '../train/run-dir.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { versions } from '../train/run-dir.js';

export interface DemoReportInput {
  out: string;
  /** `--quick`: the report is marked as a smoke test whose numbers are not to be read. */
  quick?: boolean;
  arch: string;
  plan: { scale: number; size: number; resolution: number; epochs: number; batchSize: number; repeats: number; finetuneEpochs: number };
  erm: TrainSummary;
  ermDir: string;
  studies: { title: string; result: StudyResult }[];
  ft: FinetuneSummary;
  ftDir: string;
  dataDir: string;
  commands: { step: string; command: string }[];
  timings: Record<string, number>;
  groupNames: string[];
  trainCounts: number[];
}

/** What report.json holds. */
export interface DemoReport {
  report: string;
  html: string;
  json: string;
  groups: { id: number; name: string; minority: boolean; train_count: number }[];
  erm: { epoch: number; train: GroupMetrics; val: GroupMetrics; test: GroupMetrics; gap_points: number | null };
  /**
   * Per study and block: group accuracies before and after (mean over repeats); minority/majority change
   * = accuracy before - after in points (positive: accuracy lost), pooled over the groups' samples, as
   * sweep.csv's `change`.
   */
  studies: { title: string; folder: string; setting: StudyResult['setting']; blocks: { source_group: number | null; channels: string[]; before: (number | null)[]; after: (number | null)[]; std: (number | null)[]; minority_change_points: number | null; majority_change_points: number | null; minority_samples: number; majority_samples: number }[] }[];
  finetune: { epoch: number; start_test: GroupMetrics; selected_test: GroupMetrics };
  plots: string[];
  commands: { step: string; command: string }[];
  timings: Record<string, number>;
  /** Whether this is a `--quick` smoke test (its numbers are not results). */
  smoke_test: boolean;
}

/** The smoke-test notice of a `--quick` report. */
export const SMOKE_TEST_NOTICE =
  'Smoke test (--quick): a tiny dataset, few epochs and repeats. It shows that every step runs; its numbers are not results and are not to be read.';

/**
 * Fewest images a net change must amount to before the report calls a pattern: with fewer, even if every
 * changed image went the same way, a two-sided sign test could not reach 5 % (2 x 0.5^6 = 0.03).
 */
export const MIN_CHANGE_IMAGES = 6;

/** Groups with fewer images than this are marked in the report's tables: each image is more than 5 points. */
export const SMALL_GROUP = 20;

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);
const pts = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`);

/** Accuracy before minus the mean accuracy after, in points, pooled over the samples of `ids`. */
function pooledChange(before: GroupMetrics, repeats: GroupMetrics[], ids: number[]): number | null {
  const b = pooledAccuracy(before, ids);
  const after = repeats.map((m) => pooledAccuracy(m, ids)).filter((x): x is number => x !== null);
  if (b === null || after.length === 0) return null;
  return 100 * (b - after.reduce((x, y) => x + y, 0) / after.length);
}

/** Samples of the split in the groups `ids`. */
function samplesOf(m: GroupMetrics, ids: number[]): number {
  return m.groups.filter((g) => ids.includes(g.id)).reduce((n, g) => n + g.count, 0);
}

function lastRecord(dir: string): EpochRecord {
  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as EpochRecord;
}

/** Writes report.md, report.html and report.json into `o.out`; returns their paths and content. */
export async function writeDemoReport(o: DemoReportInput): Promise<DemoReport> {
  const minority = minorityGroups(o.trainCounts);
  const majority = o.groupNames.map((_, i) => i).filter((i) => !minority.includes(i));
  const rel = (p: string) => relative(o.out, p);
  const last = lastRecord(o.ermDir);
  const gap = last.test.worst_group_accuracy !== null && last.test.average_accuracy !== null ? 100 * (last.test.average_accuracy - last.test.worst_group_accuracy) : null;
  const plots: string[] = [];
  const md: string[] = [];
  md.push('# spurmem demo: spurious memorization on Fashion-Waterbirds', '');
  if (o.quick) md.push(`> **${SMOKE_TEST_NOTICE}**`, '');
  md.push(
    `A ${o.arch} trained by ERM on Fashion-Waterbirds (Fashion-MNIST items on land or water backgrounds, with ` +
      `Waterbirds' group proportions), then the paper's two experiments on it: changing the critical neurons (Part I) ` +
      `and finetuning with a pruned sub-network (Part II). Every number below was measured in this run. ` +
      `Epochs are numbered from 0, as the checkpoint files are (epoch 0 is the first epoch, \`epoch_0_checkpoints.pth.tar\`). ` +
      `A change is called only when it amounts to at least ${MIN_CHANGE_IMAGES} images; groups of fewer than ${SMALL_GROUP} images are marked in the tables.`,
    '',
  );
  md.push(`Machine: ${availableParallelism()} CPU core(s) (${cpus()[0]?.model ?? 'unknown'}); spurmem ${versions().spurmem}, libtorch ${versions().libtorch}. ` +
    `Wall time: ${Object.entries(o.timings).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}.`, '');

  // ---- findings
  md.push(o.quick ? '## What it shows (smoke test: not to be read)' : '## What it shows', '');
  const trainMin = minority.map((g) => `${o.groupNames[g]} ${pct(last.train.groups[g].accuracy)}`).join(', ');
  md.push(
    `- **Spurious reliance.** ERM test worst-group accuracy is ${pct(last.test.worst_group_accuracy)} against an average ` +
      `accuracy of ${pct(last.test.average_accuracy)}: ${gap === null ? 'n/a' : gap.toFixed(1)} points lower.`,
  );
  md.push(`- **Memorization.** Training accuracy on the minority groups: ${trainMin} (majority: ${majority.map((g) => `${o.groupNames[g]} ${pct(last.train.groups[g].accuracy)}`).join(', ')}); on the test split the minority groups reach ${minority.map((g) => pct(last.test.groups[g].accuracy)).join(' and ')}.`);
  const studySummaries: DemoReport['studies'] = [];
  for (const s of o.studies) {
    const blocks = s.result.blocks.filter((b) => b.status !== 'skipped').map((b) => ({
      source_group: b.source_group,
      channels: b.channels.map((c) => `${c.name}[${c.index}]`),
      before: b.groups.map((g) => g.unmodified),
      after: b.groups.map((g) => g.mean),
      std: b.groups.map((g) => g.std),
      minority_change_points: pooledChange(s.result.unmodified, b.repeats, minority),
      majority_change_points: pooledChange(s.result.unmodified, b.repeats, majority),
      minority_samples: samplesOf(s.result.unmodified, minority),
      majority_samples: samplesOf(s.result.unmodified, majority),
    }));
    studySummaries.push({ title: s.title, folder: rel(s.result.out), setting: s.result.setting, blocks });
    const lines = blocks.map(
      (b) =>
        `${b.source_group !== null ? `gradients of group ${b.source_group}: ` : ''}minority groups ${drop(b.minority_change_points, b.minority_samples)}, ` +
        `majority groups ${drop(b.majority_change_points, b.majority_samples)} (${verdict(b.minority_change_points, b.majority_change_points, { minority: b.minority_samples, majority: b.majority_samples })})`,
    );
    md.push(`- **Critical neurons, ${s.title}** (training split; accuracy of all minority / majority samples): ${lines.join('; ')}.`);
  }
  md.push(
    `- **Finetune-prune.** Test worst-group accuracy ${pct(o.ft.start.test.worst_group_accuracy)} for the ERM model, ` +
      `${pct(o.ft.selected.test.worst_group_accuracy)} after finetuning (epoch ${o.ft.selected.epoch}, selected by ${o.ft.selected.criterion}); ` +
      `average accuracy ${pct(o.ft.start.test.average_accuracy)} -> ${pct(o.ft.selected.test.average_accuracy)}.`,
    '',
  );

  // ---- data
  md.push('## Data', '', `Built by \`spurmem data make-demo\` (scale ${o.plan.scale}, ${o.plan.size} px) in \`${rel(o.dataDir)}\`. Minority groups (the smaller group of each class in the training split): ${minority.map((g) => `${g} ${o.groupNames[g]}`).join(', ')}.`, '');
  md.push('| group | name | train | val | test |', '|---|---|---:|---:|---:|');
  for (let g = 0; g < o.groupNames.length; g++) {
    md.push(`| ${g} | ${o.groupNames[g]}${minority.includes(g) ? ' (minority)' : ''} | ${last.train.groups[g].count} | ${last.val.groups[g].count} | ${last.test.groups[g].count} |`);
  }
  md.push('');

  // ---- ERM
  md.push('## 1. ERM', '', `${o.arch}, ${o.plan.resolution} px, ${o.plan.epochs} epochs, Adam lr 1e-3 with a cosine schedule, batch ${o.plan.batchSize}, no augmentation, linear head (logits). Accuracy after the last epoch (${last.epoch}):`, '');
  md.push(metricsTable([['train', last.train], ['val', last.val], ['test', last.test]], o.groupNames, minority));
  for (const [file, caption] of [['group_accuracy_train.png', 'Per-group accuracy over epochs, training split'], ['group_accuracy_test.png', 'Per-group accuracy over epochs, test split'], ['loss.png', 'Training loss']]) {
    const p = join(o.ermDir, file);
    plots.push(p);
    md.push(`![${caption}](${rel(p)})`, '');
  }

  // ---- studies
  md.push('## 2. Critical neurons', '', 'The ERM model of the last epoch, evaluated on the training split before and after the change; the weights are restored between repeats.', '');
  for (const s of o.studies) {
    md.push(`### ${s.title}`, '', `Results: \`${rel(s.result.out)}\` (the original-compatible \`${s.result.file.split('/').pop()}\`, result.json, result.csv).`, '');
    for (let bi = 0; bi < s.result.blocks.length; bi++) {
      const b = s.result.blocks[bi];
      if (b.source_group !== null) md.push(`Gradients from group ${b.source_group} (${o.groupNames[b.source_group]}):`, '');
      if (b.status === 'skipped') {
        md.push(`Skipped, nothing modified: ${b.reason}.`, '');
        continue;
      }
      md.push(`Channels: ${b.channels.map((c) => `\`${c.name}[${c.index}]\``).join(', ')}`, '');
      md.push('| group | n | before | after | std | change = before - after (points; positive: lost) |', '|---|---:|---:|---:|---:|---:|');
      for (const g of b.groups) {
        md.push(`| ${groupCell(g.id, g.name, minority, g.count)} | ${g.count} | ${pct(g.unmodified)} | ${pct(g.mean)} | ${g.std === null ? 'n/a' : (100 * g.std).toFixed(1)} | ${pts(g.change === null ? null : 100 * g.change)} |`);
      }
      md.push(`| worst-group | | ${pct(b.worst_group_accuracy.unmodified)} | ${pct(b.worst_group_accuracy.mean)} | | ${pts(b.worst_group_accuracy.change === null ? null : 100 * b.worst_group_accuracy.change)} |`);
      md.push(`| average | | ${pct(b.average_accuracy.unmodified)} | ${pct(b.average_accuracy.mean)} | | ${pts(b.average_accuracy.change === null ? null : 100 * b.average_accuracy.change)} |`, '');
      const plot = join(s.result.out, s.result.blocks.length > 1 ? `groups_before_after_block${bi}.png` : 'groups_before_after.png');
      plots.push(plot);
      md.push(`![${s.title}: per-group accuracy before and after](${rel(plot)})`, '');
    }
  }

  // ---- finetune-prune
  md.push('## 3. Finetune-prune', '', `${o.plan.finetuneEpochs} epoch(s) from the ERM model: 1% smallest-magnitude conv weights masked (refreshed each epoch), NT-Xent between the dense and the masked outputs plus 0.2 x cross-entropy, Adam lr 2e-4 (the original's settings; no augmentation, as for ERM here). Test accuracy:`, '');
  md.push(metricsTable([['ERM (start)', o.ft.start.test], [`finetuned, epoch ${o.ft.selected.epoch}`, o.ft.selected.test]], o.groupNames, minority));
  const ftPlot = join(o.ftDir, 'group_accuracy_test.png');
  plots.push(ftPlot);
  md.push(`![Finetune-prune: per-group test accuracy over epochs](${rel(ftPlot)})`, '');

  // ---- commands
  md.push('## Each step by hand', '', 'The demo only chose these options; each step kept its folder.', '');
  for (const c of o.commands) md.push(`- ${c.step}:`, '', '  ```sh', `  ${c.command}`, '  ```', '');

  const text = md.join('\n') + '\n';
  const report = join(o.out, 'report.md');
  const html = join(o.out, 'report.html');
  const json = join(o.out, 'report.json');
  writeFileAtomic(report, text);
  const body = await marked.parse(text);
  writeFileAtomic(
    html,
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>spurmem demo report</title>\n<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem}td:not(:first-child){text-align:right}img{max-width:100%}code,pre{background:#f4f4f4}</style></head><body>\n${body}</body></html>\n`,
  );
  const result: DemoReport = {
    report,
    html,
    json,
    groups: o.groupNames.map((name, id) => ({ id, name, minority: minority.includes(id), train_count: o.trainCounts[id] })),
    erm: { epoch: last.epoch, train: last.train, val: last.val, test: last.test, gap_points: gap },
    studies: studySummaries,
    finetune: { epoch: o.ft.selected.epoch, start_test: o.ft.start.test, selected_test: o.ft.selected.test },
    plots,
    commands: o.commands,
    timings: o.timings,
    smoke_test: Boolean(o.quick),
  };
  writeJsonAtomic(json, result);
  return result;
}

/** "lose 5.7 points" / "gain 1.2 points" / "no change" for a change = before - after in points. */
export function drop(x: number | null, samples?: number): string {
  if (x === null) return 'n/a';
  if (Math.abs(x) < 0.05) return 'no change';
  const images = samples === undefined ? '' : ` (${fmtImages((Math.abs(x) / 100) * samples)} of ${samples} images)`;
  return `${x > 0 ? 'lose' : 'gain'} ${Math.abs(x).toFixed(1)} points${images}`;
}

const fmtImages = (n: number) => (Math.abs(n - Math.round(n)) < 0.05 ? String(Math.round(n)) : n.toFixed(1));

/**
 * One phrase comparing the minority and majority changes (before - after, in points, over `samples`
 * images each). Nothing is called when the minority change is a net change of fewer than
 * {@link MIN_CHANGE_IMAGES} images: it is "too few to tell", whatever the majority change is.
 */
export function verdict(minority: number | null, majority: number | null, samples?: { minority: number; majority: number }): string {
  if (minority === null || majority === null) return 'not measured';
  if (Math.abs(minority) < 0.5 && Math.abs(majority) < 0.5) return 'no measurable change';
  if (samples) {
    const minImages = Math.abs((minority / 100) * samples.minority);
    const majImages = Math.abs((majority / 100) * samples.majority);
    if (minImages < MIN_CHANGE_IMAGES && majImages < MIN_CHANGE_IMAGES) return `each under ${MIN_CHANGE_IMAGES} images: too few to tell`;
    // the comparison rests on the minority change: with too few images it cannot be told either way
    if (minImages < MIN_CHANGE_IMAGES) return `the minority change is under ${MIN_CHANGE_IMAGES} images: too few to tell`;
  }
  if (minority > majority + 1) return 'the minority groups lose more: the paper\'s pattern';
  if (majority > minority + 1) return 'the majority groups lose more';
  return 'both change about equally';
}

/** A study table's group cell: id, name, "(minority)", and a warning when the group has too few images to read. */
function groupCell(id: number, name: string, minority: number[], count: number): string {
  const small = count < SMALL_GROUP ? ' — too few images to read' : '';
  return `${id} ${name}${minority.includes(id) ? ' (minority)' : ''}${small}`;
}

function metricsTable(cols: [string, GroupMetrics][], names: string[], minority: number[]): string {
  const rows = [`| group | ${cols.map((c) => c[0]).join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`];
  let small = false;
  for (let g = 0; g < names.length; g++) {
    const cell = (m: GroupMetrics) => {
      const n = m.groups[g].count;
      if (n >= SMALL_GROUP) return pct(m.groups[g].accuracy);
      small = true;
      return `${pct(m.groups[g].accuracy)} (n = ${n})`;
    };
    rows.push(`| ${g} ${names[g]}${minority.includes(g) ? ' (minority)' : ''} | ${cols.map((c) => cell(c[1])).join(' | ')} |`);
  }
  rows.push(`| **worst-group** | ${cols.map((c) => pct(c[1].worst_group_accuracy)).join(' | ')} |`);
  rows.push(`| **average** (train-weighted) | ${cols.map((c) => pct(c[1].average_accuracy)).join(' | ')} |`);
  rows.push(`| mean of groups | ${cols.map((c) => pct(c[1].mean_accuracy)).join(' | ')} |`);
  if (small) rows.push('', `(n = ...): a group of fewer than ${SMALL_GROUP} images in that split; each image moves its accuracy by more than ${100 / SMALL_GROUP} points, too few to read.`);
  return rows.join('\n') + '\n';
}
