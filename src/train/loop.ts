/**
 * The epoch loop shared by ERM training and finetune-prune: a shuffled, augmented pass over the training
 * split (one step per batch), the scheduler stepped with the epoch's summed loss, an evaluation of every
 * split with the eval transform, the checkpoint, one metrics line and the summaries.
 */
import { newCheckpointMeta, type CheckpointModel } from '../checkpoint-meta.js';
import type { Dataset, ImageBatch } from '../data/index.js';
import type { Sample } from '../data/types.js';
import type { Model } from '../model/index.js';
import { SpurmemError } from '../util/errors.js';
import { progress } from '../util/progress.js';
import { loadBatches } from '../data/index.js';
import { brief, evaluateAll, type EvalSettings } from './evaluate-all.js';
import type { RunDir } from './run-dir.js';
import type { Scheduler } from './schedule.js';

/** Least time between two renderings of a run's plots during training (ms); the text summaries are written every epoch. */
export const PLOT_INTERVAL_MS = 60_000;

/**
 * A training run stopped by its abort signal (a sweep's SIGTERM): the epoch in progress was dropped;
 * `lastCompleteEpoch` (-1: none) is on disk and a resumed run continues after it.
 */
export class RunInterrupted extends SpurmemError {
  constructor(
    readonly dir: string,
    readonly lastCompleteEpoch: number,
  ) {
    super(`${dir}: stopped by a signal ${lastCompleteEpoch >= 0 ? `after epoch ${lastCompleteEpoch}` : 'before its first epoch'}; --resume continues from there`, 143);
    this.name = 'RunInterrupted';
  }
}

export interface StepResult {
  /** The batch's loss (the value summed into the epoch loss). */
  loss: number;
  /** Other terms to sum and record (e.g. ntxent, ce). */
  losses?: Record<string, number>;
}

/** The options of a training command that the epoch loop reads (train and finetune-prune share them). */
export interface TrainingSettings {
  /** Epochs in all (the loop runs `start .. epochs-1`). */
  epochs: number;
  /** Training batch size. */
  batchSize: number;
  /** The original's training augmentation (random resized crop and flip), seeded by (seed, epoch). */
  augment: boolean;
  seed: number;
  /** Keep only the newest N epoch checkpoints and the best validation epoch's (default: all). */
  keepCheckpoints?: number;
}

export interface LoopOptions {
  model: Model;
  ds: Dataset;
  run: RunDir;
  scheduler: Scheduler;
  /** The first epoch to run (0, or the one after the last finished epoch when resuming). */
  start: number;
  /** The command's epochs, batch size, augmentation, seed and checkpoints to keep. */
  training: TrainingSettings;
  /** Evaluation after each epoch; its resolution, resize, cache, label order and bad-image policy serve the training batches too. */
  eval: EvalSettings;
  /** The model each checkpoint's `spurmem` entry records (with the scheduler's state). */
  recorded: CheckpointModel;
  /** One optimisation step on a batch. */
  step: (b: ImageBatch) => Promise<StepResult>;
  /**
   * The training samples of an epoch, in place of the whole training split (subsample: a group-balanced
   * draw; JTT: the split with its error set repeated). They are shuffled as the split would be.
   */
  trainSamples?: (epoch: number) => readonly Sample[];
  /** Entries added to each checkpoint's `spurmem` entry after the epoch (GroupDRO: its group weights). */
  checkpointExtra?: () => Record<string, unknown>;
  /** Runs before each epoch's training pass (finetune-prune refreshes its mask here). */
  beforeEpoch?: (epoch: number) => Promise<void>;
  extraLossLists?: Record<string, string>;
  log: (line: string) => void;
  /** Stops the loop at the next batch boundary (the epoch in progress is dropped): throws {@link RunInterrupted}. */
  signal?: AbortSignal;
}

/**
 * Runs epochs `start .. epochs-1`.
 * @throws SpurmemError on a NaN or infinite loss, naming the epoch and the batch; the last good
 *   checkpoint stays. RunInterrupted when `signal` was aborted (checked before each batch and after the
 *   epoch's evaluation; once its checkpoint is being written, the epoch is written whole).
 */
