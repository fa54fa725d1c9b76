/**
 * `evaluate()`: per-group accuracy of a checkpoint on one split, as `spurmem eval` computes and prints it
 * (original-behaviour §7): open the dataset, build the model, load the checkpoint's state dict, one
 * inference pass with the eval transform in metadata order, then the group metrics. The CLI command and
 * the Node API share this code.
 */
import { z } from 'zod';
import { readCheckpoint, stateDictPath } from './checkpoint.js';
import { openDataset } from './data/dataset.js';
import { ImageCache } from './data/loader.js';
import { DATASET_KINDS, SPLITS, type Dataset, type DatasetKind, type Split } from './data/types.js';
import { evaluateSplit } from './eval.js';
import { LABEL_ORDERS, type GroupMetrics, type LabelOrder } from './metrics/groups.js';
import { ARCHS, createModel, loadWeights, setThreads } from './model.js';
import { checkpointLnEps } from './weights.js';
import type { NativeCheckpoint } from './native.js';
import { UsageError } from './util/errors.js';

/** Options of {@link evaluate}, validated by this schema (the flags of `spurmem eval`, camelCase). */
export const evaluateSchema = z
  .object({
    /** A .pth file: the original's training checkpoint (`model_state_dict` inside) or a plain state dict. */
    checkpoint: z.string().min(1),
    arch: z.enum(ARCHS).default('resnet50'),
    dataset: z.enum(DATASET_KINDS as [DatasetKind, ...DatasetKind[]]),
    root: z.string().min(1),
    target: z.string().optional(),
    attribute: z.string().optional(),
    split: z.enum(SPLITS as [Split, ...Split[]]).default('test'),
    /** Crop side R in pixels: resize to round(R·256/224), centre-crop R. */
    resolution: z.number().int().positive().default(224),
    /** ViT LayerNorm epsilon (default: the checkpoint's spurmem.ln_eps, else timm's 1e-6; the original code used 1e-5). */
    vitLnEps: z.number().positive().optional(),
    /** Images per forward pass. */
    batchSize: z.number().int().positive().default(100),
    /** cpu, cuda or cuda:N. */
    device: z.string().default('cpu'),
    /** libtorch CPU threads (default: every available core). */
    threads: z.number().int().positive().optional(),
    labelOrder: z.enum(LABEL_ORDERS as [LabelOrder, ...LabelOrder[]]).default('original'),
    /** softmax (keys fc.0.*), linear (keys fc.*), or auto: from the checkpoint's keys. */
    head: z.enum(['softmax', 'linear', 'auto']).default('auto'),
    skipBadImages: z.boolean().default(false),
  })
  .strict();

/** Input of {@link evaluate} (defaults applied by {@link evaluateSchema}). */
export type EvaluateInput = z.input<typeof evaluateSchema>;

/**
 * What {@link evaluate} returns and `spurmem eval --json` prints. Accuracies are fractions in [0, 1],
 * null for a group with no samples in the split.
 */
export interface EvaluationResult {
  split: Split;
  groups: { id: number; name: string; count: number; accuracy: number | null }[];
  /** min over the groups that have samples. */
  worst_group_accuracy: number | null;
  /** Group accuracies weighted by the train split's group counts (§7.2). */
  average_accuracy: number | null;
  /** Plain mean of the group accuracies. */
  mean_accuracy: number | null;
  /** Images left out with skipBadImages (missing files and undecodable images of this split). */
  skipped?: number;
}

/** Callbacks of {@link evaluate}. */
export interface EvaluateHooks {
  /** Called once the dataset is open (the CLI prints its counts table and warnings). */
  onDataset?: (ds: Dataset) => void;
  /** Images done so far of `total`. */
  onProgress?: (done: number, total: number) => void;
}

