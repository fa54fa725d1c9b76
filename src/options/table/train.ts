/**
 * The options of the option table for training (train, finetune-prune) and the run folder.
 */
import { z } from 'zod';
import { ALGORITHMS, BN_UPDATES, OPTIMIZERS, PRUNE_CRITERIA, SCHEDULERS } from '../enums.js';
import { choice, int, opt, type Use } from '../spec.js';

/** The same use in train and finetune-prune (the run-folder options). */
const runCommands = <const U extends Use>(use: U) => ({ train: use, finetune: use });


/** Training, finetune-prune and the run folder, keyed by camelCase name. */
export const TRAINING_OPTIONS = {
  // ---- training
  epochs: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: { train: { help: 'epochs (default: waterbirds 40, celeba 20, folder 40)' }, finetune: { help: 'epochs', default: 21 } },
  }),
  optimizer: opt({ arg: '<name>', value: choice(OPTIMIZERS), choices: OPTIMIZERS, uses: { train: { help: 'optimizer', default: 'adam' } } }),
  lr: opt({
    arg: '<x>', value: z.number().positive(), cli: 'number',
    uses: { train: { help: 'learning rate (default: adam 5e-6 as the original; sgd 1e-3)' }, finetune: { help: 'Adam learning rate', default: 2e-4 } },
  }),
  momentum: opt({ arg: '<x>', value: z.number().min(0), cli: 'number', uses: { train: { help: 'SGD momentum (default 0.9)' } } }),
  weightDecay: opt({
    arg: '<x>', value: z.number().min(0), cli: 'number',
    uses: { train: { help: 'weight decay (default: adam 0; sgd 1e-4)' }, finetune: { help: 'Adam weight decay', default: 0 } },
  }),
  scheduler: opt({
    arg: '<name>', value: choice(SCHEDULERS), choices: SCHEDULERS,
    uses: {
      train: { help: "plateau: ReduceLROnPlateau(factor 0.5) on the epoch's summed loss", default: 'plateau' },
      finetune: { help: "plateau: ReduceLROnPlateau(factor 0.5) on the epoch's summed loss", default: 'plateau' },
    },
  }),
  patience: opt({
    arg: '<n>', value: int.min(0), cli: 'nonNegative',
    uses: { train: { help: 'plateau patience in epochs', default: 3 }, finetune: { help: 'ReduceLROnPlateau patience', default: 1 } },
  }),
  augment: opt({
    negate: true, value: z.boolean(),
    uses: { train: { help: 'no RandomResizedCrop/flip on the training split', default: true }, finetune: { help: 'no RandomResizedCrop/flip on the training split', default: true } },
  }),
  reweight: opt({ value: z.boolean(), uses: { train: { help: "weight each sample by N/|group| (the original's reweight=True; --algorithm reweight normalises it to N/(G*|group|))", default: false } } }),
  // ---- baselines (train --algorithm, jtt, dfr)
  algorithm: opt({
    arg: '<name>', value: choice(ALGORITHMS), choices: ALGORITHMS,
    uses: {
      train: {
        help: 'erm; groupdro: online GroupDRO (Sagawa et al. 2020; per-group mean losses, exponentiated-gradient group weights kept across batches and in checkpoints); reweight: each sample weighted N/(G*n_g); subsample: every group cut to the smallest group\'s count (SubpopBench\'s SUBG, seeded)',
        default: 'erm',
      },
    },
  }),
  droEta: opt({ arg: '<x>', value: z.number().positive(), cli: 'number', uses: { train: { help: 'groupdro: step size of the group weights', default: 0.01 } } }),
  droAdjustment: opt({
    arg: '<C>', value: z.number().min(0), cli: 'number',
    uses: { train: { help: "groupdro: generalization adjustment, C/sqrt(n_g) added to each group's loss in the weight update (0: none)", default: 0 } },
  }),
  subsampleRedraw: opt({
    value: z.boolean(),
    uses: { train: { help: 'subsample: draw the groups anew every epoch (seeded by seed and epoch) instead of once for the run as SUBG does', default: false } },
  }),
  identificationEpochs: opt({
    arg: '<T>', value: int.positive(), cli: 'positive',
    uses: { jtt: { help: 'epochs of the identification model (stage 1, ERM; JTT on Waterbirds: 60)', default: 60 } },
  }),
  upweight: opt({
    arg: '<L>', value: int.positive(), cli: 'positive',
    uses: { jtt: { help: 'each sample of the error set appears L times in the final model\'s training split (JTT on Waterbirds: 100)', default: 100 } },
  }),
  subsamples: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: { dfr: { help: 'group-balanced subsets of the validation split whose logistic-regression weights are averaged', default: 10 } },
  }),
  evalInitial: opt({ negate: true, value: z.boolean(), uses: { train: { help: 'do not evaluate the model before the first epoch', default: true } } }),
  // ---- finetune-prune
  prune: opt({
    arg: '<criteria>', value: z.array(choice(PRUNE_CRITERIA)).min(1), cli: 'list', choices: PRUNE_CRITERIA,
    uses: {
      finetune: {
        help: `what the mask removes, refreshed every epoch; with a comma list a weight is removed if any criterion removes it (the keep-masks are AND-ed): ${PRUNE_CRITERIA.join(' | ')} (default magnitude-smallest, as the original)`,
        default: ['magnitude-smallest'], cliDefault: false,
      },
    },
  }),
  pruneFraction: opt({ arg: '<p>', value: z.number().min(0).max(1), cli: 'number', uses: { finetune: { help: 'magnitude criteria: exactly ceil(p*N) of the prunable weights', default: 0.01 } } }),
  pruneChannelFraction: opt({ arg: '<p>', value: z.number().min(0).max(1), cli: 'number', uses: { finetune: { help: 'channel criteria: ceil(p * channels) channels', default: 0.01 } } }),
  pruneTopK: opt({ arg: '<k>', value: int.positive(), cli: 'positive', uses: { finetune: { help: 'channel criteria: exactly k channels' } } }),
  temperature: opt({ arg: '<t>', value: z.number().positive(), cli: 'number', uses: { finetune: { help: 'NT-Xent temperature', default: 0.5 } } }),
  ceWeight: opt({ arg: '<l>', value: z.number().min(0), cli: 'number', uses: { finetune: { help: 'weight of the cross-entropy term', default: 0.2 } } }),
  bnUpdate: opt({
    arg: '<which>', value: choice(BN_UPDATES), choices: BN_UPDATES,
    uses: { finetune: { help: 'all: BatchNorm statistics updated by all three passes (the original); dense-only: not by the masked pass', default: 'all' } },
  }),
  // ---- the run folder
  out: opt({
    arg: '<dir>', value: z.string(),
    uses: {
      train: { help: 'run folder (default experiments/<arch>_<dataset>_erm)' },
      finetune: {
        help: 'run folder (default, named by the settings so that other settings never share it: <run>/finetune_prune/epoch<e>_<settings> with --run, experiments/finetune_prune/<checkpoint name>/<settings> with --checkpoint; <settings> = the criteria with their size and every option that differs from its default, e.g. magnitude-smallest_p0.01_lr0.0001; --epochs is not part of it)',
      },
      study: {
        help: 'result folder (default: <run>/studies/<split>_<original file name>[_resize-sharp]; with --checkpoint: experiments/studies/<checkpoint name>/<split>_<original file name>)',
      },
      demo: { help: 'demo folder', default: 'experiments/demo' },
      makeDemo: { help: 'output folder (new or empty)', required: true, mandatory: true },
      sweep: { help: "output folder (default: the configuration's out, else next to the file, named after it)" },
      jtt: { help: 'folder of both stages: stage1/ (identification), error_set.json, stage2/ (final model) (default experiments/<arch>_<dataset>_jtt)' },
      dfr: { help: 'result folder (default: <run>/dfr/epoch<e>_seed<s>; with --checkpoint: experiments/dfr/<checkpoint name>_seed<s>)' },
    },
  }),
  resume: opt({
    value: z.boolean(),
    uses: runCommands({ help: 'continue the run in --out from its last complete epoch (options not given are read from its config.json)', default: false }),
  }),
  force: opt({
    value: z.boolean(),
    uses: {
      ...runCommands({ help: 'start again in an --out folder that holds another run', default: false }),
      makeDemo: { help: 'replace an earlier demo dataset in --out', default: false },
      sweep: { help: 'run finished settings again', default: false },
    },
  }),
  keepCheckpoints: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: runCommands({ help: "keep only the newest n epoch checkpoints and the best validation epoch's (default: every epoch's, as the original; a study with --run and --rewind-epochs needs the older ones)" }),
  }),
  quiet: opt({
    value: z.boolean(),
    uses: runCommands({ help: "leave out the dataset's counts table (warnings, each said once, results and errors are still printed)", default: false }),
  }),
} as const;
