/**
 * What a study gives back and writes: the result types, the block statistics, the original scripts'
 * file names and text format (§3.2-§3.4, Q16), result.csv, the default folder names and the writers of
 * a setting's result folder.
 */
import { join } from 'node:path';
import type { ResizeMethod } from '../../data/index.js';
import type { Split } from '../../data/types.js';
import type { GroupMetrics } from '../../metrics/groups.js';
import { stat, type Stat } from '../../metrics/statistics.js';
import { isRandomMode, isRewindMode } from '../../options/enums.js';
import { folderNameParts } from '../../options/setting-names.js';
import { accuracyLine, pythonFloat } from '../../report/text.js';
import { writeBeforeAfterPlot } from '../../report/plots.js';
import { writeFileAtomic, writeJsonAtomic } from '../../util/files.js';
import type { Channel } from '../rank.js';
import { writeFlippedSheet, writeStudySamples, type BlockPaired, type PairedFields, type PooledRow, type StudySamples } from './paired.js';
import type { ResolvedStudySetting, StudySetting } from './settings.js';

export type { Stat } from '../../metrics/statistics.js';

/**
 * One block of a study (one, or for `activated` one per source group): the chosen channels, the seeds and
 * group metrics of every repeat, and per group / summary the unmodified accuracy, the mean and std over
 * the repeats and the change (fractions in [0, 1]).
 */
export interface StudyBlock {
  /** `activated`: the group whose poorest samples gave the gradients; otherwise null. */
  source_group: number | null;
  /** `skipped`: the block could not rank channels (`reason` says why: an empty group, zero gradients); nothing was modified. */
  status: 'ran' | 'skipped';
  reason: string | null;
  channels: Channel[];
  threshold?: { k: number; threshold: number; selected: Record<string, number> };
  seeds: number[];
  repeats: GroupMetrics[];
  groups: ({ id: number; name: string; count: number } & Stat & PairedFields)[];
  worst_group_accuracy: Stat;
  average_accuracy: Stat;
  mean_accuracy: Stat;
  /** A block that ran: what its flips are (of the one evaluation, or of each image's outcome in most repeats), tested by exact McNemar. */
  paired_test?: BlockPaired['paired_test'];
  /** A block that ran: the pooled minority groups (the smaller training group of each class) and the other groups. */
  minority?: PooledRow;
  majority?: PooledRow;
  /** The contact sheet of the images the block flipped (file name in the result folder), null when none flipped. */
  flipped_sheet?: string | null;
  /** How many images the block flipped (right -> wrong and wrong -> right; for a random change, in most repeats). */
  flipped_images?: number;
}

/**
 * What `study()` and `runStudySetting` return (and result.json holds): the resolved setting, the
 * checkpoint, the unmodified metrics, the training counts, the blocks, the result folder and the wall
 * time in seconds.
 */
export interface StudyResult {
  setting: ResolvedStudySetting;
  checkpoint: string;
  rewind_checkpoint: string | null;
  split: Split;
  /** The eval transform's resize: pil (torchvision + PIL's bytes) or sharp (the approximation). */
  resize: ResizeMethod;
  unmodified: GroupMetrics;
  /** Training-split samples per group (the weights of the average accuracy; they define minority groups). */
  train_group_counts: number[];
  blocks: StudyBlock[];
  /** The original-compatible text file. */
  file: string;
  out: string;
  seconds: number;
  /** Wall seconds of this setting's evaluations: waiting for decoded images, and in the model. */
  timing: { data_seconds: number; compute_seconds: number; evaluations: number };
  /** With perSample: the per-sample file (samples.csv) of the result folder. */
  samples_file?: string;
}

/**
 * A block's per-group and summary statistics from its repeats (none for a skipped block: means are null),
 * with its paired results (src/neurons/study/paired.ts) when given.
 */
