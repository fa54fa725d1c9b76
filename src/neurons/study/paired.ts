/**
 * The paired results of a study block: the same samples are evaluated before and after the change, so
 * each group (and the pooled minority and majority groups) gets its flips, the two-sided exact McNemar
 * p-value of them and Holm's adjustment over the block's family (the groups with samples and the minority
 * and majority rows). A deterministic change (zero, rewind, layer_rewind, threshold without dropout) is
 * evaluated once and its flips are tested; a random change (random_init, random_noise, threshold with
 * dropout) tests the flips of each image's outcome in most repeats, and adds the flips of each repeat and
 * the 95% t-interval of the change over the repeats. Per sample: correct before, the
 * fraction of repeats it was right after, and the mean probability of its true class after; from these,
 * samples.csv (`--per-sample`) and the contact sheet of the flipped images (flipped.png).
 */
import { join } from 'node:path';
import type { Dataset, Split } from '../../data/types.js';
import { SAMPLE_ID_COLUMNS, csvCell, sampleIdCells } from '../../eval/per-sample.js';
import { minorityGroups } from '../../metrics/groups.js';
import { countFlips, holm, mcnemarExact, sampleOutcomes, tInterval, type Flips } from '../../metrics/paired.js';
import { stat, type Stat } from '../../metrics/statistics.js';
import { isRandomMode } from '../../options/enums.js';
import { writeContactSheet, type ContactTile } from '../../report/contact-sheet.js';
import { writeFileAtomic } from '../../util/files.js';

export type { Flips } from '../../metrics/paired.js';

/** Per sample of a split, from one evaluation (see sampleOutcomes in src/metrics/paired.ts). */
export type Outcomes = ReturnType<typeof sampleOutcomes>;

/**
 * The paired fields of a group or a pooled row (accuracy changes are fractions, before - after).
 * Every row that ran: `flips`, `p_value`, `p_holm` (null for a row without samples); a random change
 * adds `repeat_flips` and `change_ci95` (null with one repeat).
 */
export interface PairedFields {
  /**
   * Images right before and wrong after (`to_wrong`) and the reverse: of the one evaluation of a
   * deterministic change; of a random change, the images wrong (or right) after in most of its repeats.
   */
  flips?: Flips;
  /** Two-sided exact McNemar p-value of `flips` (scipy.stats.binomtest(to_wrong, to_wrong + to_right, 0.5)). */
  p_value?: number | null;
  /** `p_value` adjusted by Holm's step-down method over the block's family: its groups with samples and the minority and majority rows. */
  p_holm?: number | null;
  /** Random change: the flips of each repeat. */
  repeat_flips?: Flips[];
  /** Random change: the 95% t-interval (t.ppf with repeats - 1 degrees of freedom) of the change over the repeats. */
  change_ci95?: [number, number] | null;
}

/** The pooled minority or majority groups of a block: their ids and samples, the accuracy statistics over the repeats and the paired fields. */
export type PooledRow = { groups: number[]; count: number } & Stat & PairedFields;

/** What a block's paired results add to it. */
export interface BlockPaired {
  /**
   * `mcnemar_exact`: a deterministic change, evaluated once, its flips tested; `mcnemar_exact_most_repeats`:
   * a random change, the flips of its most frequent outcome per image tested (and the t-interval over its repeats given).
   */
  paired_test: 'mcnemar_exact' | 'mcnemar_exact_most_repeats';
  /** Per group, in the order of the block's groups. */
  groups: PairedFields[];
  minority: PooledRow;
  majority: PooledRow;
}

/** Per sample after a block's repeats: the fraction of repeats right, the mean probability of the true class. */
export interface BlockSamples {
  fractionCorrect: Float64Array;
  pTrueAfter: Float64Array;
  /** `activated`: the split positions of the poorest samples the block ranked with. */
  poorest: number[] | null;
}

/** Whether a setting changes the model the same way every time (one evaluation, its own flips tested). */
export function isDeterministic(s: { mode: string; ranking: string; dropoutP: number }): boolean {
  return !isRandomMode(s.mode) && !(s.ranking === 'threshold' && s.dropoutP > 0);
}

/**
 * Right after in most repeats: 1 when right in more than half of them, 0 when wrong in more than half,
 * and as before on a tie (no flip).
 */
