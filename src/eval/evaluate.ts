/**
 * `evaluate()`: per-group accuracy of a checkpoint on one split, as `spurmem eval` computes and prints it
 * (original-behaviour §7): open the dataset, build the model, load the checkpoint's state dict, one
 * inference pass with the eval transform in metadata order, then the group metrics. The CLI command and
 * the Node API share this code.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { readCheckpoint, stateDictPath, strippedNote } from '../checkpoint.js';
import { openDataset } from '../data/dataset.js';
import { sharedImageCache } from '../data/loader.js';
import type { Dataset, Split } from '../data/types.js';
import { evaluateSplit } from './evaluate-split.js';
import { writeEvalSamples } from './per-sample.js';
import type { GroupMetrics, IntervalsUsed, LabelOrder } from '../metrics/groups.js';
import { AGGREGATES, ciKey as ciKeyOf, intervalOptions, type Aggregate, type Interval } from '../metrics/intervals.js';
import { ARCHS, chooseArch, createModel, detectResolution, loadWeights, setThreads } from '../model/index.js';
import { checkpointLnEps } from '../weights.js';
import { schemaFields } from '../options/derive.js';
import type { Head } from '../options/enums.js';
import { readCheckpointMeta } from '../checkpoint-meta.js';
import { chooseLabelOrder, detectHead, headInFile, recordedContradictions } from '../base.js';

export { detectHead } from '../base.js';
import { optionsError } from '../util/errors.js';

/** Options of {@link evaluate}, validated by this schema (the flags of `spurmem eval`, camelCase). */
export const evaluateSchema = z
  .object(
    schemaFields('eval', [
      'checkpoint', 'arch', 'dataset', 'root', 'target', 'attribute', 'split', 'resolution', 'resize', 'vitLnEps', 'batchSize', 'device', 'threads', 'decodeThreads',
      'labelOrder', 'head', 'skipBadImages', 'perSample', 'ci', 'ciLevel', 'bootstrap',
    ]),
  )
  .strict();

/** Input of {@link evaluate} (defaults applied by {@link evaluateSchema}). */
export type EvaluateInput = z.input<typeof evaluateSchema>;

/**
 * What {@link evaluate} returns and `spurmem eval --json` prints. Accuracies are fractions in [0, 1],
 * null for a group with no samples in the split. Intervals (keys named by the level: `ci95` at 0.95,
 * `ci90` at 0.9) are [lower, upper] fractions: per group (Wilson or Clopper-Pearson, unless --ci none)
 * and `<aggregate>_ci95` for the four aggregates (the group-stratified bootstrap, unless --bootstrap 0).
 */
export interface EvaluationResult {
  split: Split;
  groups: { id: number; name: string; count: number; accuracy: number | null; [ci: `ci${string}`]: Interval | null | undefined }[];
  /** min over the groups that have samples. */
  worst_group_accuracy: number | null;
  /** Group accuracies weighted by the train split's group counts (§7.2; the Waterbirds papers' "average"). */
  average_accuracy: number | null;
  /** Plain mean of the group accuracies (SubpopBench's "adjusted"). */
  mean_accuracy: number | null;
  /** Correct / samples of the split (SubpopBench's "avg"). */
  overall_accuracy?: number | null;
  /** `<aggregate>_ci95`: the bootstrap interval of each aggregate (null where the aggregate is undefined). */
  [aggregateCi: `${Aggregate}_ci${string}`]: Interval | null | undefined;
  /** How the intervals were made: per-group method, level, bootstrap draws. */
  ci?: IntervalsUsed;
  /** Present when the images were resized with sharp instead of PIL's algorithm (the default). */
  resize?: 'sharp';
  /** Images left out with skipBadImages (missing files and undecodable images of this split). */
  skipped?: number;
  /** The first skipped images, each `file (metadata line N): reason`. */
  skipped_files?: string[];
}

/** Callbacks of {@link evaluate}. */
export interface EvaluateHooks {
  /** Called once the dataset is open (the CLI prints its counts table and warnings). */
  onDataset?: (ds: Dataset) => void;
  /** Images done so far of `total`. */
  onProgress?: (done: number, total: number) => void;
  /**
   * A one-off evaluation (the CLI's `eval`): decode without caching, so memory does not grow with the
   * split. Otherwise the process-wide image cache is used and a second evaluation decodes nothing.
   */
  oneOff?: boolean;
}

/** The JSON form of group metrics (what `spurmem eval --json` prints). */
export function evaluationResult(m: GroupMetrics): EvaluationResult {
  const key = m.ci ? ciKeyOf(m.ci.level) : null;
  const out: EvaluationResult = {
    split: m.split,
    groups: m.groups.map((g) => ({ id: g.id, name: g.name, count: g.count, accuracy: g.accuracy, ...(key && key in g ? { [key]: g[key] } : {}) })),
    worst_group_accuracy: m.worst_group_accuracy,
    average_accuracy: m.average_accuracy,
    mean_accuracy: m.mean_accuracy,
  };
  if (m.overall_accuracy !== undefined) out.overall_accuracy = m.overall_accuracy;
  for (const name of AGGREGATES) if (key && `${name}_${key}` in m) out[`${name}_${key}`] = m[`${name}_${key}`];
  if (m.ci) out.ci = m.ci;
  if (m.skipped !== undefined) out.skipped = m.skipped;
  if (m.skipped_files !== undefined) out.skipped_files = m.skipped_files;
  return out;
}