export function summarizeBlock(
  u: GroupMetrics,
  b: Pick<StudyBlock, 'source_group' | 'status' | 'reason' | 'channels' | 'threshold' | 'seeds' | 'repeats'>,
  paired?: BlockPaired,
): StudyBlock {
  const r = b.repeats;
  return {
    ...b,
    groups: u.groups.map((g, gi) => ({ id: g.id, name: g.name, count: g.count, ...stat(g.accuracy, r.map((m) => m.groups[gi].accuracy)), ...paired?.groups[gi] })),
    worst_group_accuracy: stat(u.worst_group_accuracy, r.map((m) => m.worst_group_accuracy)),
    average_accuracy: stat(u.average_accuracy, r.map((m) => m.average_accuracy)),
    mean_accuracy: stat(u.mean_accuracy, r.map((m) => m.mean_accuracy)),
    ...(paired ? { paired_test: paired.paired_test, minority: paired.minority, majority: paired.majority } : {}),
  };
}

/** The original script's result-file name for a setting (§3.2-§3.4). */
export function originalFileName(s: Omit<StudySetting, 'rewindEpochs'> & { rewindEpochs?: number }): string {
  const random = isRandomMode(s.mode);
  const rewind = isRewindMode(s.mode);
  const middle = random ? `_std${pythonFloat(s.std)}` : rewind ? `_${s.rewindEpochs ?? 0}epochs_back` : '';
  if (s.ranking === 'largest') return `${s.mode}${middle}_global_top${s.topK}_largest_neuron.txt`;
  if (s.ranking === 'activated') return `${s.mode}_poorest_random_batch200${middle}_global_top${s.topK}_most_activated_neuron.txt`;
  return `${s.mode}_${pythonFloat(s.fraction)}${middle}_global_${s.smallest ? 'smallest' : 'largest'}_neuron.txt`;
}

/**
 * What tells a setting apart beyond the original's file name, for its default folder: a seed other than
 * 0, repeats other than 10, threshold dropout, the faithful threshold, a non-default distribution or
 * poorest-sample limit. '' for the original's settings.
 */
export function folderSuffix(s: ResolvedStudySetting): string {
  return folderNameParts(s).map((p) => `_${p}`).join('');
}

/**
 * The original's text file: the unmodified accuracies, the header line, `name, index, value` per chosen
 * channel, one `a0, a1, a2, a3` line per repeat (8 decimals; the original's leading ", " is dropped, Q16).
 * `activated` writes one block per source group, each followed by the original's sentence and its repeats
 * (each repeat line followed by an empty line, as the original). A block that could not rank channels
 * writes `no channels chosen from group <g>s samples: <reason>` and an empty line instead.
 */
export function originalText(r: StudyResult): string {
  const lines = [accuracyLine(r.unmodified), 'modified neurons name, index and value'];
  for (const b of r.blocks) {
    if (b.status === 'skipped') {
      lines.push(`no channels chosen from group ${b.source_group}s samples: ${b.reason}`, '');
      continue;
    }
    for (const c of b.channels) lines.push(`${c.name}, ${c.index}, ${pythonFloat(c.value)}`);
    if (r.setting.ranking === 'activated') {
      lines.push(`model modified based on gradient from loss with only group ${b.source_group}s samples`);
      for (const m of b.repeats) lines.push(accuracyLine(m), '');
    } else {
      for (const m of b.repeats) lines.push(accuracyLine(m));
    }
  }
  return lines.join('\n') + '\n';
}

/** The paired statistics of a row as (statistic, value) pairs: flips and p-values, or per-repeat flips and the change's t-interval. */
function pairedStatistics(p: PairedFields): [string, number | null][] {
  const out: [string, number | null][] = [];
  if (p.flips) out.push(['to_wrong', p.flips.to_wrong], ['to_right', p.flips.to_right], ['p_value', p.p_value ?? null], ['p_holm', p.p_holm ?? null]);
  // a random change: besides the flips of each image's outcome in most repeats
  if (p.repeat_flips) {
    p.repeat_flips.forEach((f, i) => out.push([`repeat${i}_to_wrong`, f.to_wrong], [`repeat${i}_to_right`, f.to_right]));
    out.push(['change_ci95_low', p.change_ci95?.[0] ?? null], ['change_ci95_high', p.change_ci95?.[1] ?? null]);
  }
  return out;
}

