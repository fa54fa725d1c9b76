/**
 * ERM training (`spurmem train`): the original SpuriousCorrelationPretrainingErm.py (original-behaviour
 * §3.1) done properly. Per epoch: one shuffled, augmented pass over the training split (loss = batch mean
 * of the per-sample cross-entropy times the sample weights, one optimizer step per batch), the scheduler
 * stepped with the epoch's summed loss, then train/val/test evaluated with the eval transform, in order,
 * all after the same epoch (Q19, Q20), a checkpoint `epoch_<e>_checkpoints.pth.tar` and one metrics line.
 *
 * `algorithm` picks the baseline: erm; groupdro (src/train/groupdro.ts: the group weights live across
 * batches and in each checkpoint's `spurmem.groupdro`, and resume from there); reweight (N/(G*n_g) per
 * sample); subsample (SubpopBench's SUBG draw, src/train/sampling.ts).
 */
import { openDataset, countsTable, groupCounts, sharedImageCache } from '../data/index.js';
import type { GroupMetrics } from '../metrics/groups.js';
import type { Sample } from '../data/types.js';
import { readCheckpoint } from '../checkpoint.js';
import { readCheckpointMeta } from '../checkpoint-meta.js';
import { GroupDro, groupDroStep, type GroupDroSaved } from './groupdro.js';
import { subsampleGroups } from './sampling.js';
import { createModel, setThreads } from '../model/index.js';
import { addon } from '../native.js';
import { SpurmemError, UsageError } from '../util/errors.js';
import { batchTargets, groupWeights } from './batch-targets.js';
import { recordInitial } from './evaluate-all.js';
import { intervalOptions } from '../metrics/intervals.js';
import { resumeRun, type RunHooks } from './run-start.js';
import { describePretrained, loadPretrained } from '../weights.js';
import { runEpochs } from './loop.js';
import { RunDir, bestEpoch, versions, withRunOptions, RESUMABLE_FIELDS } from './run-dir.js';
import { makeScheduler, type SchedulerState } from './schedule.js';
import { resolveTrainOptions, type TrainConfig, type TrainInput } from './options.js';

/**
 * What a caller inside the package (JTT) adds to a training run: its own training list, and entries of
 * config.json that say where it came from.
 */
export interface TrainExtras {
  /** The samples of each epoch in place of the training split. */
  trainSamples?: readonly Sample[];
  /** Recorded under config.json's `resolved`. */
  resolved?: Record<string, unknown>;
}

/** What train() returns (and `spurmem train --json` prints). */
export interface TrainSummary {
  out: string;
  epochs: number;
  resumed_from: number | null;
  final: { epoch: number; train: GroupMetrics; val: GroupMetrics; test: GroupMetrics };
  best: { epoch: number; val_worst_group_accuracy: number | null; test_worst_group_accuracy: number | null; test_average_accuracy: number | null };
  seconds: number;
}

/** Options that may change when a run is resumed. */
const RESUMABLE = [...RESUMABLE_FIELDS, 'amp', 'channelsLast'];

/**
 * The warning for a run that starts from random weights with Adam at the original's learning rate
 * (5e-6, or anything up to 1e-5): the original fine-tunes ImageNet weights at that rate, and from scratch
 * a few epochs learn next to nothing. undefined when it does not apply (pretrained, SGD, a larger lr, or
 * a resumed run).
 */
export function scratchWarning(cfg: Pick<TrainConfig, 'pretrained' | 'optimizer' | 'lr'>, start: number): string | undefined {
  if (cfg.pretrained || cfg.optimizer !== 'adam' || cfg.lr > 1e-5 || start > 0) return undefined;
  return (
    `training from random weights with Adam at lr ${cfg.lr.toExponential()}: that is the original's rate for fine-tuning ImageNet weights, ` +
    `and from scratch a few epochs learn next to nothing. Pass --pretrained FILE (e.g. torchvision's resnet50-19c8e357.pth), ` +
    `or train from scratch as the demo does: --lr 1e-3 --scheduler cosine --head linear --label-order natural`
  );
}