function mostRepeats(before: Outcomes, repeats: readonly Outcomes[]): Uint8Array {
  const out = new Uint8Array(before.correct.length);
  for (let i = 0; i < out.length; i++) {
    let right = 0;
    for (const r of repeats) right += r.correct[i];
    out[i] = 2 * right > repeats.length ? 1 : 2 * right < repeats.length ? 0 : before.correct[i];
  }
  return out;
}

/**
 * The paired results of one block from the outcomes before and of each repeat, per group of `groupOf`
 * (the group id of each sample) and for the minority / majority groups of `trainCounts`; p-values
 * Holm-adjusted over the block's family (groups with samples, minority and majority rows).
 */
export function blockPaired(
  before: Outcomes,
  repeats: readonly Outcomes[],
  groupOf: readonly number[],
  numGroups: number,
  trainCounts: readonly number[],
  deterministic: boolean,
): BlockPaired {
  const minority = minorityGroups(trainCounts);
  const majority = Array.from({ length: numGroups }, (_, g) => g).filter((g) => !minority.includes(g));
  const after = deterministic ? (repeats[0]?.correct ?? before.correct) : mostRepeats(before, repeats);
  const rowOf = (ids: readonly number[]) => {
    const inRow = (i: number) => before.valid[i] === 1 && ids.includes(groupOf[i]);
    let count = 0;
    let right = 0;
    for (let i = 0; i < groupOf.length; i++) {
      if (!inRow(i)) continue;
      count += 1;
      right += before.correct[i];
    }
    const repeatFlips = repeats.map((r) => countFlips(before.correct, r.correct, inRow));
    const changes = count ? repeatFlips.map((f) => (f.to_wrong - f.to_right) / count) : [];
    const unmodified = count ? right / count : null;
    const st = stat(unmodified, changes.map((c) => (unmodified as number) - c));
    const flips = countFlips(before.correct, after, inRow);
    const paired: PairedFields = { flips, p_value: count ? mcnemarExact(flips) : null, p_holm: null };
    if (!deterministic) Object.assign(paired, { repeat_flips: repeatFlips, change_ci95: tInterval(changes).ci });
    return { count, st, paired };
  };
  const groups = Array.from({ length: numGroups }, (_, g) => rowOf([g]));
  const min = rowOf(minority);
  const maj = rowOf(majority);
  const family = [...groups, min, maj];
  const adjusted = holm(family.map((r) => r.paired.p_value ?? null));
  family.forEach((r, i) => (r.paired.p_holm = adjusted[i]));
  return {
    paired_test: deterministic ? 'mcnemar_exact' : 'mcnemar_exact_most_repeats',
    groups: groups.map((g) => g.paired),
    minority: { groups: minority, count: min.count, ...min.st, ...min.paired },
    majority: { groups: majority, count: maj.count, ...maj.st, ...maj.paired },
  };
}

/** Per-sample summary of a block's repeats (NaN for samples that were not evaluated). */
export function blockSamples(repeats: readonly Outcomes[], poorest: number[] | null): BlockSamples {
  const n = repeats[0]?.correct.length ?? 0;
  const fractionCorrect = new Float64Array(n);
  const pTrueAfter = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let c = 0;
    let p = 0;
    for (const r of repeats) {
      c += r.correct[i];
      p += r.pTrue[i];
    }
    fractionCorrect[i] = repeats[0].valid[i] ? c / repeats.length : Number.NaN;
    pTrueAfter[i] = p / repeats.length;
  }
  return { fractionCorrect, pTrueAfter, poorest };
}

/** What the per-sample writers need of a study: the data, the split, the outcomes before and each block's samples (null: skipped). */
export interface StudySamples {
  ds: Dataset;
  split: Split;
  before: Outcomes;
  blocks: (BlockSamples | null)[];
  deterministic: boolean;
  activated: boolean;
  sourceGroups: (number | null)[];
}

/**
 * samples.csv of a study: one row per (block that ran, sample of the split): block, source_group, the
 * sample's id columns, `p_true_before`, `correct_before`, then `correct_after` (deterministic change: 1
 * or 0) or `fraction_correct_after` (random: the fraction of repeats right), `p_true_after` (mean over
 * the repeats) and, for `activated`, `poorest` (1: among the poorest samples the block ranked with).
 * Cells of an image that was skipped are empty.
 */