/**
 * One CSV row per (block, group or summary, statistic): unmodified, mean, std and change; after them the
 * paired statistics of each group (to_wrong, to_right, p_value, p_holm; a random change adds
 * repeat<r>_to_wrong, repeat<r>_to_right, change_ci95_low, change_ci95_high) and the rows of the pooled
 * minority and majority groups.
 */
export function resultCsv(r: StudyResult): string {
  const rows = ['block,source_group,status,group,name,statistic,value'];
  const f = (v: number | null) => (v === null ? '' : String(v));
  r.blocks.forEach((b, bi) => {
    const src = `${b.source_group === null ? '' : String(b.source_group)},${b.status}`;
    for (const g of b.groups) {
      for (const k of ['unmodified', 'mean', 'std', 'change'] as const) rows.push(`${bi},${src},${g.id},"${g.name}",${k},${f(g[k])}`);
    }
    for (const [name, st] of [['worst_group', b.worst_group_accuracy], ['average', b.average_accuracy], ['mean', b.mean_accuracy]] as const) {
      for (const k of ['unmodified', 'mean', 'std', 'change'] as const) rows.push(`${bi},${src},${name},"${name} accuracy",${k},${f(st[k])}`);
    }
    for (const g of b.groups) for (const [k, v] of pairedStatistics(g)) rows.push(`${bi},${src},${g.id},"${g.name}",${k},${f(v)}`);
    for (const [name, row] of [['minority', b.minority], ['majority', b.majority]] as const) {
      if (!row) continue;
      const label = `"${name} groups (${row.groups.join(' ')})"`;
      for (const k of ['count', 'unmodified', 'mean', 'std', 'change'] as const) rows.push(`${bi},${src},${name},${label},${k},${f(row[k])}`);
      for (const [k, v] of pairedStatistics(row)) rows.push(`${bi},${src},${name},${label},${k},${f(v)}`);
    }
  });
  return rows.join('\n') + '\n';
}

/**
 * Writes a setting's result folder: the original's text file, result.csv, a before/after plot per block
 * that ran, with `samples` the contact sheet of each block's flipped images (flipped.png; the block's
 * `flipped_sheet` names it) and with `perSample` samples.csv, and result.json last (its presence marks
 * a finished setting, what a restarted sweep skips).
 */
export async function writeStudyResult(result: StudyResult, samples?: StudySamples & { perSample?: boolean }): Promise<void> {
  const { setting: s, blocks, unmodified, split, out: folder } = result;
  if (samples) {
    for (let bi = 0; bi < blocks.length; bi++) {
      if (blocks[bi].status === 'skipped') continue;
      const sheet = await writeFlippedSheet(folder, samples, bi, result.train_group_counts);
      blocks[bi].flipped_sheet = sheet ? sheet.file.split('/').pop()! : null;
      blocks[bi].flipped_images = sheet?.flipped ?? 0;
    }
    if (samples.perSample) result.samples_file = writeStudySamples(folder, samples);
  }
  writeFileAtomic(result.file, originalText(result));
  writeFileAtomic(join(folder, 'result.csv'), resultCsv(result));
  for (let bi = 0; bi < blocks.length; bi++) {
    const b = blocks[bi];
    if (b.status === 'skipped') continue;
    const after: GroupMetrics = {
      ...unmodified,
      groups: unmodified.groups.map((g, gi) => ({ ...g, accuracy: b.groups[gi].mean })),
    };
    const title = `${s.ranking} ${s.mode}${isRandomMode(s.mode) ? ` std ${s.std}, ${s.repeats} repeats` : ''}${b.source_group !== null ? `, gradients of group ${b.source_group}` : ''} (${split})`;
    await writeBeforeAfterPlot(join(folder, blocks.length > 1 ? `groups_before_after_block${bi}` : 'groups_before_after'), title, unmodified, after, b.groups.map((g) => g.std));
  }
  writeJsonAtomic(join(folder, 'result.json'), result);
}
