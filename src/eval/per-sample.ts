/**
 * Per-sample results (`--per-sample`): samples.csv, one row per image of the split in metadata order,
 * with its labels, the probability the model gives its true class and whether the prediction is right.
 * The study's samples.csv starts with the same columns (src/neurons/study/paired.ts adds the change's).
 */
import { relative } from 'node:path';
import type { Dataset, Sample, Split } from '../data/types.js';
import type { LabelOrder } from '../metrics/groups.js';
import { sampleOutcomes } from '../metrics/paired.js';
import { writeFileAtomic } from '../util/files.js';

/** The columns that say which sample a row is: its position in the split, image (relative to the dataset folder), split, class, attribute, group. */
export const SAMPLE_ID_COLUMNS = ['sample_id', 'file', 'split', 'y', 'attribute', 'group'] as const;

/** One CSV cell: quoted when it holds a comma, quote or line break. */
export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  const s = typeof v === 'number' ? (Number.isNaN(v) ? '' : String(v)) : v;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The {@link SAMPLE_ID_COLUMNS} cells of a sample; the file relative to the dataset folder `root`. */
export function sampleIdCells(s: Sample, root: string): string[] {
  return [String(s.index), csvCell(relative(root, s.file)), s.split, String(s.y), String(s.a), String(s.group)];
}

/**
 * samples.csv of one evaluation: the {@link SAMPLE_ID_COLUMNS}, `p_true` (probability of the true class)
 * and `correct` (1 or 0); both empty for an image that was skipped.
 * @param outputs [n, numClasses] row-major model outputs of `ds.samples[split]` (what evaluateSplit returns)
 */
export function evalSamplesCsv(ds: Dataset, split: Split, outputs: Float32Array, numClasses: number, o: { labelOrder: LabelOrder; softmaxHead: boolean }): string {
  const samples = ds.samples[split];
  const r = sampleOutcomes(outputs, numClasses, samples, o);
  const rows = [[...SAMPLE_ID_COLUMNS, 'p_true', 'correct'].join(',')];
  samples.forEach((s, i) => {
    rows.push([...sampleIdCells(s, ds.root), r.valid[i] ? String(r.pTrue[i]) : '', r.valid[i] ? String(r.correct[i]) : ''].join(','));
  });
  return rows.join('\n') + '\n';
}

/** Writes {@link evalSamplesCsv} to `path` (atomically); returns the path. */
export function writeEvalSamples(path: string, ...args: Parameters<typeof evalSamplesCsv>): string {
  writeFileAtomic(path, evalSamplesCsv(...args));
  return path;
}
