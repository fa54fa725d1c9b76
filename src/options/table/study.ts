/**
 * The options of the option table that make a study setting (what a sweep varies): when each applies and its part of
 * a setting's name.
 */
import { z } from 'zod';
import { ACTIVATED_LOSSES, DISTRIBUTIONS, MODES, RANKINGS, SPLITS, isRandomMode, isRewindMode, type Split } from '../enums.js';
import { choice, int, opt, type SettingShape } from '../spec.js';

const threshold = (s: SettingShape) => s.ranking === 'threshold';
const random = (s: SettingShape) => isRandomMode(s.mode);

/** The settings of a study, keyed by camelCase name. */
export const SETTING_OPTIONS = {
  // ---- a study setting (what a sweep varies)
  split: opt({
    name: { part: String, always: true },
    arg: '<split>', value: choice(SPLITS as readonly Split[] as readonly ['train', 'val', 'test']), choices: SPLITS, sweep: 'setting',
    uses: {
      study: { help: 'split to evaluate (and to pick activated samples from)', default: 'train' },
      eval: { help: 'split to evaluate', default: 'test' },
    },
  }),
  ranking: opt({
    name: { part: String, always: true },
    arg: '<name>', value: choice(RANKINGS), choices: RANKINGS, sweep: 'setting',
    uses: {
      study: {
        help: "largest: top-k channels by weight L2 norm; activated: top-k by gradient norm on each group's poorest 200 samples (one block per group; a group whose gradients cannot rank is reported and skipped); threshold: a fraction of single weights by |w|",
        default: 'largest',
      },
    },
  }),
  mode: opt({
    name: { part: String, always: true },
    arg: '<mode>', value: choice(MODES), choices: MODES, sweep: 'setting',
    uses: { study: { help: 'modification', default: 'zero' } },
  }),
  topK: opt({
    name: { part: (v) => `top${String(v)}`, always: true },
    arg: '<k>', value: int.positive(), cli: 'positive', sweep: 'setting', applies: (s) => !threshold(s),
    uses: { study: { help: 'channels to modify (largest, activated; default 3)', default: 3, cliDefault: false } },
  }),
  fraction: opt({
    name: { part: (v) => `frac${String(v)}`, always: true },
    arg: '<p>', value: z.number().min(0).max(1), cli: 'number', text: 'a number in [0, 1]', sweep: 'setting', applies: threshold,
    uses: { study: { help: 'threshold: fraction of the conv weights (exactly ceil(p*N); default 0.05)', default: 0.05, cliDefault: false } },
  }),
  smallest: opt({
    name: { part: () => 'smallest' },
    value: z.boolean(), sweep: 'setting', applies: threshold,
    uses: { study: { help: 'threshold: the smallest weights instead of the largest', default: false, cliDefault: false } },
  }),
  dropoutP: opt({
    name: { part: (v) => `drop${String(v)}` },
    arg: '<q>', value: z.number().min(0).max(1), cli: 'number', text: 'a number in [0, 1]', sweep: 'setting', applies: threshold,
    uses: { study: { help: 'threshold: drop each selected weight from the selection with probability q (default 0)', default: 0, cliDefault: false } },
  }),
  faithfulThreshold: opt({
    name: { part: () => 'faithful' },
    value: z.boolean(), sweep: 'setting', applies: threshold,
    uses: {
      study: { help: 'threshold as the original: off-by-one counts, applied to every parameter (BatchNorm and fc too), uniform noise', default: false, cliDefault: false },
    },
  }),
  std: opt({
    name: { part: (v) => `std${String(v)}`, always: true },
    arg: '<s>', value: z.number().min(0), cli: 'number', text: 'a number >= 0', sweep: 'setting', applies: random,
    uses: {
      study: { help: 'random_init / random_noise standard deviation (needed by them; the original used 0.02, 0.15, 0.1 and 0.02, 0.01, 0.005)', default: 0, cliDefault: false },
    },
  }),
  distribution: opt({
    name: { part: String },
    arg: '<d>', value: choice(DISTRIBUTIONS), choices: DISTRIBUTIONS, text: 'normal or uniform', sweep: 'setting', applies: random,
    uses: { study: { help: 'random values: normal N(0, std^2), or uniform [0,1)*std (the original threshold script)' } },
  }),
  rewindEpochs: opt({
    name: { part: (v) => `back${String(v)}`, always: true },
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'setting',
    applies: (s, o) => isRewindMode(s.mode) && !o.rewindCheckpoint,
    uses: { study: { help: 'rewind modes with --run: copy from the checkpoint n epochs earlier' } },
  }),
  repeats: opt({
    name: { part: (v) => `r${String(v)}`, always: true },
    arg: '<r>', value: int.positive(), cli: 'positive', sweep: 'setting', applies: random,
    uses: { study: { help: 'repeats of the random modes (default 10; others run once)' } },
  }),
  poorestLimit: opt({
    name: { part: (v) => `poorest${String(v)}` },
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'setting', applies: (s) => s.ranking === 'activated',
    uses: {
      study: { help: "activated: how many of each group's poorest samples give the gradients (default 200, the original's)", default: 200, cliDefault: false },
      finetune: { help: "activated criterion: how many of each group's poorest samples give the gradients (default 200, the original's)", default: 200, cliDefault: false },
    },
  }),
  activatedLoss: opt({
    name: { part: String },
    arg: '<loss>', value: choice(ACTIVATED_LOSSES), choices: ACTIVATED_LOSSES, sweep: 'setting', applies: (s) => s.ranking === 'activated',
    uses: {
      study: {
        help: "activated: the loss whose gradient ranks channels: probabilities = cross-entropy on the head's output (the original's; with the softmax head it passes no gradient once the other class's probability is exactly 0.0 in float32), logits = cross-entropy on the Linear layer's output, kept from underflowing (default probabilities)",
        default: 'probabilities', cliDefault: false,
      },
    },
  }),
  seed: opt({
    name: { part: (v) => `seed${String(v)}`, always: true },
    arg: '<n>', value: int.min(0), cli: 'nonNegative', sweep: 'setting',
    applies: (s) => random(s) || (threshold(s) && (s.dropoutP ?? 0) > 0),
    uses: {
      study: { help: 'seed of the random modes (default 0); repeat r of block b uses its own stream derived from it', default: 0, cliDefault: false },
      train: { help: 'seed for initialisation, shuffling and augmentation', default: 0 },
      finetune: { help: 'seed', default: 0 },
      demo: { help: 'seed of the data, the initialisation, shuffling and the studies', default: 0 },
      makeDemo: { help: 'random seed (same seed, same bytes)', default: 0 },
    },
  }),
} as const;
