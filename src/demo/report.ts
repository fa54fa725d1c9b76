/**
 * The demo's report: report.md, report.html (the Markdown rendered by marked) and report.json.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, relative } from 'node:path';
import { marked } from 'marked';
import { minorityGroups, pooledAccuracy, type GroupMetrics } from '../metrics/groups.js';
import type { Flips, PooledRow, StudyResult } from '../neurons/study.js';
import { writeChangeCurves, type ChangePoint } from '../report/plots.js';
import type { Setting } from '../sweep/index.js';
import { pairedChangeInterval } from '../metrics/paired.js';
import type { FinetuneSummary } from '../train/finetune-prune.js';
import { bestEpoch, RunDir } from '../train/run-dir.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { versions } from '../train/run-dir.js';

export interface DemoReportInput {
  out: string;
  /** `--quick`: the report is marked as a smoke test whose numbers are not to be read. */
  quick?: boolean;
  arch: string;
  plan: { scale: number; size: number; resolution: number; epochs: number; batchSize: number; repeats: number; finetuneEpochs: number; topK: number[]; std: number; evalBatchSize: number };
  ermDir: string;
  /** The study sweep's folder. */
  sweepDir: string;
  /** The sweep's finished settings, in the sweep's order. */
  studies: { title: string; setting: Setting; result: StudyResult }[];
  /** Settings of the sweep that failed or are missing (their folders say why). */
  failedSettings?: number;
  ft: FinetuneSummary;
  ftDir: string;
  /** The GroupDRO run's folder (trained like ERM with `--algorithm groupdro`). */
  droDir: string;
  /** DFR's test metrics (the ERM model of the last epoch with its last layer retrained) and its folder. */
  dfrTest: GroupMetrics;
  dfrDir: string;
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
   * Per setting of the study sweep and block: group accuracies before and after (mean over repeats);
   * minority/majority change = accuracy before - after in points (positive: accuracy lost), pooled over the
   * groups' samples, as sweep.csv's `change`, with its 95% interval (see {@link DemoPaired}); the pooled
   * rows' paired test (flips in images, exact McNemar p-value, Holm-adjusted over the setting's groups; for
   * a random change the flips of each image's outcome in most repeats); the images flipped and their
   * contact sheet.
   */
  studies: {
    title: string;
    folder: string;
    ranking: string;
    mode: string;
    top_k: number;
    setting: StudyResult['setting'];
    blocks: ({
      source_group: number | null;
      channels: string[];
      before: (number | null)[];
      after: (number | null)[];
      std: (number | null)[];
      minority_change_points: number | null;
      majority_change_points: number | null;
      minority_samples: number;
      majority_samples: number;
      flipped_images: number;
      /** The contact sheet of the flipped images, or null when none flipped. */
      flipped_sheet: string | null;
    } & DemoPaired)[];
  }[];
  /** The contact sheet shown: of the block with the largest minority change that flipped any image (null: none flipped). */
  contact_sheet: { study: string; source_group: number | null; file: string } | null;
  /** The paper-style figure: minority and majority change against top-k, one panel per ranking and mode (null when no setting finished). */
  figure: { svg: string; png: string } | null;
  /** The study sweep's folder (sweep.csv, sweep.json, settings/<setting>/). */
  sweep: string;
  finetune: { epoch: number; start_test: GroupMetrics; selected_test: GroupMetrics };
  /**
   * Part II: test worst-group and average accuracy (with their 95% bootstrap intervals where measured) per
   * method: ERM (its last epoch, the model studied and the start of finetune-prune and DFR; and its epoch
   * of best validation worst-group accuracy), GroupDRO and finetune-prune (each at its epoch of best
   * validation worst-group accuracy) and DFR.
   */
  part2: {
    method: string;
    epoch: number | null;
    worst_group_accuracy: number | null;
    worst_group_accuracy_ci95: [number, number] | null;
    average_accuracy: number | null;
    average_accuracy_ci95: [number, number] | null;
    folder: string;
  }[];
  plots: string[];
  commands: { step: string; command: string }[];
  timings: Record<string, number>;
  /** Whether this is a `--quick` smoke test (its numbers are not results). */
  smoke_test: boolean;
}