export async function runEpochs(o: LoopOptions): Promise<void> {
  const { epochs, batchSize, augment, seed, keepCheckpoints } = o.training;
  // A ResNet's layer4 maps are 1x1 at R <= 32: BatchNorm in training mode cannot estimate a variance from
  // one image there (0/0 puts NaN in its running statistics; PyTorch refuses such a batch). Such a batch
  // (the last one of an epoch, when the split leaves 1 image over) is left out, and said once.
  const { resolution, resize, cache, skipBadImages } = o.eval;
  const oneImageUnsafe = o.model.info().family === 'resnet' && resolution <= 32;
  let saidOneImage = false;
  const stopIfAsked = () => {
    if (o.signal?.aborted) throw new RunInterrupted(o.run.dir, o.run.lastCompleteEpoch());
  };
  let lastPlots = Date.now();
  for (let epoch = o.start; epoch < epochs; epoch++) {
    stopIfAsked();
    const lr = o.scheduler.lr;
    o.model.setLearningRate(lr);
    if (o.beforeEpoch) await o.beforeEpoch(epoch);
    const samples = o.trainSamples ? o.trainSamples(epoch) : o.ds.samples.train;
    const n = samples.length;
    const te = Date.now();
    let lossSum = 0;
    const extra: Record<string, number> = {};
    let batchNo = 0;
    const bar = progress(`epoch ${epoch} (${epoch + 1} of ${epochs})`, n);
    try {
      for await (const b of loadBatches(samples, {
        resolution,
        resize,
        batchSize,
        shuffle: true,
        seed,
        epoch,
        augment,
        // without augmentation the training images go through the eval transform: decode them once
        cache: augment ? undefined : cache,
        skipBadImages,
      })) {
        if (oneImageUnsafe && b.samples.length === 1) {
          if (!saidOneImage) {
            o.log(
              `note: a training batch of 1 image is left out each epoch (${n} images, batch size ${batchSize}): at ${resolution} px a ResNet's ` +
                'last feature maps are 1x1 and BatchNorm cannot estimate a variance from one image (PyTorch refuses such a batch); ' +
                'choose a batch size that does not leave 1 image over to use it',
            );
            saidOneImage = true;
          }
          bar.tick(1, {});
          continue;
        }
        stopIfAsked();
        const r = await o.step(b);
        if (!Number.isFinite(r.loss)) {
          throw new SpurmemError(
            `training diverged: loss ${r.loss} at epoch ${epoch} batch ${batchNo} (lr ${lr}); ` +
              (epoch > 0 && o.run.lastCompleteEpoch() >= 0
                ? `the last good checkpoint is ${o.run.checkpoint(o.run.lastCompleteEpoch())}`
                : 'no checkpoint of this run was written'),
          );
        }
        lossSum += r.loss;
        for (const [k, v] of Object.entries(r.losses ?? {})) extra[k] = (extra[k] ?? 0) + v;
        batchNo += 1;
        bar.tick(b.samples.length, { loss: r.loss.toFixed(4) });
      }
    } finally {
      bar.stop();
    }
    const seconds = (Date.now() - te) / 1000;
    o.scheduler.step(lossSum);
    const m = await evaluateAll(o.model, o.ds, o.eval);
    // a signal during the evaluation drops the epoch too (nothing of it is written yet)
    stopIfAsked();
    await o.model.save(o.run.checkpoint(epoch), { epoch, loss: lossSum, extra: { ...newCheckpointMeta(o.recorded, o.scheduler.state(), o.model), ...(o.checkpointExtra ? o.checkpointExtra() : {}) } });
    o.run.append({
      epoch,
      loss: lossSum,
      ...(Object.keys(extra).length ? { losses: extra } : {}),
      lr,
      seconds,
      eval_seconds: m.seconds,
      train: m.train,
      val: m.val,
      test: m.test,
    });
    // the text summaries every epoch; the plots at most once a minute (the caller draws them after the
    // last epoch), as rendering them costs about a second, a large share of a short epoch
    const plots = Date.now() - lastPlots >= PLOT_INTERVAL_MS;
    await o.run.writeSummaries({ extraLossLists: o.extraLossLists, plots });
    if (plots) lastPlots = Date.now();
    if (keepCheckpoints) o.run.pruneCheckpoints(keepCheckpoints);
    o.log(
      `epoch ${epoch} loss ${lossSum.toFixed(4)} lr ${lr.toExponential(2)} ${(n / seconds).toFixed(1)} img/s | ` +
        `train ${brief(m.train)} | val ${brief(m.val)} | test ${brief(m.test)}`,
    );
  }
}
