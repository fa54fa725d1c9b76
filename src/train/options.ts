/**
 * Options of `spurmem train` / `train()`, validated by one zod schema for the CLI and the Node API.
 * Defaults follow the original SpuriousCorrelationPretrainingErm.py (original-behaviour §3.1): Adam,
 * lr 5e-6, weight decay 0, batch 256, ReduceLROnPlateau(factor 0.5, patience 3) on the epoch's summed
 * loss, augmentation on, softmax head with cross-entropy on its output and [y, 1-y] targets; epochs from
 * the paper's README (Waterbirds 40, CelebA 20).
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { DATASET_KINDS } from '../options/enums.js';
import { schemaFields } from '../options/derive.js';
import { INTERVAL_KEYS, RUN_FOLDER_KEYS } from '../options/table.js';
import { UsageError, optionsError } from '../util/errors.js';

/** The dataset layouts (the option table's constant). */
export const DATASETS = DATASET_KINDS;

/** Options of `train()` / `spurmem train` (camelCase flags), with the original script's defaults (§3.1). */
export const trainSchema = z
  .object(
    schemaFields('train', [
      'dataset', 'root', 'target', 'attribute', 'arch', 'pretrained', 'epochs', 'optimizer', 'lr', 'momentum', 'weightDecay', 'batchSize', 'scheduler',
      'patience', 'augment', 'reweight', 'algorithm', 'droEta', 'droAdjustment', 'subsampleRedraw', 'head', 'labelOrder', 'resolution', 'resize', 'seed', 'device', 'threads', 'decodeThreads', 'evalInitial', 'evalBatchSize',
      'vitLnEps', 'amp', 'channelsLast', ...INTERVAL_KEYS, ...RUN_FOLDER_KEYS,
    ]),
  )
  .strict();

/** Input of `train()`; `dataset` and `root` are required. */
export type TrainInput = z.input<typeof trainSchema>;

/** Options after defaults are resolved (what config.json records). */
export interface TrainConfig extends Omit<z.output<typeof trainSchema>, 'epochs' | 'lr' | 'momentum' | 'weightDecay' | 'out'> {
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  out: string;
}

/** Validates and resolves options. Throws UsageError-compatible messages naming the bad option. */
export function resolveTrainOptions(input: TrainInput): TrainConfig {
  if (input.dataset === undefined || input.root === undefined) {
    throw new UsageError(`${input.dataset === undefined ? '--dataset' : '--root'} is needed (with --resume --out DIR the run's config.json gives it)`);
  }
  const r = trainSchema.safeParse(input);
  if (!r.success) throw optionsError(r.error.issues);
  if (r.data.optimizer === 'adam' && r.data.momentum !== undefined && r.data.momentum !== 0) throw new UsageError('--momentum is an SGD option; with --optimizer adam it would be ignored');
  const o = r.data;
  if (o.reweight && o.algorithm !== 'erm' && o.algorithm !== 'reweight') throw new UsageError(`--reweight weights the samples of ERM; it does not combine with --algorithm ${o.algorithm}`);
  if (o.algorithm !== 'groupdro') {
    for (const k of ['droEta', 'droAdjustment'] as const) {
      if (input[k] !== undefined && input[k] !== trainSchema.shape[k].parse(undefined)) throw new UsageError(`${k === 'droEta' ? '--dro-eta' : '--dro-adjustment'} is a groupdro option; with --algorithm ${o.algorithm} it would be ignored`);
    }
  }
  if (o.subsampleRedraw && o.algorithm !== 'subsample') throw new UsageError(`--subsample-redraw is a subsample option; with --algorithm ${o.algorithm} it would be ignored`);
  const sgd = o.optimizer === 'sgd';
  return {
    ...o,
    // absolute paths, so that the run folder works from any directory
    root: resolve(o.root),
    ...(o.pretrained ? { pretrained: resolve(o.pretrained) } : {}),
    epochs: o.epochs ?? (o.dataset === 'celeba' ? 20 : 40),
    // Adam: the original's 5e-6. SGD: the usual Waterbirds ERM recipe (lr 1e-3, momentum 0.9, wd 1e-4).
    lr: o.lr ?? (sgd ? 1e-3 : 5e-6),
    momentum: o.momentum ?? (sgd ? 0.9 : 0),
    weightDecay: o.weightDecay ?? (sgd ? 1e-4 : 0),
    out: resolve(o.out ?? `experiments/${o.arch}_${o.dataset}_erm`),
  };
}