/** The JSON form of group metrics (what `spurmem eval --json` prints). */
export function evaluationResult(m: GroupMetrics): EvaluationResult {
  const out: EvaluationResult = {
    split: m.split,
    groups: m.groups.map((g) => ({ id: g.id, name: g.name, count: g.count, accuracy: g.accuracy })),
    worst_group_accuracy: m.worst_group_accuracy,
    average_accuracy: m.average_accuracy,
    mean_accuracy: m.mean_accuracy,
  };
  if (m.skipped !== undefined) out.skipped = m.skipped;
  return out;
}

/** The head a checkpoint was saved with: `fc.0.*`/`head.0.*` = the original's Linear + Softmax, else linear. */
export function detectHead(ck: NativeCheckpoint): 'softmax' | 'linear' {
  const keys = ck.keys(stateDictPath(ck));
  if (keys.includes('fc.0.weight') || keys.includes('head.0.weight')) return 'softmax';
  if (keys.includes('fc.weight') || keys.includes('head.weight')) return 'linear';
  return 'softmax';
}

/** {@link evaluate} with what the CLI's text output needs as well. */
export interface EvaluationDetails {
  result: EvaluationResult;
  metrics: GroupMetrics;
  /** [n, numClasses] row-major model outputs, row i = sample i of the split (NaN rows for skipped images). */
  outputs: Float32Array;
  /** The head used (resolved from the checkpoint with head 'auto'). */
  head: 'softmax' | 'linear';
  options: z.output<typeof evaluateSchema>;
  /** Wall time of the inference pass in seconds. */
  seconds: number;
}

/**
 * {@link evaluate}, returning the metrics, the raw outputs and the resolved options too.
 * @throws UsageError naming the bad option; SpurmemError for an unreadable checkpoint, a dataset error
 *   (file, line, field), keys that do not fit the architecture, or a device that is not there.
 */
export async function evaluateDetailed(input: EvaluateInput, hooks: EvaluateHooks = {}): Promise<EvaluationDetails> {
  const parsed = evaluateSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`option ${issue.path.join('.') || '(options)'}: ${issue.message}`);
  }
  const o = parsed.data;
  setThreads(o.threads);
  const ds = await openDataset({ dataset: o.dataset, root: o.root, target: o.target, attribute: o.attribute, skipBadImages: o.skipBadImages });
  hooks.onDataset?.(ds);
  const ck = await readCheckpoint(o.checkpoint);
  const head = o.head === 'auto' ? detectHead(ck) : o.head;
  const model = createModel({ arch: o.arch, head, device: o.device, imageSize: o.resolution, lnEps: o.vitLnEps ?? checkpointLnEps(ck) ?? 1e-6 });
  await loadWeights(model, ck);
  const r = await evaluateSplit(model, ds, o.split, {
    resolution: o.resolution,
    batchSize: o.batchSize,
    cache: new ImageCache(),
    labelOrder: o.labelOrder,
    skipBadImages: o.skipBadImages,
    onProgress: hooks.onProgress,
  });
  if (o.skipBadImages) r.metrics.skipped = (r.metrics.skipped ?? 0) + ds.skippedImages.filter((s) => s.split === o.split).length;
  return { result: evaluationResult(r.metrics), metrics: r.metrics, outputs: r.outputs, head, options: o, seconds: r.seconds };
}

/**
 * Per-group accuracy of a checkpoint on one split (`spurmem eval`): one inference pass with the eval
 * transform (resize to round(R·256/224) square, centre-crop R, ImageNet normalisation), accuracy =
 * argmax(output) == target index per group (§7.1), worst-group accuracy, the average weighted by the train
 * split's group counts (§7.2) and the plain mean.
 * @returns the object `spurmem eval --json` prints
 * @throws UsageError naming the bad option; SpurmemError for an unreadable checkpoint, a dataset error
 *   (file, line, field), keys that do not fit the architecture, or a device that is not there.
 */
export async function evaluate(input: EvaluateInput, hooks: EvaluateHooks = {}): Promise<EvaluationResult> {
  return (await evaluateDetailed(input, hooks)).result;
}