/**
 * Trains a model by ERM and writes the run folder (see RunDir). Resumes from the last complete epoch
 * with `resume` (model, optimizer, scheduler; shuffling and augmentation are seeded by (seed, epoch)).
 * @throws UsageError for bad options; SpurmemError for bad data, a folder holding another run, or a
 *   NaN/infinite loss (naming the epoch and batch; the last good checkpoint stays).
 */
export async function train(input: TrainInput, hooks: RunHooks = {}): Promise<TrainSummary> {
  return trainWith(input, hooks, {});
}

/**
 * {@link train} with a training list of the caller's (JTT's final model).
 * @throws as train()
 */
export async function trainWith(input: TrainInput, hooks: RunHooks, extras: TrainExtras): Promise<TrainSummary> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const cfg: TrainConfig = resolveTrainOptions(withRunOptions(input, 'train'));
  const t0 = Date.now();
  const threads = setThreads(cfg.threads, { decodeThreads: cfg.decodeThreads });
  addon().checkDevice(cfg.device);
  if (cfg.amp && !cfg.device.startsWith('cuda')) throw new UsageError('--amp (bf16 autocast) needs --device cuda');
  // a folder holding another run is refused before the dataset is read
  const run = new RunDir(cfg.out);
  const options: Record<string, unknown> = { ...cfg };
  const start = run.prepare(options, { resume: cfg.resume, force: cfg.force, mayChange: RESUMABLE, command: 'train' });
  if (run.note) log(run.note);
  const scratch = scratchWarning(cfg, start);
  if (scratch) log(`warning: ${scratch}`);
  const ds = await openDataset({ dataset: cfg.dataset, root: cfg.root, target: cfg.target, attribute: cfg.attribute, skipBadImages: cfg.skipBadImages });
  if (!cfg.quiet) log(countsTable(ds));
  for (const w of ds.warnings) log(`warning: ${w}`);
  if (ds.samples.train.length === 0) throw new SpurmemError(`${ds.metadataFile}: the train split is empty`);
  if (start >= cfg.epochs) log(`${run.dir}: all ${cfg.epochs} epochs are done; nothing to train (raise --epochs to continue)`);
  run.writeConfig({
    command: 'train',
    options,
    resolved: { threads, label_order: cfg.labelOrder, root: ds.root, metadata: ds.metadataFile, group_names: ds.groupNames, ...(extras.resolved ?? {}) },
    dataset: { kind: ds.kind, counts: Object.fromEntries((['train', 'val', 'test'] as const).map((s) => [s, groupCounts(ds.samples[s])])) },
    versions: versions(),
    device: cfg.device,
    created: new Date().toISOString(),
  });

  const model = createModel({
    arch: cfg.arch,
    head: cfg.head,
    device: cfg.device,
    seed: cfg.seed,
    imageSize: cfg.resolution,
    lnEps: cfg.vitLnEps ?? 1e-6,
    amp: cfg.amp ? 'bf16' : '',
    channelsLast: cfg.channelsLast,
  });
  model.setOptimizer({ type: cfg.optimizer, lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay });
  let schedulerState: SchedulerState | undefined;
  if (start >= cfg.epochs) {
    // every epoch is done: nothing to load or train, the summary comes from metrics.jsonl
  } else if (start > 0) {
    schedulerState = await resumeRun(model, run, start, log);
  } else if (cfg.pretrained) {
    log(describePretrained(await loadPretrained(model, cfg.pretrained)));
  }
  const scheduler = makeScheduler(cfg.scheduler, cfg.lr, { epochs: cfg.epochs, patience: cfg.patience }, schedulerState);
  model.setLearningRate(scheduler.lr);

  const cache = sharedImageCache(cfg.cacheMb * 1024 * 1024);
  const evalOpts = { resolution: cfg.resolution, resize: cfg.resize, batchSize: cfg.evalBatchSize ?? cfg.batchSize, cache, labelOrder: cfg.labelOrder, skipBadImages: cfg.skipBadImages, intervals: intervalOptions(cfg) };
  if (start === 0 && cfg.evalInitial) await recordInitial(model, ds, run, { ...evalOpts, label: 'initial' }, log);

  const train = extras.trainSamples ?? ds.samples.train;
  const algorithm = cfg.algorithm;
  // --reweight: the original's N/n_g; --algorithm reweight: N/(G*n_g), mean weight 1 over the split
  const weights = cfg.reweight || algorithm === 'reweight' ? groupWeights(train) : undefined;
  const scale = algorithm === 'reweight' ? 1 / new Set(train.map((s) => s.group)).size : 1;
  let dro: GroupDro | undefined;
  if (algorithm === 'groupdro') {
    const counts = groupCounts(train);
    if (cfg.droAdjustment > 0 && counts.some((c) => c === 0)) {
      throw new SpurmemError(`--dro-adjustment ${cfg.droAdjustment}: the training split has no sample of group ${counts.findIndex((c) => c === 0)} (C/sqrt(0))`);
    }
    let saved: GroupDroSaved | undefined;
    if (start > 0 && start < cfg.epochs) {
      const meta = readCheckpointMeta(await readCheckpoint(run.checkpoint(start - 1)));
      saved = meta.groupdro as GroupDroSaved | undefined;
      if (!saved) throw new SpurmemError(`${run.checkpoint(start - 1)}: no groupdro entry in its spurmem metadata, so the group weights cannot be resumed`);
    }
    dro = new GroupDro(counts, cfg.droEta, cfg.droAdjustment, saved);
    if (saved) log(`groupdro: resuming the group weights q = [${Array.from(dro.q, (v) => v.toFixed(4)).join(', ')}]`);
  }
  let drawn: readonly Sample[] | undefined;
  const epochSamples =
    algorithm === 'subsample'
      ? (epoch: number) => {
          if (!drawn || cfg.subsampleRedraw) drawn = subsampleGroups(train, cfg.seed, cfg.subsampleRedraw ? epoch : 0);
          return drawn;
        }
      : extras.trainSamples
        ? () => train
        : undefined;
  await runEpochs({
    model, ds, run, scheduler, start, log, signal: hooks.signal,
    training: cfg,
    eval: evalOpts,
    recorded: cfg,
    trainSamples: epochSamples,
    checkpointExtra: dro ? () => ({ groupdro: dro.saved() }) : undefined,
    step: async (b) => {
      const targets = batchTargets(b.samples, cfg.labelOrder);
      if (dro) return groupDroStep(model, dro, b, targets, Int32Array.from(b.samples, (s) => s.group));
      const w = weights ? Float32Array.from(b.samples, (s) => (weights.get(s.group) ?? 1) * scale) : undefined;
      return model.trainStep({ images: b.images, shape: b.shape }, { targets, weights: w });
    },
  });
  await run.writeSummaries();
  const recs = run.records().filter((r) => r.epoch >= 0);
  const last = recs[recs.length - 1];
  const best = bestEpoch(recs)!;
  if (!last) throw new SpurmemError(`${run.dir}: no epoch was trained (epochs ${cfg.epochs})`);
  return {
    out: run.dir,
    epochs: cfg.epochs,
    resumed_from: start > 0 ? start - 1 : null,
    final: { epoch: last.epoch, train: last.train, val: last.val, test: last.test },
    best: {
      epoch: best.epoch,
      val_worst_group_accuracy: best.val.worst_group_accuracy,
      test_worst_group_accuracy: best.test.worst_group_accuracy,
      test_average_accuracy: best.test.average_accuracy,
    },
    seconds: (Date.now() - t0) / 1000,
  };
}

