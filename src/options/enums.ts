/**
 * Every enum of the options, one constant each (the option table, the schemas, the sweep keys and the
 * code that branches on a value use these). Constants that belong to a lower layer (datasets, splits,
 * label orders, resize methods, architectures) are re-exported from there.
 */
export { DATASET_KINDS, SPLITS, type DatasetKind, type Split } from '../data/types.js';
export { RESIZE_METHODS, type ResizeMethod } from '../data/images.js';
export { LABEL_ORDERS, type LabelOrder } from '../metrics/groups.js';
export { CI_METHODS, type CiMethod } from '../metrics/intervals.js';
export { ARCHS, type Arch } from '../model/index.js';
import type { Arch } from '../model/index.js';

/** The architectures `spurmem demo` offers (--arch). */
export const DEMO_ARCHS = ['resnet18', 'resnet50'] as const satisfies readonly Arch[];
/** One of {@link DEMO_ARCHS}. */
export type DemoArch = (typeof DEMO_ARCHS)[number];

/** The head: the original's Linear + Softmax (cross-entropy on its output), or plain logits. */
export const HEADS = ['softmax', 'linear'] as const;
/** One of {@link HEADS}. */
export type Head = (typeof HEADS)[number];

/** Modifications of the selected weights (original-behaviour §5; `layer_rewind` copies the whole tensor). */
export const MODES = ['zero', 'random_init', 'random_noise', 'rewind', 'layer_rewind'] as const;
/** One of {@link MODES}. */
export type Mode = (typeof MODES)[number];
/** The modes that draw random values (repeated R times, with `std`). */
export const isRandomMode = (mode: string | undefined): boolean => mode === 'random_init' || mode === 'random_noise';
/** The modes that copy weights from an earlier checkpoint. */
export const isRewindMode = (mode: string | undefined): boolean => mode === 'rewind' || mode === 'layer_rewind';

/** How neurons are chosen: largest weight L2 norm (§4.1), largest gradient norm on the poorest samples (§4.2), a fraction of single weights by |w| (§4.3). */
export const RANKINGS = ['largest', 'activated', 'threshold'] as const;
/** One of {@link RANKINGS}. */
export type Ranking = (typeof RANKINGS)[number];

/**
 * The loss whose gradients rank `activated` channels: `probabilities`, the original's cross-entropy on the
 * head's output (with the softmax head, on probabilities: it passes no gradient for samples fitted with
 * probability exactly 1.0); `logits`, cross-entropy on the head's Linear output, computed so that it does
 * not underflow (native/losses.h).
 */
export const ACTIVATED_LOSSES = ['probabilities', 'logits'] as const;

/** Random values of the random modes: normal N(0, std^2), or uniform [0,1)*std (the original threshold script, Q14). */
export const DISTRIBUTIONS = ['normal', 'uniform'] as const;
/** One of {@link DISTRIBUTIONS}. */
export type Distribution = (typeof DISTRIBUTIONS)[number];

/**
 * The distribution a random mode draws from when none is asked for, one rule for the study, its folder
 * names and the sweep's setting names: uniform for the faithful threshold (as the original threshold
 * script, Q14), else normal.
 */
export function defaultDistribution(s: { ranking?: string; faithfulThreshold?: boolean }): Distribution {
  return s.ranking === 'threshold' && s.faithfulThreshold ? 'uniform' : 'normal';
}

/** Optimizers of `spurmem train`. */
export const OPTIMIZERS = ['adam', 'sgd'] as const;
/** Learning-rate schedules: ReduceLROnPlateau(factor 0.5) on the epoch's summed loss, none, cosine. */
export const SCHEDULERS = ['plateau', 'none', 'cosine'] as const;
/** Which forward passes of finetune-prune update BatchNorm's running statistics. */
export const BN_UPDATES = ['all', 'dense-only'] as const;
/**
 * How `spurmem train` weighs the training split: erm (plain), groupdro (online GroupDRO, Sagawa et al. 2020),
 * reweight (each sample N/(G*n_g)), subsample (every group cut to the smallest, SubpopBench's SUBG).
 */
export const ALGORITHMS = ['erm', 'groupdro', 'reweight', 'subsample'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
/** What the finetune-prune mask removes (refreshed every epoch; several are AND-ed, Q13). */
export const PRUNE_CRITERIA = ['magnitude-smallest', 'magnitude-largest', 'activated', 'largest-channels'] as const;
/** One of {@link PRUNE_CRITERIA}. */
export type PruneCriterion = (typeof PRUNE_CRITERIA)[number];

/**
 * How a training sweep picks one hyperparameter setting per setting group: the best seed-mean validation
 * worst-group accuracy (SubpopBench's training-domain validation; default), the best seed-mean validation
 * average accuracy, or `oracle`: the best seed-mean test worst-group accuracy (labelled as such; not a
 * model selection a paper may report as its result).
 */
export const SWEEP_SELECTIONS = ['val_wga', 'val_avg', 'oracle'] as const;
/** One of {@link SWEEP_SELECTIONS}. */
export type SweepSelection = (typeof SWEEP_SELECTIONS)[number];

/**
 * The epoch of a training run a sweep reports: the best validation worst-group accuracy (default; the
 * earlier epoch on ties, as best.json), the best validation average accuracy, or the last epoch.
 */
export const EPOCH_SELECTIONS = ['val_wga', 'val_avg', 'last'] as const;
/** One of {@link EPOCH_SELECTIONS}. */
export type EpochSelection = (typeof EPOCH_SELECTIONS)[number];