export function studySamplesCsv(x: StudySamples): string {
  const after = x.deterministic ? 'correct_after' : 'fraction_correct_after';
  const head = ['block', 'source_group', ...SAMPLE_ID_COLUMNS, 'p_true_before', 'correct_before', after, 'p_true_after', ...(x.activated ? ['poorest'] : [])];
  const rows = [head.join(',')];
  const samples = x.ds.samples[x.split];
  x.blocks.forEach((b, bi) => {
    if (!b) return;
    const poorest = new Set(b.poorest ?? []);
    samples.forEach((s, i) => {
      const ok = x.before.valid[i] === 1;
      rows.push(
        [
          String(bi), csvCell(x.sourceGroups[bi]), ...sampleIdCells(s, x.ds.root),
          ok ? String(x.before.pTrue[i]) : '', ok ? String(x.before.correct[i]) : '',
          ok ? String(b.fractionCorrect[i]) : '', ok ? String(b.pTrueAfter[i]) : '',
          ...(x.activated ? [poorest.has(i) ? '1' : '0'] : []),
        ].join(','),
      );
    });
  });
  return rows.join('\n') + '\n';
}

/** Most images a contact sheet shows. */
export const CONTACT_SHEET_MAX = 48;

/**
 * The samples a block flips: right before and wrong after (in most repeats, for a random change), or the
 * reverse; minority groups first, then by how far the probability of the true class moved.
 */
export function flippedSamples(x: StudySamples, b: BlockSamples, trainCounts: readonly number[]): { index: number; toWrong: boolean }[] {
  const minority = minorityGroups(trainCounts);
  const samples = x.ds.samples[x.split];
  const out: { index: number; toWrong: boolean }[] = [];
  for (let i = 0; i < samples.length; i++) {
    if (!x.before.valid[i]) continue;
    const was = x.before.correct[i] === 1;
    const after = b.fractionCorrect[i];
    if (was && after < 0.5) out.push({ index: i, toWrong: true });
    else if (!was && after > 0.5) out.push({ index: i, toWrong: false });
  }
  const rank = (i: number) => (minority.includes(samples[i].group) ? 0 : 1);
  return out.sort((a, b2) => rank(a.index) - rank(b2.index) || Math.abs(b.pTrueAfter[b2.index] - x.before.pTrue[b2.index]) - Math.abs(b.pTrueAfter[a.index] - x.before.pTrue[a.index]) || a.index - b2.index);
}

/**
 * Writes the contact sheet of a block's flipped images into `folder` (flipped.png, or
 * flipped_block<b>.png when the study has several blocks): each labelled with its group and the
 * probability of its true class before -> after, framed red (right -> wrong) or green (wrong -> right).
 * @returns the file and how many images flipped, or null when none did
 */
export async function writeFlippedSheet(
  folder: string,
  x: StudySamples,
  bi: number,
  trainCounts: readonly number[],
): Promise<{ file: string; flipped: number; shown: number; width: number; height: number } | null> {
  const b = x.blocks[bi];
  if (!b) return null;
  const flipped = flippedSamples(x, b, trainCounts);
  if (!flipped.length) return null;
  const samples = x.ds.samples[x.split];
  const minority = minorityGroups(trainCounts);
  const shown = flipped.slice(0, CONTACT_SHEET_MAX);
  const tiles: ContactTile[] = shown.map(({ index, toWrong }) => {
    const s = samples[index];
    const name = `${s.group} ${x.ds.groupNames[s.group]}`;
    return {
      file: s.file,
      lines: [name.length > 21 ? name.slice(0, 20) + '.' : name, `p ${x.before.pTrue[index].toFixed(2)} -> ${b.pTrueAfter[index].toFixed(2)}`],
      accent: toWrong ? '#d62728' : '#2ca02c',
    };
  });
  const file = join(folder, x.blocks.length > 1 ? `flipped_block${bi}.png` : 'flipped.png');
  const wrong = flipped.filter((f) => f.toWrong).length;
  const title =
    `${flipped.length} image${flipped.length > 1 ? 's' : ''} flipped (${wrong} right -> wrong, red; ${flipped.length - wrong} wrong -> right, green)` +
    `${flipped.length > shown.length ? `; the first ${shown.length} shown` : ''}, minority groups (${minority.join(', ') || 'none'}) first; p = probability of the true class`;
  const size = await writeContactSheet(file, tiles, { title });
  return { file, flipped: flipped.length, shown: shown.length, ...size };
}

/** Writes samples.csv into `folder`; returns its path. */
export function writeStudySamples(folder: string, x: StudySamples): string {
  const file = join(folder, 'samples.csv');
  writeFileAtomic(file, studySamplesCsv(x));
  return file;
}
