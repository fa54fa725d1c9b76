/**
 * Finetuning with a pruned sub-network (`spurmem finetune-prune`): the paper's Part II, the original
 * SpuriousCorrelationFinetuningPruning.py (original-behaviour §3.5, §6; quirks Q12, Q13, Q18, Q24).
 *
 * Each epoch: the mask is refreshed from the current weights (every criterion's mask AND-ed), then per
 * batch: f1 = dense output (no gradient), f2 = masked output, loss = NT-Xent(f1, f2) + NT-Xent(f1', sg(f2))
 * + L * CE(f1', y) with f1' the dense output with gradient (native ModelHandle::FinetuneStep), one Adam
 * step. The mask multiplies weights in the forward pass only; checkpoints hold the dense weights.
 */
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { countsTable, sharedImageCache, type ImageCache, loadBatches, openDataset } from '../data/index.js';
import type { Dataset, ImageBatch, ResizeMethod } from '../data/index.js';
import type { Sample } from '../data/types.js';
import { evaluateSplit } from '../eval/evaluate-split.js';
import { targetIndex, type GroupMetrics, type LabelOrder } from '../metrics/groups.js';
import { stateDictPath } from '../checkpoint.js';
import { createModel, loadWeights, setThreads, type Model } from '../model/index.js';
import { addon } from '../native.js';
import { ceilCount, poorestSamples, positiveChannels, prunableNames, rankingProblem, softmaxRows, topChannels } from '../neurons/rank.js';
import { BASE_KEYS, resolveBase } from '../base.js';
import { schemaFields } from '../options/derive.js';
import { INTERVAL_KEYS, RUN_FOLDER_KEYS } from '../options/table.js';
import { SpurmemError, optionsError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/files.js';
import { batchTargets } from './batch-targets.js';
import { recordInitial } from './evaluate-all.js';
import { intervalOptions } from '../metrics/intervals.js';
import { resumeRun, type RunHooks } from './run-start.js';
import { runEpochs } from './loop.js';
import { RunDir, bestEpoch, versions, withRunOptions, RESUMABLE_FIELDS } from './run-dir.js';
import { makeScheduler, type SchedulerState } from './schedule.js';

export { PRUNE_CRITERIA, type PruneCriterion } from '../options/enums.js';

/** Options of `finetunePrune()` / `spurmem finetune-prune`, with the original's defaults (§6: Adam 2e-4, 21 epochs, batch 100, t 0.5, CE weight 0.2, 1 % smallest weights). */
export const finetuneSchema = z
  .object(
    schemaFields('finetune', [
      ...BASE_KEYS, 'prune', 'pruneFraction', 'pruneChannelFraction', 'pruneTopK', 'poorestLimit', 'temperature', 'ceWeight', 'bnUpdate', 'epochs', 'lr',
      'weightDecay', 'batchSize', 'evalBatchSize', 'patience', 'scheduler', 'augment', 'seed', 'device', 'threads', 'decodeThreads', ...INTERVAL_KEYS, ...RUN_FOLDER_KEYS,
    ]),
  )
  .strict();

/** Input of `finetunePrune()`: a base (run or checkpoint + dataset) and the options of {@link finetuneSchema}. */
export type FinetuneInput = z.input<typeof finetuneSchema>;
/** Options after defaults. */
export type FinetuneConfig = z.output<typeof finetuneSchema>;

/** What `finetunePrune()` returns (`--json`): the run folder, the starting and the selected epoch's metrics, wall time in seconds. */
export interface FinetuneSummary {
  out: string;
  epochs: number;
  resumed_from: number | null;
  start: { checkpoint: string; test: GroupMetrics; val: GroupMetrics };
  selected: { epoch: number; criterion: string; test: GroupMetrics; val: GroupMetrics };
  seconds: number;
}

const RESUMABLE = RESUMABLE_FIELDS;

/**
 * Rebuilds the mask from the current weights: each criterion's mask, AND-ed (Q13: the original's reset
 * wiped the magnitude mask).
 * - magnitude-smallest / -largest: exactly ceil(P*N) pooled weights by |w| (ties to the lower index);
 * - largest-channels: the top channels by weight L2 norm;
 * - activated: the top channels by gradient L2 norm of the mean loss on the `poorestLimit` training samples
 *   the dense model fits worst (highest loss first; the original sorted ascending, Q12), eval mode.
 * Channel criteria take `pruneTopK` channels, else ceil(pruneChannelFraction * channels).
 */
export async function refreshMask(
  model: Model,
  cfg: Pick<FinetuneConfig, 'prune' | 'pruneFraction' | 'pruneChannelFraction' | 'pruneTopK' | 'poorestLimit'>,
  ctx: { ds: Dataset; resolution: number; resize: ResizeMethod; labelOrder: LabelOrder; cache: ImageCache; evalBatchSize: number; skipBadImages: boolean },
): Promise<Record<string, number>> {
  model.clearMasks();
  const names = prunableNames(model.info());
  const info = model.info();
  const totalChannels = info.parameters.filter((p) => names.includes(p.name)).reduce((a, p) => a + p.shape[0], 0);
  const k = cfg.pruneTopK ?? ceilCount(cfg.pruneChannelFraction, totalChannels);
  for (const c of cfg.prune) {
    if (c === 'magnitude-smallest' || c === 'magnitude-largest') {
      await model.maskMagnitude({ names, fraction: cfg.pruneFraction, largest: c === 'magnitude-largest' });
    } else if (c === 'largest-channels') {
      if (k > 0) model.maskChannels({ channels: topChannels(model.channelNorms(names), names, k) });
    } else {
      const train = ctx.ds.samples.train;
      const ev = await evaluateSplit(model, ctx.ds, 'train', {
        resolution: ctx.resolution,
        resize: ctx.resize,
        batchSize: ctx.evalBatchSize,
        cache: ctx.cache,
        labelOrder: ctx.labelOrder,
        skipBadImages: ctx.skipBadImages,
      });
      const probs = info.head === 'softmax' ? ev.outputs : softmaxRows(ev.outputs, info.numClasses);
      const trueClass = train.map((s) => targetIndex(s.y, ctx.labelOrder));
      const pos = poorestSamples(train.map(() => 0), trueClass, probs, info.numClasses, 0, cfg.poorestLimit);
      const chosen: Sample[] = pos.map((i) => train[i]);
      let batch: ImageBatch | undefined;
      for await (const b of loadBatches(chosen, { resolution: ctx.resolution, resize: ctx.resize, batchSize: chosen.length, cache: ctx.cache, skipBadImages: ctx.skipBadImages })) batch = b;
      if (!batch) throw new SpurmemError('activated pruning: no training images');
      const g = await model.gradients({ images: batch.images, shape: batch.shape }, { targets: batchTargets(batch.samples, ctx.labelOrder), names, train: false });
      // a memorized softmax head can pass no gradient at all: say why, as the study does
      const problem = rankingProblem({
        group: 0,
        k,
        positive: positiveChannels(g.norms, names),
        probsOfTrue: pos.map((i) => probs[i * info.numClasses + trueClass[i]]),
        groupSize: train.length,
        softmaxHead: info.head === 'softmax',
        loss: 'probabilities',
        subject: '--prune activated on the training split',
        remedy: 'a study with --activated-loss logits can still rank channels',
      });
      if (problem) throw new SpurmemError(problem);
      if (k > 0) model.maskChannels({ channels: topChannels(g.norms, names, k) });
    }
  }
  const stats = model.maskStats();
  return Object.fromEntries(Object.entries(stats).map(([n, v]) => [n, Math.round(v * 1e4) / 1e4]));
}

/**
 * The settings part of a default finetune-prune folder: the criteria and their size, then every option
 * that differs from the original's default (temperature, CE weight, lr, batch size, BatchNorm update,
 * seed, ...), so that runs of different settings never share a folder. `--epochs` is left out: a run
 * continued with more epochs (`--resume`) stays in its folder.
 */
export function finetuneSettingsName(cfg: FinetuneConfig): string {
  const d = finetuneSchema.parse({});
  const parts: string[] = [[...new Set(cfg.prune)].join('+')];
  if (cfg.prune.some((c) => c.startsWith('magnitude'))) parts.push(`p${cfg.pruneFraction}`);
  if (cfg.prune.some((c) => c === 'activated' || c === 'largest-channels')) parts.push(cfg.pruneTopK !== undefined ? `k${cfg.pruneTopK}` : `c${cfg.pruneChannelFraction}`);
  if (cfg.prune.includes('activated') && cfg.poorestLimit !== d.poorestLimit) parts.push(`poorest${cfg.poorestLimit}`);
  if (cfg.temperature !== d.temperature) parts.push(`t${cfg.temperature}`);
  if (cfg.ceWeight !== d.ceWeight) parts.push(`ce${cfg.ceWeight}`);
  if (cfg.lr !== d.lr) parts.push(`lr${cfg.lr}`);
  if (cfg.weightDecay !== d.weightDecay) parts.push(`wd${cfg.weightDecay}`);
  if (cfg.batchSize !== d.batchSize) parts.push(`bs${cfg.batchSize}`);
  if (cfg.bnUpdate !== d.bnUpdate) parts.push(`bn-${cfg.bnUpdate}`);
  if (cfg.scheduler !== d.scheduler) parts.push(cfg.scheduler);
  if (cfg.scheduler === 'plateau' && cfg.patience !== d.patience) parts.push(`patience${cfg.patience}`);
  if (!cfg.augment) parts.push('no-augment');
  if (cfg.seed !== d.seed) parts.push(`seed${cfg.seed}`);
  if (cfg.resize === 'sharp') parts.push('resize-sharp');
  return parts.join('_');
}

/**
 * Default run folder of a finetune-prune: `<run>/finetune_prune/epoch<e>_<settings>` from a run folder,
 * `experiments/finetune_prune/<checkpoint name>/<settings>` from a checkpoint (as study folders are named).
 */
export function defaultFinetuneOut(cfg: FinetuneConfig, base: { runDir: string | null; epoch: number | null; checkpointPath: string }): string {
  const name = finetuneSettingsName(cfg);
  if (base.runDir) return join(base.runDir, 'finetune_prune', `epoch${base.epoch}_${name}`);
  const stem = basename(base.checkpointPath).replace(/\.pth(\.tar)?$/, '');
  return join('experiments', 'finetune_prune', stem, name);
}

/**
 * Finetunes an ERM checkpoint with a pruned sub-network and writes a run folder like `spurmem train`'s,
 * plus `pruned_layers_epoch<e>.json` (share of each layer masked) and the three loss lists.
 * @throws UsageError for bad options; SpurmemError for bad data or a diverging loss.
 */
export async function finetunePrune(input: FinetuneInput, hooks: RunHooks = {}): Promise<FinetuneSummary> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const parsed = finetuneSchema.safeParse(withRunOptions(input, 'finetune-prune'));
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const cfg = parsed.data;
  // duplicates change nothing (the masks are AND-ed); options of criteria that are not chosen are named
  cfg.prune = [...new Set(cfg.prune)];
  const channelCriteria = cfg.prune.some((c) => c === 'activated' || c === 'largest-channels');
  if (cfg.pruneTopK !== undefined && !channelCriteria) log(`warning: --prune-top-k applies to the channel criteria (activated, largest-channels), not to ${cfg.prune.join(',')}: ignored`);
  const t0 = Date.now();
  const threads = setThreads(cfg.threads, { decodeThreads: cfg.decodeThreads });
  addon().checkDevice(cfg.device);
  const base = await resolveBase(cfg);
  const out = resolve(cfg.out ?? defaultFinetuneOut(cfg, base));
  const run = new RunDir(out);
  const options: Record<string, unknown> = {
    ...cfg,
    out,
    run: base.runDir ?? undefined,
    checkpoint: base.checkpointPath,
    dataset: base.dataset,
    root: base.root,
    arch: base.arch,
    head: base.head,
    labelOrder: base.labelOrder,
    resolution: base.resolution,
    resize: base.resize,
    vitLnEps: base.lnEps,
  };
  // a folder holding another run is refused before the dataset is read
  const start = run.prepare(options, { resume: cfg.resume, force: cfg.force, mayChange: RESUMABLE, command: 'finetune-prune' });
  if (run.note) log(run.note);
  const ds = await openDataset({ dataset: base.dataset, root: base.root, target: base.target, attribute: base.attribute, skipBadImages: cfg.skipBadImages });
  if (!cfg.quiet) log(countsTable(ds));
  for (const w of [...base.warnings, ...ds.warnings]) log(`warning: ${w}`);
  for (const n of base.notes) log(`note: ${n}`);
  if (start >= cfg.epochs) log(`${run.dir}: all ${cfg.epochs} epochs are done; nothing to train (raise --epochs to continue)`);
  run.writeConfig({
    command: 'finetune-prune',
    options,
    resolved: { threads, root: ds.root, group_names: ds.groupNames },
    versions: versions(),
    device: cfg.device,
    created: new Date().toISOString(),
  });
  const model = createModel({ arch: base.arch, head: base.head, device: cfg.device, imageSize: base.resolution, lnEps: base.lnEps, seed: cfg.seed });
  await loadWeights(model, base.checkpoint, { strict: true, path: stateDictPath(base.checkpoint), archReason: base.archReason });
  model.setOptimizer({ type: 'adam', lr: cfg.lr, weightDecay: cfg.weightDecay });
  let schedulerState: SchedulerState | undefined;
  const cache = sharedImageCache(cfg.cacheMb * 1024 * 1024);
  const evalBatchSize = cfg.evalBatchSize ?? cfg.batchSize;
  const evalOpts = { resolution: base.resolution, resize: base.resize, batchSize: evalBatchSize, cache, labelOrder: base.labelOrder, skipBadImages: cfg.skipBadImages, intervals: intervalOptions(cfg) };
  if (start >= cfg.epochs) {
    // every epoch is done: nothing to load or train, the summary comes from metrics.jsonl
  } else if (start > 0) schedulerState = await resumeRun(model, run, start, log);
  else await recordInitial(model, ds, run, { ...evalOpts, label: 'starting' }, log);
  const scheduler = makeScheduler(cfg.scheduler, cfg.lr, { epochs: cfg.epochs, patience: cfg.patience }, schedulerState);
  const metaCfg = { arch: base.arch, head: base.head, labelOrder: base.labelOrder, resolution: base.resolution, dataset: base.dataset, seed: cfg.seed };
  await runEpochs({
    model, ds, run, scheduler, start, log, signal: hooks.signal,
    training: cfg,
    eval: evalOpts,
    recorded: metaCfg,
    extraLossLists: { ntxent: 'training_ntxent_loss_list.json', ce: 'training_mse_loss_list.json' },
    beforeEpoch: async (epoch) => {
      const stats = await refreshMask(model, cfg, { ds, resolution: base.resolution, resize: base.resize, labelOrder: base.labelOrder, cache, evalBatchSize, skipBadImages: cfg.skipBadImages });
      writeJsonAtomic(run.path(`pruned_layers_epoch${epoch}.json`), stats);
    },
    step: async (b) => {
      const r = await model.finetuneStep(
        { images: b.images, shape: b.shape },
        { targets: batchTargets(b.samples, base.labelOrder), temperature: cfg.temperature, ceWeight: cfg.ceWeight, bnUpdate: cfg.bnUpdate },
      );
      return { loss: r.total, losses: { ntxent: r.ntxent, ce: r.ce } };
    },
  });
  model.clearMasks();
  await run.writeSummaries({ extraLossLists: { ntxent: 'training_ntxent_loss_list.json', ce: 'training_mse_loss_list.json' } });
  const recs = run.records();
  const first = recs.find((r) => r.epoch === -1);
  const best = bestEpoch(recs);
  if (!best || !first) throw new SpurmemError(`${run.dir}: no finished epoch`);
  return {
    out: run.dir,
    epochs: cfg.epochs,
    resumed_from: start > 0 ? start - 1 : null,
    start: { checkpoint: base.checkpointPath, test: first.test, val: first.val },
    selected: { epoch: best.epoch, criterion: 'best validation worst-group accuracy', test: best.test, val: best.val },
    seconds: (Date.now() - t0) / 1000,
  };
}