/** The paired test of a block's pooled minority and majority rows, as the report states it. */
export interface DemoPaired {
  minority_flips: Flips | null;
  majority_flips: Flips | null;
  minority_p_value: number | null;
  majority_p_value: number | null;
  minority_p_holm: number | null;
  majority_p_holm: number | null;
  /**
   * The 95% interval of the change, in points: for a random change the t-interval over the repeats
   * (clipped to [-100, 100]; it measures the spread of the random draws on these images, not the sampling of
   * the images, which the McNemar test answers), for a deterministic one Newcombe's paired interval of the difference of the accuracies before and after
   * (src/metrics/paired.ts); null where it is undefined (fewer than two repeats, no samples).
   */
  minority_change_ci95_points: [number, number] | null;
  majority_change_ci95_points: [number, number] | null;
  /** Which interval `*_change_ci95_points` is. */
  interval: 't_over_repeats' | 'newcombe_paired';
  /** Random changes: the repeats behind `*_flips` (each image's outcome in most of them); null for a deterministic change. */
  repeats: number | null;
}

/** The level at which the report calls a change: Holm-adjusted exact McNemar p-values below it. */
export const SIGNIFICANCE = 0.05;

/** The smoke-test notice of a `--quick` report. */
export const SMOKE_TEST_NOTICE =
  'Smoke test (--quick): a tiny dataset, few epochs and repeats. It shows that every step runs; its numbers are not results and are not to be read.';

/**
 * Fewest images a net change must amount to before an exact two-sided test of its flips can reach 5 %
 * (2 x 0.5^6 = 0.03; with 5, 0.06): the report calls changes by that test ({@link SIGNIFICANCE}, Holm),
 * so it never calls a pattern on fewer.
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

/** The 95% bootstrap interval of one of `m`'s aggregates, or null when it was not measured. */
function interval95(m: GroupMetrics, key: 'worst_group_accuracy' | 'average_accuracy'): [number, number] | null {
  const v = m[`${key}_ci95`];
  return Array.isArray(v) ? [v[0], v[1]] : null;
}

