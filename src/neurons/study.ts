/**
 * The critical-neuron study of the paper's Part I (`spurmem study`): the original
 * Study{ChannelwiseLargest,ChannelwiseMostActivated,LargestNeuronByThreshold}Experiments.py scripts
 * (original-behaviour §3.2-§3.4, §4, §5), runnable, on one split for both the unmodified and the
 * modified model (Q1, Q28), with the averaging the original left to the user done.
 *
 * A study = one unmodified evaluation, a ranking (which channels / weights), then for each block (one,
 * or one per source group for `activated`) R repeats of: modify the selected weights, evaluate, restore
 * the touched tensors in place (no model copies).
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { ImageCache, loadBatches, openDataset, type Dataset, type ResizeMethod } from '../data/index.js';
import type { Sample, Split } from '../data/types.js';
import { evaluateSplit } from '../eval.js';
import { targetIndex, type GroupMetrics, type LabelOrder } from '../metrics/groups.js';
import { readCheckpoint, stateDictPath } from '../checkpoint.js';
import { createModel, loadWeights, type Model } from '../model/index.js';
import { baseFields, resolveBase, runEpochs } from '../base.js';
import { addon, type NativeCheckpoint, type ModificationMode } from '../native.js';
import { accuracyLine, pythonFloat } from '../report/text.js';
import { writeBeforeAfterPlot } from '../train/run-dir.js';
import { applyThreads } from '../train/common.js';
import { SpurmemError, UsageError, flagName, optionsError } from '../util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/files.js';
import { candidateParams, poorestSamples, positiveChannels, rankingProblem, softmaxRows, topChannels, type Channel } from './rank.js';

/** Modifications of the selected weights (original-behaviour §5; `layer_rewind` copies the whole tensor). */
export const MODES = ['zero', 'random_init', 'random_noise', 'rewind', 'layer_rewind'] as const;
/** The modes that draw random values (repeated R times, with `std`). */
export const isRandomMode = (mode: string | undefined): boolean => mode === 'random_init' || mode === 'random_noise';
/** The modes that copy weights from an earlier checkpoint. */
export const isRewindMode = (mode: string | undefined): boolean => mode === 'rewind' || mode === 'layer_rewind';
/** How neurons are chosen: largest weight L2 norm (§4.1), largest gradient norm on the poorest samples (§4.2), a fraction of single weights by |w| (§4.3). */
export const RANKINGS = ['largest', 'activated', 'threshold'] as const;

/**
 * The loss whose gradients rank `activated` channels: `probabilities`, the original's cross-entropy on the
 * head's output (with the softmax head, on probabilities: it passes no gradient for samples fitted with
 * probability exactly 1.0); `logits`, cross-entropy on the head's Linear output, computed so that it does
 * not underflow (native/losses.h).
 */
export const ACTIVATED_LOSSES = ['probabilities', 'logits'] as const;

/** The base of a study: which model on which data. Shared by every setting of a sweep. */
export const studyBaseSchema = z
  .object({
    ...baseFields,
    rewindCheckpoint: z.string().optional(),
    batchSize: z.number().int().positive().default(200),
    device: z.string().default('cpu'),
    threads: z.number().int().positive().optional(),
    skipBadImages: z.boolean().default(false),
    cacheMb: z.number().int().min(0).default(4096),
  })
  .strict();

/** One study setting (what a sweep varies). */
export const studySettingSchema = z
  .object({
    split: z.enum(['train', 'val', 'test']).default('train'),
    ranking: z.enum(RANKINGS).default('largest'),
    topK: z.number().int().positive().default(3),
    fraction: z.number().min(0).max(1).default(0.05),
    smallest: z.boolean().default(false),
    dropoutP: z.number().min(0).max(1).default(0),
    faithfulThreshold: z.boolean().default(false),
    mode: z.enum(MODES).default('zero'),
    std: z.number().min(0).default(0),
    rewindEpochs: z.number().int().min(0).default(0),
    repeats: z.number().int().positive().optional(),
    distribution: z.enum(['normal', 'uniform']).optional(),
    poorestLimit: z.number().int().positive().default(200),
    activatedLoss: z.enum(ACTIVATED_LOSSES).default('probabilities'),
    seed: z.number().int().min(0).default(0),
  })
  .strict();

