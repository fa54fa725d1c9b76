/**
 * The demo's report: report.md, report.html (the Markdown rendered by marked) and report.json.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, relative } from 'node:path';
import { marked } from 'marked';
import { minorityGroups, pooledAccuracy, type GroupMetrics } from '../metrics/groups.js';
import type { Flips, PooledRow, StudyResult } from '../neurons/study.js';
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
   * sweep.csv's `change`; the pooled rows' paired test (flips in images, exact McNemar p-value, Holm-adjusted
   * over the setting's groups; for a random change the flips of each image's outcome in most repeats and the
   * 95% t-interval of the change in points); the images flipped and their contact sheet.
   */
  studies: {
    title: string;
    folder: string;
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
  finetune: { epoch: number; start_test: GroupMetrics; selected_test: GroupMetrics };
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
  /** Random changes: the 95% t-interval of the change over the repeats, in points; null otherwise. */
  minority_change_ci95_points: [number, number] | null;
  majority_change_ci95_points: [number, number] | null;
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
      `A change of the critical neurons is called only when the exact McNemar test of the images it flips (right -> wrong against wrong -> right; ` +
      `for a random change, each image's outcome in most repeats) is significant at the ${100 * SIGNIFICANCE}% level after Holm's correction over the ` +
      `groups of its setting (the four groups and the pooled minority and majority groups), so never on fewer than ${MIN_CHANGE_IMAGES} images; ` +
      `counts are in images. Groups of fewer than ${SMALL_GROUP} images are marked in the tables.`,
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
      flipped_images: b.flipped_images ?? 0,
      flipped_sheet: b.flipped_sheet ? join(s.result.out, b.flipped_sheet) : null,
      ...demoPaired(b.minority, b.majority, b.paired_test === 'mcnemar_exact_most_repeats' ? s.result.setting.repeats : null),
    }));
    studySummaries.push({ title: s.title, folder: rel(s.result.out), setting: s.result.setting, blocks });
    const lines = blocks.map(
      (b) =>
        `${b.source_group !== null ? `gradients of group ${b.source_group}: ` : ''}minority groups ${drop(b.minority_change_points, b.minority_samples, testOf(b, 'minority'))}, ` +
        `majority groups ${drop(b.majority_change_points, b.majority_samples, testOf(b, 'majority'))} ` +
        `(${verdict(b.minority_change_points, b.majority_change_points, { minority: b.minority_samples, majority: b.majority_samples }, { minority: testOf(b, 'minority'), majority: testOf(b, 'majority') })})`,
    );
    md.push(`- **Critical neurons, ${s.title}** (training split; accuracy of all minority / majority samples): ${lines.join('; ')}.`);
  }
  const sheet = largestMinoritySheet(studySummaries);
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
      md.push(...pairedTable(b, o.groupNames, minority), '');
      const plot = join(s.result.out, s.result.blocks.length > 1 ? `groups_before_after_block${bi}.png` : 'groups_before_after.png');
      plots.push(plot);
      md.push(`![${s.title}: per-group accuracy before and after](${rel(plot)})`, '');
    }
  }
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
    finetune: { epoch: o.ft.selected.epoch, start_test: o.ft.start.test, selected_test: o.ft.selected.test },
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

/** The paired fields of a block's minority and majority rows (all null for a block without them). */
function demoPaired(min: PooledRow | undefined, maj: PooledRow | undefined, repeats: number | null): DemoPaired {
  const ci = (r: PooledRow | undefined) => (r?.change_ci95 ? ([100 * r.change_ci95[0], 100 * r.change_ci95[1]] as [number, number]) : null);
  return {
    minority_flips: min?.flips ?? null,
    majority_flips: maj?.flips ?? null,
    minority_p_value: min?.p_value ?? null,
    majority_p_value: maj?.p_value ?? null,
    minority_p_holm: min?.p_holm ?? null,
    majority_p_holm: maj?.p_holm ?? null,
    minority_change_ci95_points: ci(min),
    majority_change_ci95_points: ci(maj),
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

/**
 * The paired lines under a block's table: images flipped per group and for the pooled minority and
 * majority groups, with the exact McNemar p-value and its Holm adjustment (and, for a random change, the
 * 95% t-interval of the change over the repeats).
 */
function pairedTable(b: StudyResult['blocks'][number], names: string[], minority: number[]): string[] {
  if (!b.minority || !b.majority) return [];
  const random = b.paired_test === 'mcnemar_exact_most_repeats';
  const rows: string[] = [
    random
      ? '| paired (images; outcome in most repeats) | right -> wrong | wrong -> right | p | Holm p | change, 95% t-interval over repeats (points) |'
      : '| paired (images) | right -> wrong | wrong -> right | p | Holm p |',
    random ? '|---|---:|---:|---:|---:|---:|' : '|---|---:|---:|---:|---:|',
  ];
  const cell = (p: number | null | undefined) => (p === null || p === undefined ? 'n/a' : pFmt(p));
  const line = (label: string, r: PooledRow | StudyResult['blocks'][number]['groups'][number]) => {
    const ci = r.change_ci95 ? `[${pts(100 * r.change_ci95[0])}, ${pts(100 * r.change_ci95[1])}]` : 'n/a';
    rows.push(`| ${label} | ${r.flips?.to_wrong ?? 'n/a'} | ${r.flips?.to_right ?? 'n/a'} | ${cell(r.p_value)} | ${cell(r.p_holm)} |${random ? ` ${ci} |` : ''}`);
  };
  for (const g of b.groups) line(`${g.id} ${names[g.id] ?? g.name}${minority.includes(g.id) ? ' (minority)' : ''}`, g);
  line(`minority groups (${b.minority.groups.join(', ')})`, b.minority);
  line(`majority groups (${b.majority.groups.join(', ')})`, b.majority);
  return rows;
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