/** Writes report.md, report.html and report.json into `o.out`; returns their paths and content. */
export async function writeDemoReport(o: DemoReportInput): Promise<DemoReport> {
  const minority = minorityGroups(o.trainCounts);
  const majority = o.groupNames.map((_, i) => i).filter((i) => !minority.includes(i));
  const rel = (p: string) => relative(o.out, p);
  const ermRecords = new RunDir(o.ermDir).records();
  const last = ermRecords[ermRecords.length - 1];
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
      `A change of the critical neurons is called only when the exact McNemar test of the images it flips (right -> wrong against wrong -> right; ` +
      `for a random change, each image's outcome in most repeats) is significant at the ${100 * SIGNIFICANCE}% level after Holm's correction over the ` +
      `groups of its setting (the four groups and the pooled minority and majority groups), so never on fewer than ${MIN_CHANGE_IMAGES} images; ` +
      `counts are in images. Groups of fewer than ${SMALL_GROUP} images are marked in the tables.`,
    '',
  );
  md.push(`Machine: ${availableParallelism()} CPU core(s) (${cpus()[0]?.model ?? 'unknown'}); spurmem ${versions().spurmem}, libtorch ${versions().libtorch}. ` +
    `Wall time: ${Object.entries(o.timings).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}.`, '');

  // ---- the study sweep's blocks, with their paired intervals
  const studySummaries: DemoReport['studies'] = [];
  const skipped: string[] = [];
  for (const s of o.studies) {
    for (const b of s.result.blocks) if (b.status === 'skipped') skipped.push(`${s.title}${b.source_group !== null ? `, gradients of group ${b.source_group}` : ''}: ${b.reason}`);
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
      flipped_images: b.flipped_images ?? 0,
      flipped_sheet: b.flipped_sheet ? join(s.result.out, b.flipped_sheet) : null,
      ...demoPaired(b.minority, b.majority, b.paired_test === 'mcnemar_exact_most_repeats' ? s.result.setting.repeats : null, s.result.unmodified),
    }));
    studySummaries.push({ title: s.title, folder: rel(s.result.out), ranking: String(s.setting.ranking), mode: String(s.setting.mode), top_k: Number(s.setting.top_k), setting: s.result.setting, blocks });
  }
  const sheet = largestMinoritySheet(studySummaries);
  const figureStem = join(o.out, 'critical_neurons_change');
  const figure = studySummaries.length > 0 ? await writeChangeCurves(figureStem, curvePoints(studySummaries, minority, majority), { split: 'training', ks: o.plan.topK }) : null;
  if (figure) plots.push(figure.png);
  const ermBest = bestEpoch(ermRecords) ?? last;
  const droBest = bestEpoch(new RunDir(o.droDir).records());
  const row = (method: string, epoch: number | null, m: GroupMetrics, folder: string): DemoReport['part2'][number] => ({
    method,
    epoch,
    worst_group_accuracy: m.worst_group_accuracy,
    worst_group_accuracy_ci95: interval95(m, 'worst_group_accuracy'),
    average_accuracy: m.average_accuracy,
    average_accuracy_ci95: interval95(m, 'average_accuracy'),
    folder: rel(folder),
  });
  const baselines = [
    ...(droBest ? [{ name: 'GroupDRO', row: row('GroupDRO, best validation worst-group epoch', droBest.epoch, droBest.test, o.droDir) }] : []),
    { name: 'DFR', row: row('DFR (last layer of the last ERM epoch retrained)', null, o.dfrTest, o.dfrDir) },
  ];
  const part2: DemoReport['part2'] = [
    row('ERM, last epoch (the model studied, finetuned and retrained by DFR)', last.epoch, last.test, o.ermDir),
    row('ERM, best validation worst-group epoch', ermBest.epoch, ermBest.test, o.ermDir),
    ...baselines.map((b) => b.row),
    row('finetune-prune, best validation worst-group epoch', o.ft.selected.epoch, o.ft.selected.test, o.ftDir),
  ];

  // ---- findings
  md.push(o.quick ? '## What it shows (smoke test: not to be read)' : '## What it shows', '');
  const trainMin = minority.map((g) => `${o.groupNames[g]} ${pct(last.train.groups[g].accuracy)}`).join(', ');
  md.push(
    `- **Spurious reliance.** ERM test worst-group accuracy is ${pct(last.test.worst_group_accuracy)} against an average ` +
      `accuracy of ${pct(last.test.average_accuracy)}: ${gap === null ? 'n/a' : gap.toFixed(1)} points lower.`,
  );
  md.push(`- **Memorization.** Training accuracy on the minority groups: ${trainMin} (majority: ${majority.map((g) => `${o.groupNames[g]} ${pct(last.train.groups[g].accuracy)}`).join(', ')}); on the test split the minority groups reach ${minority.map((g) => pct(last.test.groups[g].accuracy)).join(' and ')}.`);
  md.push(...findings(studySummaries).map((l) => `- ${l}`));
  md.push(
    `- **Finetune-prune (Part II).** Test worst-group accuracy ${pct(o.ft.start.test.worst_group_accuracy)} for the ERM model, ` +
      `${pct(o.ft.selected.test.worst_group_accuracy)} after finetuning (epoch ${o.ft.selected.epoch}, selected by ${o.ft.selected.criterion}); ` +
      `average accuracy ${pct(o.ft.start.test.average_accuracy)} -> ${pct(o.ft.selected.test.average_accuracy)}. ` +
      `The baselines on the same split: ${baselines.map((b) => `${b.name} ${pct(b.row.worst_group_accuracy)} worst-group, ${pct(b.row.average_accuracy)} average`).join('; ')} (section 4).`,
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
  md.push(
    '## 2. Critical neurons',
    '',
    `The ERM model of the last epoch, evaluated on the training split before and after changing its top-k critical neurons (channels), ` +
      `the weights restored between settings and repeats: a sweep of ${o.studies.length} settings in one process (\`${rel(o.sweepDir)}\`: sweep.csv, and per setting ` +
      `\`settings/<setting>/\` with the original-compatible text file, result.json, the per-group table and before/after plot). ` +
      `Rankings \`largest\` (the channels of largest weight norm) and \`activated\` (the channels whose gradients are largest on the poorest 200 samples of one source group; one block per source group) ` +
      `x modes \`zero\` and \`random_init\` (std ${o.plan.std}, the original's value; ${o.plan.repeats} repeats) x top-k ${o.plan.topK.join(', ')}. These settings were fixed before the run.`,
    '',
    `Change = accuracy before - accuracy after, in points (positive: accuracy lost), over all the minority (majority) groups' samples. ` +
      `Its 95% interval: for \`random_init\` the t-interval of the change over the ${o.plan.repeats} repeats; for \`zero\`, which changes the same images the same way each time, ` +
      `Newcombe's hybrid score interval for a paired difference of proportions (the Wilson intervals of the accuracy before and after, combined with their correlation; ` +
      `a Wilson interval alone is one of a proportion, not of a change). The t-interval says how much the random draws move the change on these images (clipped to -100 to +100 points), ` +
      `not how it would vary with other images; whether a change is more than chance is the exact McNemar test of the images it flips ` +
      `(for \`random_init\`, of each image's outcome in most repeats), Holm-corrected over the setting's groups, and only that test calls a change: ` +
      `an interval can exclude 0 where the test, on few images, does not.`,
    '',
  );
  if (figure) md.push(`![Minority and majority change against top-k, one panel per ranking and mode](${rel(figure.png)})`, '');
  if (o.failedSettings) md.push(`${o.failedSettings} setting(s) of the sweep did not finish; their folders under \`${rel(o.sweepDir)}/settings/\` say why.`, '');
  if (skipped.length) md.push(`Skipped blocks (nothing modified): ${skipped.join('; ')}.`, '');
  md.push(...changeTable(studySummaries), '');
  md.push('### The images the change flips', '');
  if (sheet) {
    md.push(
      `${sheet.study}${sheet.source_group !== null ? `, gradients of group ${sheet.source_group}` : ''} (the setting with the largest minority change that flipped any image): ` +
        'each image framed red went from right to wrong, green from wrong to right, labelled with its group and the probability of its true class before -> after; minority groups first.',
      '',
      `![The images ${sheet.study} flips](${rel(sheet.file)})`,
      '',
    );
  } else {
    md.push('No setting flipped any image.', '');
  }

  // ---- finetune-prune
  md.push('## 3. Finetune-prune', '', `${o.plan.finetuneEpochs} epoch(s) from the ERM model: 1% smallest-magnitude conv weights masked (refreshed each epoch), NT-Xent between the dense and the masked outputs plus 0.2 x cross-entropy, Adam lr 2e-4 (the original's settings; no augmentation, as for ERM here). Test accuracy:`, '');
  md.push(metricsTable([['ERM (start)', o.ft.start.test], [`finetuned, epoch ${o.ft.selected.epoch}`, o.ft.selected.test]], o.groupNames, minority));
  const ftPlot = join(o.ftDir, 'group_accuracy_test.png');
  plots.push(ftPlot);
  md.push(`![Finetune-prune: per-group test accuracy over epochs](${rel(ftPlot)})`, '');

  // ---- Part II against the baselines
  md.push(
    '## 4. Finetune-prune against the baselines',
    '',
    `GroupDRO: the ERM run's options (${o.plan.epochs} epochs, Adam lr 1e-3, cosine schedule, batch ${o.plan.batchSize}) with the online group-DRO objective ` +
      `(group weights q updated by exponentiated gradient, step size 0.01, as group_DRO's default), \`spurmem train --algorithm groupdro\`. ` +
      `DFR: the last layer of the ERM model of the last epoch retrained by L1-regularised logistic regression on group-balanced subsets of the validation split, ` +
      `C tuned on half of it (\`spurmem dfr\`). Each trained method at its epoch of best validation worst-group accuracy, and ERM also at its last epoch. ` +
      `Test split, with 95% intervals (group-stratified bootstrap):`,
    '',
    '| method | epoch | worst-group [95% interval] | average (train-weighted) [95% interval] |',
    '|---|---:|---:|---:|',
  );
  const ci = (x: [number, number] | null) => (x ? ` [${pct(x[0])}, ${pct(x[1])}]` : '');
  for (const m of part2) md.push(`| ${m.method} | ${m.epoch ?? ''} | ${pct(m.worst_group_accuracy)}${ci(m.worst_group_accuracy_ci95)} | ${pct(m.average_accuracy)}${ci(m.average_accuracy_ci95)} |`);
  md.push('');
  const droPlot = join(o.droDir, 'group_accuracy_test.png');
  if (existsSync(droPlot)) {
    plots.push(droPlot);
    md.push(`![GroupDRO: per-group test accuracy over epochs](${rel(droPlot)})`, '');
  }

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
    contact_sheet: sheet,
    figure,
    sweep: o.sweepDir,
    finetune: { epoch: o.ft.selected.epoch, start_test: o.ft.start.test, selected_test: o.ft.selected.test },
    part2,
    plots,
    commands: o.commands,
    timings: o.timings,
    smoke_test: Boolean(o.quick),
  };
  writeJsonAtomic(json, result);
  return result;
}