/** Input of `prepareStudy` (see {@link studyBaseSchema}). */
export type StudyBaseInput = z.input<typeof studyBaseSchema>;
/** Input of `runStudySetting` (see {@link studySettingSchema}). */
export type StudySettingInput = z.input<typeof studySettingSchema>;
/** A validated setting (defaults applied; repeats and distribution may still be open). */
export type StudySetting = z.output<typeof studySettingSchema>;
/** Input of `study()`: a base and one setting, plus the result folder `out`. */
export type StudyInput = StudyBaseInput & StudySettingInput & { out?: string };

/** Statistics of one group (or of worst-group / average accuracy) over the repeats. */
export interface Stat {
  unmodified: number | null;
  mean: number | null;
  std: number | null;
  /** unmodified - mean (the original README's "change"). */
  change: number | null;
}

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
  groups: ({ id: number; name: string; count: number } & Stat)[];
  worst_group_accuracy: Stat;
  average_accuracy: Stat;
  mean_accuracy: Stat;
}

/** A setting with every default resolved: what a study actually ran. */
export type ResolvedStudySetting = StudySetting & { repeats: number; distribution: 'normal' | 'uniform' };

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
}

/** A loaded base: model, data, cache and checkpoints, reused by every setting of a sweep. */
export interface StudyContext {
  base: z.output<typeof studyBaseSchema>;
  model: Model;
  ds: Dataset;
  cache: ImageCache;
  checkpointPath: string;
  checkpoint: NativeCheckpoint;
  labelOrder: LabelOrder;
  resolution: number;
  resize: ResizeMethod;
  arch: string;
  /** Run folder (with --run): rewind checkpoints are found there. */
  runDir: string | null;
  epoch: number | null;
  defaultOut: string;
  unmodified: Map<Split, { outputs: Float32Array; metrics: GroupMetrics }>;
  rewindCache: Map<string, NativeCheckpoint>;
  /** Dataset warnings and settings that contradict what the run or checkpoint records. */
  warnings: string[];
  /** What was assumed about the checkpoint (see ResolvedBase.notes). */
  notes: string[];
}

/**
 * Loads the model, the dataset and the checkpoint of a study base.
 * @throws UsageError for missing or conflicting options; SpurmemError for unreadable files.
 */
export async function prepareStudy(input: StudyBaseInput): Promise<StudyContext> {
  const parsed = studyBaseSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const base = parsed.data;
  applyThreads(base.threads);
  addon().checkDevice(base.device);
  const r = await resolveBase(base);
  const checkpoint = r.checkpoint;
  const model = createModel({ arch: r.arch, head: r.head, device: base.device, imageSize: r.resolution, lnEps: r.lnEps });
  await loadWeights(model, checkpoint, { strict: true, path: stateDictPath(checkpoint), archReason: r.archReason });
  const ds = await openDataset({ dataset: r.dataset, root: r.root, target: r.target, attribute: r.attribute, skipBadImages: base.skipBadImages });
  const stem = basename(r.checkpointPath).replace(/\.pth(\.tar)?$/, '');
  return {
    base,
    model,
    ds,
    cache: new ImageCache(base.cacheMb * 1024 * 1024),
    checkpointPath: r.checkpointPath,
    checkpoint,
    labelOrder: r.labelOrder,
    resolution: r.resolution,
    resize: r.resize,
    arch: r.arch,
    runDir: r.runDir,
    epoch: r.epoch,
    defaultOut: r.runDir ? join(r.runDir, 'studies') : join('experiments', 'studies', stem),
    unmodified: new Map(),
    rewindCache: new Map(),
    warnings: [...r.warnings, ...ds.warnings],
    notes: [...r.notes],
  };
}