/** {@link evaluate} with what the CLI's text output needs as well. */
export interface EvaluationDetails {
  result: EvaluationResult;
  metrics: GroupMetrics;
  /** [n, numClasses] row-major model outputs, row i = sample i of the split (NaN rows for skipped images). */
  outputs: Float32Array;
  /** The head used (resolved from the checkpoint with head 'auto'). */
  head: Head;
  /** The options with arch, resolution and label order resolved (given, else recorded in the checkpoint). */
  options: z.output<typeof evaluateSchema> & { arch: (typeof ARCHS)[number]; resolution: number; labelOrder: LabelOrder };
  /** Options given that contradict what the checkpoint records. */
  warnings: string[];
  /** Why the architecture was chosen (given, recorded, from the keys, the default). */
  archReason: string;
  /** Why the label order was chosen (given, recorded, or assumed from the head). */
  labelOrderReason: string;
  /** Whether the label order was assumed (nothing gave or recorded one). */
  labelOrderAssumed: boolean;
  /** What was assumed about the checkpoint (wrapper prefixes removed from its keys). */
  notes: string[];
  /** Wall time of the inference pass in seconds. */
  seconds: number;
  /** With perSample: the samples.csv written (in the current folder). */
  samplesFile?: string;
}

/**
 * {@link evaluate}, returning the metrics, the raw outputs and the resolved options too.
 * @throws UsageError naming the bad option; SpurmemError for an unreadable checkpoint, a dataset error
 *   (file, line, field), keys that do not fit the architecture, or a device that is not there.
 */
export async function evaluateDetailed(input: EvaluateInput, hooks: EvaluateHooks = {}): Promise<EvaluationDetails> {
  const parsed = evaluateSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const given = parsed.data;
  // the dataset opens first: the addon loads, CelebA's image folder is listed on a worker thread while its
  // lists are parsed here, and the checkpoint is read while the listing is matched. Its errors still come
  // after the checkpoint's, as when it was opened after the model.
  const opening = openDataset({ dataset: given.dataset, root: given.root, target: given.target, attribute: given.attribute, skipBadImages: given.skipBadImages });
  opening.catch(() => undefined);
  setThreads(given.threads, { decodeThreads: given.decodeThreads });
  const ck = await readCheckpoint(given.checkpoint);
  const meta = readCheckpointMeta(ck);
  const sd = stateDictPath(ck);
  const warnings = recordedContradictions({ arch: given.arch, resolution: given.resolution, labelOrder: given.labelOrder }, (_, mk) => meta[mk], given.checkpoint);
  const notes: string[] = [];
  const stripped = strippedNote(ck);
  if (stripped) notes.push(stripped);
  const source = `${given.checkpoint} (spurmem.%)`;
  const arch = chooseArch(ck, sd, { given: given.arch, recorded: { arch: meta.arch, source: source.replace('%', 'arch') } });
  const head = given.head === 'auto' ? detectHead(ck) : given.head;
  const order = chooseLabelOrder(given.labelOrder, { order: meta.label_order, source: source.replace('%', 'label_order') }, head, headInFile(ck));
  const o = {
    ...given,
    arch: arch.arch,
    resolution: given.resolution ?? (meta.resolution as number | undefined) ?? detectResolution(ck, sd) ?? 224,
    labelOrder: order.labelOrder,
  };
  const model = createModel({ arch: o.arch, head, device: o.device, imageSize: o.resolution, lnEps: o.vitLnEps ?? checkpointLnEps(ck) ?? 1e-6 });
  await loadWeights(model, ck, { archReason: arch.reason });
  const ds = await opening;
  hooks.onDataset?.(ds);
  const r = await evaluateSplit(model, ds, o.split, {
    resolution: o.resolution,
    resize: o.resize,
    batchSize: o.batchSize,
    cache: hooks.oneOff ? undefined : sharedImageCache(),
    labelOrder: o.labelOrder,
    skipBadImages: o.skipBadImages,
    intervals: intervalOptions(o),
    onProgress: hooks.onProgress,
  });
  if (o.skipBadImages) {
    const missing = ds.skippedImages.filter((s) => s.split === o.split);
    r.metrics.skipped = (r.metrics.skipped ?? 0) + missing.length;
    const named = [...missing.map((s) => `${s.file} (metadata line ${s.line}): ${s.reason}`), ...(r.metrics.skipped_files ?? [])];
    if (named.length) r.metrics.skipped_files = named.slice(0, 20);
  }
  const result = evaluationResult(r.metrics);
  if (o.resize === 'sharp') result.resize = 'sharp';
  const samplesOpts = { labelOrder: o.labelOrder, softmaxHead: head === 'softmax' };
  const samplesFile = o.perSample ? writeEvalSamples(resolve('samples.csv'), ds, o.split, r.outputs, model.info().numClasses, samplesOpts) : undefined;
  return {
    result,
    metrics: r.metrics,
    outputs: r.outputs,
    head,
    options: o,
    warnings,
    archReason: arch.reason,
    labelOrderReason: order.reason,
    labelOrderAssumed: order.assumed,
    notes,
    seconds: r.seconds,
    ...(samplesFile ? { samplesFile } : {}),
  };
}

/**
 * Per-group accuracy of a checkpoint on one split (`spurmem eval`): one inference pass with the eval
 * transform (resize to round(R·256/224) square, centre-crop R, ImageNet normalisation), accuracy =
 * argmax(output) == target index per group (§7.1), worst-group accuracy, the average weighted by the train
 * split's group counts (§7.2), the plain mean and the overall accuracy, with their confidence intervals
 * (per group: Wilson or Clopper-Pearson at --ci-level; aggregates: the seeded group-stratified bootstrap).
 * @returns the object `spurmem eval --json` prints
 * @throws UsageError naming the bad option; SpurmemError for an unreadable checkpoint, a dataset error
 *   (file, line, field), keys that do not fit the architecture, or a device that is not there.
 */
export async function evaluate(input: EvaluateInput, hooks: EvaluateHooks = {}): Promise<EvaluationResult> {
  return (await evaluateDetailed(input, hooks)).result;
}