/** A pooled row's paired test, as {@link drop} and {@link verdict} read it. */
export interface ChangeTest {
  flips: Flips | null;
  p_holm: number | null;
  /** A random change: the repeats behind the flips (each image's outcome in most of them). */
  repeats?: number | null;
}

/**
 * The paired fields of a block's minority and majority rows (all null for a block without them), with the
 * change's 95% interval in points: the t-interval over the repeats for a random change (`repeats` set),
 * else Newcombe's paired interval from the flips and the images right before (`unmodified`).
 */
function demoPaired(min: PooledRow | undefined, maj: PooledRow | undefined, repeats: number | null, unmodified: GroupMetrics): DemoPaired {
  const ci = (r: PooledRow | undefined): [number, number] | null => {
    if (!r) return null;
    // a change lies in [-100, 100] points; a t-interval of few repeats can reach beyond: it stops there
    const clip = (v: number) => Math.min(100, Math.max(-100, 100 * v));
    if (repeats !== null) return r.change_ci95 ? [clip(r.change_ci95[0]), clip(r.change_ci95[1])] : null;
    if (!r.flips) return null;
    const gs = unmodified.groups.filter((g) => r.groups.includes(g.id));
    const iv = pairedChangeInterval({ n: gs.reduce((a, g) => a + g.count, 0), correctBefore: gs.reduce((a, g) => a + g.correct, 0), toWrong: r.flips.to_wrong, toRight: r.flips.to_right });
    return iv ? [100 * iv[0], 100 * iv[1]] : null;
  };
  return {
    minority_flips: min?.flips ?? null,
    majority_flips: maj?.flips ?? null,
    minority_p_value: min?.p_value ?? null,
    majority_p_value: maj?.p_value ?? null,
    minority_p_holm: min?.p_holm ?? null,
    majority_p_holm: maj?.p_holm ?? null,
    minority_change_ci95_points: ci(min),
    majority_change_ci95_points: ci(maj),
    interval: repeats !== null ? 't_over_repeats' : 'newcombe_paired',
    repeats,
  };
}