/** The original script's result-file name for a setting (§3.2-§3.4). */
export function originalFileName(s: StudySetting): string {
  const random = isRandomMode(s.mode);
  const rewind = isRewindMode(s.mode);
  const middle = random ? `_std${pythonFloat(s.std)}` : rewind ? `_${s.rewindEpochs}epochs_back` : '';
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
  const parts: string[] = [];
  const random = isRandomMode(s.mode);
  if (random && s.repeats !== 10) parts.push(`r${s.repeats}`);
  if (settingApplies('seed', s) && s.seed !== 0) parts.push(`seed${s.seed}`);
  if (s.ranking === 'threshold' && s.dropoutP > 0) parts.push(`drop${s.dropoutP}`);
  if (s.ranking === 'threshold' && s.faithfulThreshold) parts.push('faithful');
  if (random && s.distribution !== (s.ranking === 'threshold' && s.faithfulThreshold ? 'uniform' : 'normal')) parts.push(s.distribution);
  if (s.ranking === 'activated' && s.poorestLimit !== 200) parts.push(`poorest${s.poorestLimit}`);
  if (s.ranking === 'activated' && s.activatedLoss === 'logits') parts.push('logits');
  return parts.map((p) => `_${p}`).join('');
}

/** Seed of repeat r of block b: a fixed mix of (seed, b, r), so every repeat has its own stream. */
export function repeatSeed(seed: number, block: number, repeat: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [block, repeat]) {
    h = Math.imul(h ^ (v + 0x7f4a7c15), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}
/** Standard deviation over repeats with ddof 0 (numpy.std's default). */
function std(xs: number[]): number | null {
  const m = mean(xs);
  if (m === null) return null;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}
function stat(unmodified: number | null, values: (number | null)[]): Stat {
  const v = values.filter((x): x is number => x !== null);
  const m = mean(v);
  return { unmodified, mean: m, std: std(v), change: unmodified !== null && m !== null ? unmodified - m : null };
}

/** A block's per-group and summary statistics from its repeats (none for a skipped block: means are null). */
function summarizeBlock(u: GroupMetrics, b: Pick<StudyBlock, 'source_group' | 'status' | 'reason' | 'channels' | 'threshold' | 'seeds' | 'repeats'>): StudyBlock {
  const r = b.repeats;
  return {
    ...b,
    groups: u.groups.map((g, gi) => ({ id: g.id, name: g.name, count: g.count, ...stat(g.accuracy, r.map((m) => m.groups[gi].accuracy)) })),
    worst_group_accuracy: stat(u.worst_group_accuracy, r.map((m) => m.worst_group_accuracy)),
    average_accuracy: stat(u.average_accuracy, r.map((m) => m.average_accuracy)),
    mean_accuracy: stat(u.mean_accuracy, r.map((m) => m.mean_accuracy)),
  };
}

async function unmodifiedOf(ctx: StudyContext, split: Split, timing: StudyResult['timing']) {
  let u = ctx.unmodified.get(split);
  if (!u) {
    const r = await evaluateSplit(ctx.model, ctx.ds, split, {
      resolution: ctx.resolution,
      resize: ctx.resize,
      batchSize: ctx.base.batchSize,
      cache: ctx.cache,
      labelOrder: ctx.labelOrder,
      skipBadImages: ctx.base.skipBadImages,
    });
    u = { outputs: r.outputs, metrics: r.metrics };
    ctx.unmodified.set(split, u);
    timing.data_seconds += r.dataSeconds;
    timing.compute_seconds += r.computeSeconds;
    timing.evaluations += 1;
  }
  return u;
}

async function rewindSource(ctx: StudyContext, s: StudySetting, input: { rewindCheckpoint?: string }): Promise<{ ck: NativeCheckpoint; path: string }> {
  let path: string;
  if (input.rewindCheckpoint ?? ctx.base.rewindCheckpoint) {
    path = resolve((input.rewindCheckpoint ?? ctx.base.rewindCheckpoint)!);
  } else if (ctx.runDir !== null && ctx.epoch !== null) {
    const e = ctx.epoch - s.rewindEpochs;
    if (e < 0) throw new UsageError(`--rewind-epochs ${s.rewindEpochs} reaches before epoch 0 (the study uses epoch ${ctx.epoch})`);
    path = join(ctx.runDir, `epoch_${e}_checkpoints.pth.tar`);
    if (!existsSync(path)) {
      throw new SpurmemError(
        `${path}: missing (rewind ${s.rewindEpochs} epochs from epoch ${ctx.epoch}); the run folder has checkpoints of epochs ${runEpochs(ctx.runDir).join(', ')}` +
          ' (a run trained with --keep-checkpoints keeps only its newest ones)',
      );
    }
  } else {
    throw new UsageError(`--mode ${s.mode} needs --rewind-checkpoint FILE (or --run DIR with --rewind-epochs N)`);
  }
  let ck = ctx.rewindCache.get(path);
  if (!ck) {
    ck = await readCheckpoint(path);
    ctx.rewindCache.set(path, ck);
  }
  return { ck, path };
}

/** Decoded eval-transform batch of chosen split positions (for the gradient of `activated`). */
async function batchOf(ctx: StudyContext, samples: Sample[]) {
  for await (const b of loadBatches(samples, { resolution: ctx.resolution, resize: ctx.resize, batchSize: samples.length, cache: ctx.cache, skipBadImages: ctx.base.skipBadImages })) {
    return b;
  }
  throw new SpurmemError('no images for the gradient batch');
}

/**
 * Validates a setting and resolves its defaults: R = `repeats` (default 10) for the random modes and 1
 * otherwise (the Largest and threshold scripts, §3.2, §3.4); the distribution is normal N(0, std^2)
 * unless asked, or uniform for `faithfulThreshold` (Q14).
 * @throws UsageError naming the bad option
 */
export function resolveStudySetting(input: StudySettingInput): ResolvedStudySetting {
  const parsed = studySettingSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const s = parsed.data;
  const random = isRandomMode(s.mode);
  const repeats = random ? (s.repeats ?? 10) : 1;
  const distribution = s.distribution ?? (s.ranking === 'threshold' && s.faithfulThreshold ? 'uniform' : 'normal');
  return { ...s, repeats, distribution };
}

/**
 * Whether an option of a setting (camelCase key of {@link studySettingSchema}) has an effect on a
 * setting of this ranking and mode: `topK` for the channel rankings; `fraction`, `smallest`, `dropoutP`,
 * `faithfulThreshold` for threshold; `std`, `repeats`, `distribution` for the random modes;
 * `rewindEpochs` for the rewind modes without a rewind checkpoint; `poorestLimit`, `activatedLoss` for activated; `seed`
 * where something is random. Sweeps keep only these keys; `spurmem study` warns about the others.
 */
export function settingApplies(key: string, s: { ranking?: string; mode?: string; dropoutP?: number }, o: { rewindCheckpoint?: boolean } = {}): boolean {
  const threshold = s.ranking === 'threshold';
  switch (key) {
    case 'topK':
      return !threshold;
    case 'fraction':
    case 'smallest':
    case 'dropoutP':
    case 'faithfulThreshold':
      return threshold;
    case 'std':
    case 'repeats':
    case 'distribution':
      return isRandomMode(s.mode);
    case 'rewindEpochs':
      return isRewindMode(s.mode) && !o.rewindCheckpoint;
    case 'poorestLimit':
    case 'activatedLoss':
      return s.ranking === 'activated';
    case 'seed':
      return isRandomMode(s.mode) || (threshold && (s.dropoutP ?? 0) > 0);
    default:
      return true;
  }
}

/**
 * Why a setting cannot be run, or null: settings that would change nothing are refused rather than
 * reported as a null result (std 0 for the random modes, rewind by 0 epochs, threshold fraction 0), and
 * layer_rewind needs channels. `name` renders an option's key (a CLI flag, or a sweep key).
 */
export function settingProblem(s: StudySetting, o: { rewindCheckpoint?: boolean; name?: (key: string) => string } = {}): string | null {
  const n = o.name ?? flagName;
  const v = (key: string, value: unknown) => (o.name ? `${n(key)}: ${String(value)}` : `${n(key)} ${String(value)}`);
  if (s.ranking === 'threshold' && s.mode === 'layer_rewind') return `${v('mode', 'layer_rewind')} works on channels, not with ${v('ranking', 'threshold')}`;
  if (s.mode === 'random_noise' && s.std === 0) return `${v('mode', 'random_noise')} needs ${n('std')} S > 0 (with 0 it adds nothing; the original used 0.02, 0.01, 0.005)`;
  if (s.mode === 'random_init' && s.std === 0) return `${v('mode', 'random_init')} needs ${n('std')} S > 0 (with 0 it is mode zero; the original used 0.02, 0.15, 0.1)`;
  if (isRewindMode(s.mode) && s.rewindEpochs === 0 && !o.rewindCheckpoint) {
    return `${v('mode', s.mode)} needs ${n('rewindEpochs')} N > 0 (with 0 it copies the weights onto themselves) or a rewind checkpoint`;
  }
  if (s.ranking === 'threshold' && s.dropoutP === 1) return `${v('dropoutP', 1)} drops every selected weight: give ${n('dropoutP')} Q < 1`;
  if (s.ranking === 'threshold' && s.fraction === 0 && !s.faithfulThreshold) return `${v('ranking', 'threshold')} with ${v('fraction', 0)} selects no weight: give ${n('fraction')} P > 0`;
  return null;
}

/**
 * Runs one setting on a prepared base and writes its result folder. result.json is written last, so
 * its presence marks a finished setting (what a restarted sweep skips).
 * @throws UsageError for options that do not fit (rewind without a source, threshold with layer_rewind).
 */
export async function runStudySetting(
  ctx: StudyContext,
  input: StudySettingInput & { out?: string; rewindCheckpoint?: string; quiet?: boolean },
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<StudyResult> {
  const { out: outOpt, rewindCheckpoint, quiet, ...rest } = input;
  // said once per base, before its first setting
  for (const w of ctx.warnings.splice(0)) log(`warning: ${w}`);
  for (const n of ctx.notes.splice(0)) log(`note: ${n}`);
  const s = resolveStudySetting(rest);
  const random = isRandomMode(s.mode);
  const { repeats, distribution } = s;
  const rewindFile = rewindCheckpoint ?? ctx.base.rewindCheckpoint;
  const problem = settingProblem(s, { rewindCheckpoint: rewindFile !== undefined });
  if (problem) throw new UsageError(problem);
  const ignored = Object.keys(rest).filter((k) => (rest as Record<string, unknown>)[k] !== undefined && !settingApplies(k, s, { rewindCheckpoint: rewindFile !== undefined }));
  if (ignored.length && !quiet) log(`warning: ${ignored.map(flagName).join(', ')} ${ignored.length > 1 ? 'do' : 'does'} not apply to --ranking ${s.ranking} --mode ${s.mode}: ignored`);
  const t0 = Date.now();
  const split = s.split;
  const model = ctx.model;
  const info = model.info();
  const numClasses = info.numClasses;
  const samples = ctx.ds.samples[split];
  if (samples.length === 0) throw new SpurmemError(`${ctx.ds.metadataFile}: the ${split} split is empty`);
  const timing = { data_seconds: 0, compute_seconds: 0, evaluations: 0 };
  const base = await unmodifiedOf(ctx, split, timing);
  const src = isRewindMode(s.mode) ? await rewindSource(ctx, s, { rewindCheckpoint }) : null;
  const srcPath = src ? stateDictPath(src.ck) : undefined;
  if (src && rewindFile && s.rewindEpochs === 0) {
    // name the result after the distance in epochs that the two checkpoints record, when they do
    const epochOf = (ck: NativeCheckpoint) => (ck.keys([]).includes('epoch') ? (ck.toObject(['epoch']) as unknown) : undefined);
    const a = epochOf(ctx.checkpoint);
    const b = epochOf(src.ck);
    if (typeof a === 'number' && typeof b === 'number' && a > b) s.rewindEpochs = a - b;
  }

  // ---- ranking: blocks of channels (or one threshold block)
  const plans: { source: number | null; channels: Channel[]; skipped?: string }[] = [];
  if (s.ranking === 'largest') {
    const cands = candidateParams(info, 'largest').map((p) => p.name);
    plans.push({ source: null, channels: topChannels(model.channelNorms(cands), cands, s.topK) });
  } else if (s.ranking === 'activated') {
    // each source group is its own block; one that cannot rank is reported and the others run
    const cands = candidateParams(info, 'activated').map((p) => p.name);
    const probs = info.head === 'softmax' ? base.outputs : softmaxRows(base.outputs, numClasses);
    const groups = samples.map((x) => x.group);
    const trueClass = samples.map((x) => targetIndex(x.y, ctx.labelOrder));
    for (let g = 0; g < ctx.ds.groupNames.length; g++) {
      const pos = poorestSamples(groups, trueClass, probs, numClasses, g, s.poorestLimit);
      if (pos.length === 0) {
        plans.push({ source: g, channels: [], skipped: `group ${g}: no samples in the ${split} split` });
        continue;
      }
      const chosen = pos.map((i) => samples[i]);
      const b = await batchOf(ctx, chosen);
      const targets = Int32Array.from(b.samples, (x) => targetIndex(x.y, ctx.labelOrder));
      const grads = await model.gradients({ images: b.images, shape: b.shape }, { targets, names: cands, train: false, loss: s.activatedLoss });
      const problem = rankingProblem({
        group: g,
        k: s.topK,
        positive: positiveChannels(grads.norms, cands),
        probsOfTrue: pos.map((i) => probs[i * numClasses + trueClass[i]]),
        groupSize: groups.filter((x) => x === g).length,
        softmaxHead: info.head === 'softmax',
        loss: s.activatedLoss,
      });
      if (problem) {
        plans.push({ source: g, channels: [], skipped: problem });
        continue;
      }
      // the logits loss may scale its gradients by 2^scaleLog2 against underflow: report true norms
      const unscale = 2 ** -grads.scaleLog2;
      plans.push({ source: g, channels: topChannels(grads.norms, cands, s.topK).map((c) => ({ ...c, value: c.value * unscale })) });
    }
    const skipped = plans.filter((p) => p.skipped);
    if (skipped.length === plans.length) {
      throw new SpurmemError(`--ranking activated could not rank channels for any group on the ${split} split:\n  ${skipped.map((p) => p.skipped).join('\n  ')}`);
    }
    if (!quiet) for (const p of skipped) log(`warning: ${p.skipped}: block skipped`);
  } else {
    plans.push({ source: null, channels: [] });
  }

  // ---- repeats: modify, evaluate, restore in place
  const thresholdNames = candidateParams(info, 'threshold').map((p) => p.name);
  const blocks: StudyBlock[] = [];
  for (let bi = 0; bi < plans.length; bi++) {
    const plan = plans[bi];
    if (plan.skipped) {
      blocks.push(summarizeBlock(base.metrics, { source_group: plan.source, status: 'skipped', reason: plan.skipped, channels: [], seeds: [], repeats: [] }));
      continue;
    }
    const touched =
      s.ranking === 'threshold'
        ? s.faithfulThreshold
          ? info.parameters.map((p) => p.name)
          : thresholdNames
        : [...new Set(plan.channels.map((c) => c.name))];
    const snap = model.snapshot(touched);
    const repeatsOut: GroupMetrics[] = [];
    const seeds: number[] = [];
    let thresholdInfo: StudyBlock['threshold'];
    try {
      for (let r = 0; r < repeats; r++) {
        const seed = repeatSeed(s.seed, bi, r);
        seeds.push(seed);
        if (s.ranking === 'threshold') {
          const t = await model.modifyThreshold({
            names: thresholdNames,
            fraction: s.fraction,
            smallest: s.smallest,
            dropoutP: s.dropoutP,
            mode: s.mode as Exclude<ModificationMode, 'layer_rewind'>,
            std: s.std,
            seed,
            distribution,
            faithful: s.faithfulThreshold,
            source: src?.ck,
            sourcePath: srcPath,
          });
          thresholdInfo = t;
        } else {
          await model.modifyChannels({
            edits: plan.channels.map((c) => ({ name: c.name, index: c.index })),
            mode: s.mode,
            std: s.std,
            seed,
            source: src?.ck,
            sourcePath: srcPath,
          });
        }
        const ev: Awaited<ReturnType<typeof evaluateSplit>> = await evaluateSplit(model, ctx.ds, split, {
          resolution: ctx.resolution,
          resize: ctx.resize,
          batchSize: ctx.base.batchSize,
          cache: ctx.cache,
          labelOrder: ctx.labelOrder,
          skipBadImages: ctx.base.skipBadImages,
        });
        repeatsOut.push(ev.metrics);
        timing.data_seconds += ev.dataSeconds;
        timing.compute_seconds += ev.computeSeconds;
        timing.evaluations += 1;
        model.restore(snap);
        if (!quiet) log(`${s.ranking}/${s.mode}${plan.source !== null ? ` group ${plan.source}` : ''} repeat ${r + 1}/${repeats}: ${accuracyLine(ev.metrics)}`);
      }
    } finally {
      model.restore(snap);
      model.releaseSnapshot(snap);
    }
    blocks.push(summarizeBlock(base.metrics, { source_group: plan.source, status: 'ran', reason: null, channels: plan.channels, ...(thresholdInfo ? { threshold: thresholdInfo } : {}), seeds, repeats: repeatsOut }));
  }

  // ---- outputs
  const fileName = originalFileName(s);
  // a study resized with sharp gets its own default folder: its numbers are not the PIL pipeline's
  const resizeSuffix = ctx.resize === 'sharp' ? '_resize-sharp' : '';
  const folder = resolve(outOpt ?? join(ctx.defaultOut, `${split}_${fileName.replace(/\.txt$/, '')}${folderSuffix(s)}${resizeSuffix}`));
  const result: StudyResult = {
    setting: s,
    checkpoint: ctx.checkpointPath,
    rewind_checkpoint: src?.path ?? null,
    split,
    resize: ctx.resize,
    unmodified: base.metrics,
    train_group_counts: [...ctx.ds.trainGroupCounts],
    blocks,
    file: join(folder, fileName),
    out: folder,
    seconds: (Date.now() - t0) / 1000,
    timing,
  };
  writeFileAtomic(result.file, originalText(result));
  writeFileAtomic(join(folder, 'result.csv'), resultCsv(result));
  for (let bi = 0; bi < blocks.length; bi++) {
    const b = blocks[bi];
    if (b.status === 'skipped') continue;
    const after: GroupMetrics = {
      ...base.metrics,
      groups: base.metrics.groups.map((g, gi) => ({ ...g, accuracy: b.groups[gi].mean })),
    };
    const title = `${s.ranking} ${s.mode}${random ? ` std ${s.std}, ${repeats} repeats` : ''}${b.source_group !== null ? `, gradients of group ${b.source_group}` : ''} (${split})`;
    await writeBeforeAfterPlot(join(folder, blocks.length > 1 ? `groups_before_after_block${bi}` : 'groups_before_after'), title, base.metrics, after, b.groups.map((g) => g.std));
  }
  writeJsonAtomic(join(folder, 'result.json'), result);
  return result;
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

/** One CSV row per (block, group or summary, statistic). */
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
  });
  return rows.join('\n') + '\n';
}

/**
 * Prepares a base and runs one setting (what `spurmem study` does). Progress and warnings go to `log`
 * (a function, or `{ log }` as train() takes it; default: stderr).
 * @throws UsageError for options that do not fit; SpurmemError for unreadable files and data.
 */
export async function study(input: StudyInput, hooks?: ((line: string) => void) | { log?: (line: string) => void }): Promise<StudyResult> {
  const log = typeof hooks === 'function' ? hooks : hooks?.log;
  const baseKeys = Object.keys(studyBaseSchema.shape);
  const baseIn: Record<string, unknown> = {};
  const settingIn: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    if (baseKeys.includes(k) && k !== 'rewindCheckpoint') baseIn[k] = v;
    else settingIn[k] = v;
  }
  const ctx = await prepareStudy(baseIn as StudyBaseInput);
  return runStudySetting(ctx, { ...(settingIn as StudySettingInput), rewindCheckpoint: input.rewindCheckpoint }, log);
}