/** The minority or majority test of a report block. */
export function testOf(b: DemoPaired, which: 'minority' | 'majority'): ChangeTest {
  return { flips: b[`${which}_flips`], p_holm: b[`${which}_p_holm`], repeats: b.repeats };
}

const pFmt = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3));

/** Whether a test calls its change: the Holm-adjusted p-value below {@link SIGNIFICANCE}. */
export function significant(t: ChangeTest | undefined): boolean {
  return t?.p_holm !== null && t?.p_holm !== undefined && t.p_holm < SIGNIFICANCE;
}

/**
 * "lose 5.7 points" / "gain 1.2 points" / "no change" for a change = before - after in points. With its
 * paired test: "lose 5.7 points (9 right -> wrong and 1 wrong -> right of 140 images, Holm p = 0.012)" when
 * the test calls it, else "show no measurable change (-0.7 points: ...)".
 */
export function drop(x: number | null, samples?: number, test?: ChangeTest): string {
  if (x === null) return 'n/a';
  if (test) {
    if (!test.flips || test.p_holm === null) return 'n/a';
    const of = samples === undefined ? '' : ` of ${samples} images`;
    const most = test.repeats ? `, in most of ${test.repeats} repeats` : '';
    // no semicolon inside: the report separates blocks with them
    const counts = `${test.flips.to_wrong} right -> wrong and ${test.flips.to_right} wrong -> right${of}${most}, Holm p = ${pFmt(test.p_holm)}`;
    if (!significant(test)) return `show no measurable change (${x >= 0 ? '+' : ''}${x.toFixed(1)} points: ${counts})`;
    return `${x > 0 ? 'lose' : 'gain'} ${Math.abs(x).toFixed(1)} points (${counts})`;
  }
  if (Math.abs(x) < 0.05) return 'no change';
  const images = samples === undefined ? '' : ` (${fmtImages((Math.abs(x) / 100) * samples)} of ${samples} images)`;
  return `${x > 0 ? 'lose' : 'gain'} ${Math.abs(x).toFixed(1)} points${images}`;
}

const fmtImages = (n: number) => (Math.abs(n - Math.round(n)) < 0.05 ? String(Math.round(n)) : n.toFixed(1));

/**
 * One phrase comparing the minority and majority changes (before - after, in points, over `samples`
 * images each). With their paired tests, a change counts only when its test calls it (Holm-adjusted
 * p below {@link SIGNIFICANCE}): neither called is "no measurable change". Without tests (the earlier
 * rule), nothing is called when the minority change is a net change of fewer than
 * {@link MIN_CHANGE_IMAGES} images: it is "too few to tell", whatever the majority change is.
 */
export function verdict(
  minority: number | null,
  majority: number | null,
  samples?: { minority: number; majority: number },
  tests?: { minority: ChangeTest; majority: ChangeTest },
): string {
  if (minority === null || majority === null) return 'not measured';
  if (tests) {
    const minSig = significant(tests.minority);
    const majSig = significant(tests.majority);
    if (!minSig && !majSig) return `no measurable change at the ${100 * SIGNIFICANCE}% level, Holm-corrected`;
    if (minSig && minority > 0 && (!majSig || minority > majority + 1)) return "the minority groups lose more: the paper's pattern";
    if (majSig && majority > 0 && (!minSig || majority > minority + 1)) return 'the majority groups lose more';
    if (minSig && majSig) return 'both change about equally';
    return `only the ${minSig ? 'minority' : 'majority'} groups change measurably: they gain`;
  }
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

/** The block with the largest minority change (points) among those with a contact sheet, or null. */
function largestMinoritySheet(studies: DemoReport['studies']): DemoReport['contact_sheet'] {
  let best: DemoReport['contact_sheet'] = null;
  let bestChange = -Infinity;
  for (const s of studies) {
    for (const b of s.blocks) {
      if (!b.flipped_sheet) continue;
      const c = b.minority_change_points ?? -Infinity;
      if (best === null || c > bestChange) {
        best = { study: s.title, source_group: b.source_group, file: b.flipped_sheet };
        bestChange = c;
      }
    }
  }
  return best;
}


type SummaryBlock = DemoReport['studies'][number]['blocks'][number];

/** The panel of a block in the figure and the findings: ranking and mode, and an activated block's source group. */
function panelOf(s: DemoReport['studies'][number], b: SummaryBlock): { ranking: string; mode: string; label: string } {
  const ranking = b.source_group !== null ? `${s.ranking}, gradients of group ${b.source_group}` : s.ranking;
  return { ranking, mode: s.mode, label: `${ranking}, ${s.mode}` };
}

/** The figure's points: minority and majority change (points) with their 95% intervals, per panel and top-k. */
function curvePoints(studies: DemoReport['studies'], minority: number[], majority: number[]): ChangePoint[] {
  const out: ChangePoint[] = [];
  for (const s of studies) {
    for (const b of s.blocks) {
      const p = panelOf(s, b);
      for (const [which, ids, y, ci] of [
        ['minority', minority, b.minority_change_points, b.minority_change_ci95_points],
        ['majority', majority, b.majority_change_points, b.majority_change_ci95_points],
      ] as const) {
        if (y === null) continue;
        out.push({ k: s.top_k, change: y, ...(ci ? { lo: ci[0], hi: ci[1] } : {}), series: `${which} groups (${ids.join(', ')})`, ranking: p.ranking, mode: p.mode });
      }
    }
  }
  return out;
}

const signedPts = (x: number | null) => (x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`);
const ciText = (ci: [number, number] | null) => (ci ? `[${signedPts(ci[0])}, ${signedPts(ci[1])}]` : '(no interval)');

/**
 * "What it shows" for the study sweep, from its tests alone: per panel the minority and majority change
 * against top-k and the top-k where each is measurable; the block with the largest minority change;
 * where the majority groups move measurably too; how many blocks show the paper's pattern.
 */
export function findings(studies: DemoReport['studies']): string[] {
  const lines: string[] = [];
  const panels = new Map<string, { k: number; b: SummaryBlock }[]>();
  const all: { title: string; b: SummaryBlock }[] = [];
  for (const s of studies) {
    for (const b of s.blocks) {
      const p = panelOf(s, b);
      if (!panels.has(p.label)) panels.set(p.label, []);
      panels.get(p.label)!.push({ k: s.top_k, b });
      all.push({ title: `${s.title}${b.source_group !== null ? `, gradients of group ${b.source_group}` : ''}`, b });
    }
  }
  if (all.length === 0) return ['**Critical neurons.** No setting of the study finished.'];
  for (const [label, pts] of panels) {
    pts.sort((x, y) => x.k - y.k);
    const at = (which: 'minority' | 'majority') => {
      const ks = pts.filter((p) => significant(testOf(p.b, which))).map((p) => p.k);
      return ks.length ? `at top-k ${ks.join(', ')}` : 'at no top-k';
    };
    lines.push(
      `**Critical neurons, ${label}** (training split; change in points by top-k ${pts.map((p) => p.k).join(', ')}): ` +
        `minority ${pts.map((p) => signedPts(p.b.minority_change_points)).join(', ')}; majority ${pts.map((p) => signedPts(p.b.majority_change_points)).join(', ')}. ` +
        `Measurable: minority ${at('minority')}, majority ${at('majority')}.`,
    );
  }
  let best = all[0];
  for (const x of all) if ((x.b.minority_change_points ?? -Infinity) > (best.b.minority_change_points ?? -Infinity)) best = x;
  const b = best.b;
  lines.push(
    `**Largest minority change: ${best.title}.** Minority groups ${drop(b.minority_change_points, b.minority_samples, testOf(b, 'minority'))}, ` +
      `majority groups ${drop(b.majority_change_points, b.majority_samples, testOf(b, 'majority'))} ` +
      `(${verdict(b.minority_change_points, b.majority_change_points, { minority: b.minority_samples, majority: b.majority_samples }, { minority: testOf(b, 'minority'), majority: testOf(b, 'majority') })}).`,
  );
  const majMoves = all.filter((x) => significant(testOf(x.b, 'majority')));
  let top = majMoves[0];
  for (const x of majMoves) if ((x.b.majority_change_points ?? -Infinity) > (top.b.majority_change_points ?? -Infinity)) top = x;
  lines.push(
    majMoves.length
      ? `**The majority groups move too:** measurably in ${majMoves.length} of ${all.length} settings and blocks (each panel above says at which top-k), ` +
          `most in ${top.title} (majority ${signedPts(top.b.majority_change_points)} points, minority ${signedPts(top.b.minority_change_points)}).`
      : `**The majority groups** show no measurable change in any of the ${all.length} settings and blocks.`,
  );
  const pattern = all.filter((x) => verdictOf(x.b) === "the minority groups lose more: the paper's pattern");
  const none = all.filter((x) => !significant(testOf(x.b, 'minority')) && !significant(testOf(x.b, 'majority')));
  lines.push(
    `**Counted over the ${all.length} settings and blocks:** the minority groups lose measurably more than the majority groups (the paper's pattern) in ${pattern.length}; ` +
      `neither changes measurably in ${none.length}; the rest show another pattern (the table below gives each).`,
  );
  return lines;
}

/** A block's verdict from its tests. */
function verdictOf(b: SummaryBlock): string {
  return verdict(b.minority_change_points, b.majority_change_points, { minority: b.minority_samples, majority: b.majority_samples }, { minority: testOf(b, 'minority'), majority: testOf(b, 'majority') });
}

/**
 * The table of every change: per setting and block the minority and majority change in points with its
 * 95% interval, the images it flips with the Holm-adjusted exact McNemar p-value, and the verdict.
 */
function changeTable(studies: DemoReport['studies']): string[] {
  const rows = [
    '| setting | gradients of | minority change (points) [95% interval] | minority images | majority change (points) [95% interval] | majority images | reading |',
    '|---|---|---:|---|---:|---|---|',
  ];
  const images = (b: SummaryBlock, which: 'minority' | 'majority') => {
    const f = b[`${which}_flips`];
    const p = b[`${which}_p_holm`];
    if (!f || p === null) return 'n/a';
    return `${f.to_wrong} right -> wrong and ${f.to_right} wrong -> right of ${b[`${which}_samples`]} images${b.repeats ? `, in most of ${b.repeats} repeats` : ''}, Holm p = ${pFmt(p)}`;
  };
  for (const s of studies) {
    for (const b of s.blocks) {
      rows.push(
        `| ${s.title} | ${b.source_group ?? ''} | ${signedPts(b.minority_change_points)} ${ciText(b.minority_change_ci95_points)} | ${images(b, 'minority')} | ` +
          `${signedPts(b.majority_change_points)} ${ciText(b.majority_change_ci95_points)} | ${images(b, 'majority')} | ${verdictOf(b)} |`,
      );
    }
  }
  return rows;
}

/** The lines `spurmem demo` prints for the study: the findings without Markdown. */
export function findingLines(r: Pick<DemoReport, 'studies'>): string[] {
  return findings(r.studies).map((l) => l.replace(/\*\*/g, ''));
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
