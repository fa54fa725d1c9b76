/**
 * The option table: every option of every command declared once, with its camelCase key (the Node API's
 * name; the flag is its kebab-case, the sweep key its snake_case), the validation of one value (zod),
 * the command-line argument and parser, and per command its help text and default. The commander
 * options, the API schemas, the sweep keys, when a study setting applies and the sweep's value texts are
 * derived from it (src/options/derive.ts, src/options/sweep-keys.ts, src/options/setting-names.ts).
 */
import { z } from 'zod';
import {
  ACTIVATED_LOSSES, ARCHS, BN_UPDATES, CI_METHODS, DATASET_KINDS, DISTRIBUTIONS, HEADS, LABEL_ORDERS, MODES, OPTIMIZERS, PRUNE_CRITERIA, RANKINGS,
  RESIZE_METHODS, SCHEDULERS, SPLITS, isRandomMode, isRewindMode, type DatasetKind, type LabelOrder, type ResizeMethod, type Split,
} from './enums.js';

/** The commands whose options the table declares (`sweep` takes the study's, in snake_case). */
export type Scope = 'train' | 'finetune' | 'eval' | 'study';

/**
 * How the command line reads a value: `positive` / `nonNegative` integers and finite `number`s (ranges
 * beyond that are the zod value's), a `list` (the option's own parser); strings and choices as given;
 * options without an argument are switches.
 */
export type CliKind = 'positive' | 'nonNegative' | 'number' | 'list';

/** What one command makes of an option. */
export interface Use {
  /** --help text. */
  help: string;
  /** The default of the API (and of the flag, unless `cliDefault` is false). */
  default?: unknown;
  /** false: the flag has no default (the API's is applied later; a given flag can then be told from a default one). */
  cliDefault?: false;
  /** false: the API has no default (the flag's is what the code does when the option is left out). */
  apiDefault?: false;
  /** How --help shows the default, where the value itself would not say it well. */
  defaultText?: string;
  /** The API needs it (a flag the command line cannot do without is `mandatory` as well). */
  required?: true;
  mandatory?: true;
  /** A value this command alone takes in place of the option's (eval's head: auto as well). */
  value?: z.ZodType;
  choices?: readonly string[];
}

/** The settings of a study that decide which other settings apply. */
export interface SettingShape {
  ranking?: string;
  mode?: string;
  dropoutP?: number;
}

/** One option. */
export interface OptionSpec {
  /** The command-line argument name (`<n>`); none: a switch. */
  arg?: string;
  /** `--no-<flag>`: a switch that turns a default-on option off. */
  negate?: true;
  /** One value's validation (the API and sweep files use it as it is). */
  value: z.ZodType;
  cli?: CliKind;
  choices?: readonly string[];
  /** The sweep's description of one value, where the value does not say it (`a number in [0, 1]`). */
  text?: string;
  /** Where a sweep file takes it: in `base`, or as a grid (setting) key. */
  sweep?: 'base' | 'setting';
  /** A study setting: whether it has an effect on a setting of this ranking and mode (default: always). */
  applies?: (s: SettingShape, o: { rewindCheckpoint?: boolean }) => boolean;
  /**
   * A study setting: its part of a sweep setting's name (`top3`) and of a study's default folder name;
   * `always`: named whatever its value (else only when it differs from its default).
   */
  name?: { part: (v: unknown) => string; always?: true };
  uses: Partial<Record<Scope, Use>>;
}

const opt = <const T extends OptionSpec>(o: T): T => o;

const int = z.number().int();
const choice = <const T extends readonly string[]>(values: T) => z.enum(values as unknown as [T[number], ...T[number][]]);
/** cpu, cuda or cuda:N. */
export const DEVICE_PATTERN = /^(cpu|cuda(:\d+)?)$/;

const TARGET = 'class: a metadata.csv column (default y) or a CelebA attribute (default Blond_Hair)';
const ATTRIBUTE = 'spurious attribute: a metadata.csv column (default place) or a CelebA attribute (default Male)';
const WITH_CK = ' (with --checkpoint)';
const LN_EPS = "ViT LayerNorm epsilon (default: recorded in spurmem checkpoints, else timm's 1e-6; the original code used 1e-5)";
const RESIZE =
  "pil: PIL's bilinear resize bit for bit, as the original's torchvision pipeline (default); sharp: libvips' resize, about 0.2/255 per pixel off on photos, and far off for CMYK JPEGs (ICC transform) and 16-bit PNGs (scaled, where PIL clamps) (named in the results)";
const CI = "per-group accuracy interval: wilson (Wilson score), clopper-pearson (exact, beta quantiles) or none; each group gets ci95 (the key says the level)";
const CI_LEVEL = 'confidence level of every interval, in (0, 1) (0.9 gives ci90 keys)';
const BOOTSTRAP =
  'draws of the seeded group-stratified bootstrap that gives worst-group, average, mean and overall accuracy their interval (<name>_ci95); 0: none';
const threshold = (s: SettingShape) => s.ranking === 'threshold';
const random = (s: SettingShape) => isRandomMode(s.mode);

/** Every option, keyed by its camelCase name. */
export const OPTIONS = {
  // ---- what a command works on
  run: opt({
    arg: '<dir>', value: z.string().min(1), sweep: 'base',
    uses: {
      study: { help: 'a spurmem train run folder (dataset, root, arch... are read from its config.json)' },
      finetune: { help: 'the ERM run folder to start from (its last epoch unless --epoch)' },
    },
  }),
  checkpoint: opt({
    arg: '<file>', value: z.string().min(1), sweep: 'base',
    uses: {
      study: { help: 'any checkpoint (original epoch_<e>_checkpoints.pth.tar, spurmem, or a plain state dict)' },
      finetune: { help: 'or any ERM checkpoint' },
      eval: { help: "a .pth file: the original's training checkpoint (model_state_dict inside) or a plain state dict", required: true, mandatory: true },
    },
  }),
  rewindCheckpoint: opt({
    arg: '<file>', value: z.string().min(1), sweep: 'base',
    uses: { study: { help: 'rewind source with --checkpoint' } },
  }),
  epoch: opt({
    arg: '<e>', value: int.min(0), cli: 'nonNegative', sweep: 'base',
    uses: { study: { help: 'with --run: the epoch to study (default: the last)' }, finetune: { help: 'with --run: the epoch to start from' } },
  }),
  // ---- the dataset
  dataset: opt({
    arg: '<name>', value: choice(DATASET_KINDS as readonly DatasetKind[] as readonly ['waterbirds', 'celeba', 'folder']), choices: DATASET_KINDS, sweep: 'base',
    uses: {
      train: { help: 'dataset layout (needed, except with --resume --out DIR)', required: true },
      study: { help: 'dataset layout (with --checkpoint)' },
      finetune: { help: 'dataset layout (with --checkpoint)' },
      eval: { help: 'waterbirds (waterbird_complete95_forest2water2), celeba, or folder (any Waterbirds-style metadata.csv)', required: true, mandatory: true },
    },
  }),
  root: opt({
    arg: '<dir>', value: z.string().min(1), sweep: 'base',
    uses: {
      train: { help: 'dataset folder (Waterbirds: waterbird_complete95_forest2water2; CelebA: the folder holding img_align_celeba/; needed, except with --resume --out DIR)', required: true },
      study: { help: 'dataset folder (with --checkpoint)' },
      finetune: { help: 'dataset folder (with --checkpoint)' },
      eval: { help: 'the dataset folder (CelebA: the folder that holds img_align_celeba/)', required: true, mandatory: true },
    },
  }),
  target: opt({
    arg: '<name>', value: z.string(), sweep: 'base',
    uses: { train: { help: TARGET }, study: { help: TARGET + WITH_CK }, finetune: { help: TARGET + WITH_CK }, eval: { help: TARGET } },
  }),
  attribute: opt({
    arg: '<name>', value: z.string(), sweep: 'base',
    uses: { train: { help: ATTRIBUTE }, study: { help: ATTRIBUTE + WITH_CK }, finetune: { help: ATTRIBUTE + WITH_CK }, eval: { help: ATTRIBUTE } },
  }),
  skipBadImages: opt({
    value: z.boolean(), sweep: 'base',
    uses: {
      train: { help: 'skip missing or undecodable images (counted) instead of stopping', default: false },
      finetune: { help: 'skip missing or undecodable images (counted) instead of stopping', default: false },
      study: { help: 'skip missing or undecodable images (counted)', default: false },
      eval: { help: 'skip and count missing or undecodable images instead of stopping', default: false },
    },
  }),
  // ---- the model
  arch: opt({
    arg: '<arch>', value: choice(ARCHS), choices: ARCHS, sweep: 'base',
    uses: {
      train: { help: 'architecture', default: 'resnet50' },
      study: { help: 'architecture (default: from the run or checkpoint, else from the state-dict keys and shapes)' },
      finetune: { help: 'architecture of the checkpoint' },
      eval: { help: "architecture (default: recorded in spurmem checkpoints, else a recorded 'arch' such as pytorch/examples writes, else from the state-dict keys and shapes, else resnet50)" },
    },
  }),
  pretrained: opt({
    arg: '<file>', value: z.string(),
    uses: { train: { help: 'start from ImageNet weights (e.g. torchvision resnet50-19c8e357.pth, a DeiT file): all but the head' } },
  }),
  head: opt({
    arg: '<kind>', value: choice(HEADS), choices: HEADS, sweep: 'base',
    uses: {
      train: { help: "softmax: Linear + Softmax with cross-entropy on its output, as the original; linear: plain logits", default: 'softmax' },
      study: { help: 'head of the checkpoint' },
      finetune: { help: 'head of the checkpoint' },
      eval: {
        help: "softmax (the original's Linear + Softmax, keys fc.0.*), linear (keys fc.*), or auto (from the checkpoint's keys)",
        default: 'auto', value: choice([...HEADS, 'auto'] as const), choices: [...HEADS, 'auto'],
      },
    },
  }),
  labelOrder: opt({
    arg: '<order>', value: choice(LABEL_ORDERS as readonly LabelOrder[] as readonly ['original', 'natural']), choices: LABEL_ORDERS, sweep: 'base',
    uses: {
      train: { help: 'original: targets [y, 1-y], output 0 = class 1; natural: output c = class c', default: 'original' },
      study: { help: 'output order of the checkpoint' },
      finetune: { help: 'output order of the checkpoint' },
      eval: {
        help: "original: output 0 = class 1 (the original's [y, 1-y] target); natural: output index = y (default: recorded in spurmem checkpoints, else natural for a plain Linear head (fc.weight) and original for the original's Linear + Softmax head (fc.0.weight))",
      },
    },
  }),
  resolution: opt({
    arg: '<px>', value: int.min(16), cli: 'positive', sweep: 'base',
    uses: {
      train: { help: 'input size R (eval: resize to R*256/224, centre-crop R)', default: 224 },
      study: { help: "input size (default: the run's, else 224)" },
      finetune: { help: "input size (default: the run's, else 224)" },
      eval: { help: 'crop side R: resize to round(R·256/224), centre-crop R (default: recorded in spurmem checkpoints, else the size a ViT position embedding holds, else 224)' },
    },
  }),
  resize: opt({
    arg: '<method>', value: choice(RESIZE_METHODS as readonly ResizeMethod[] as readonly ['pil', 'sharp']), choices: RESIZE_METHODS, sweep: 'base',
    uses: {
      train: { help: RESIZE, default: 'pil' },
      study: { help: RESIZE, default: 'pil', apiDefault: false },
      finetune: { help: RESIZE, default: 'pil', apiDefault: false },
      eval: { help: RESIZE, default: 'pil' },
    },
  }),
  vitLnEps: opt({
    arg: '<x>', value: z.number().positive(), cli: 'number', sweep: 'base',
    uses: { train: { help: 'ViT LayerNorm epsilon (timm/DeiT 1e-6; the original code 1e-5)' }, study: { help: LN_EPS }, finetune: { help: LN_EPS }, eval: { help: LN_EPS } },
  }),
  // ---- where it runs
  batchSize: opt({
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'base',
    uses: {
      train: { help: 'batch size', default: 256 },
      finetune: { help: 'batch size', default: 100 },
      study: { help: 'evaluation batch size (the original: 200)', default: 200 },
      eval: { help: 'images per forward pass', default: 100 },
    },
  }),
  evalBatchSize: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: { train: { help: 'batch size for evaluation (default: --batch-size)' }, finetune: { help: 'evaluation batch size (default: --batch-size)' } },
  }),
  device: opt({
    arg: '<device>', value: z.string().regex(DEVICE_PATTERN, 'expected cpu, cuda or cuda:N'), sweep: 'base',
    uses: {
      train: { help: 'cpu, cuda or cuda:N', default: 'cpu' },
      finetune: { help: 'cpu, cuda or cuda:N', default: 'cpu' },
      study: { help: 'cpu, cuda or cuda:N', default: 'cpu' },
      eval: { help: 'cpu, cuda or cuda:N', default: 'cpu' },
    },
  }),
  threads: opt({
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'base',
    uses: {
      train: { help: 'CPU threads for libtorch (default: all cores)' },
      finetune: { help: 'CPU threads for libtorch (default: all cores)' },
      study: { help: 'CPU threads for libtorch (default: all cores)' },
      eval: { help: 'CPU threads for libtorch (default: all cores)' },
    },
  }),
  cacheMb: opt({
    arg: '<n>', value: int.min(0), cli: 'nonNegative', sweep: 'base',
    uses: {
      train: { help: 'memory for decoded eval images (MiB)', default: 4096 },
      finetune: { help: 'memory for decoded eval images (MiB)', default: 4096 },
      study: { help: 'memory for decoded images (MiB)', default: 4096 },
    },
  }),
  amp: opt({ value: z.boolean(), uses: { train: { help: 'CUDA: bf16 autocast for the forward and backward passes', default: false } } }),
  channelsLast: opt({
    value: z.boolean(),
    uses: { train: { help: 'channels-last memory format for weights and inputs (faster convolutions on GPUs)', default: false } },
  }),
  // ---- confidence intervals (src/metrics/intervals.ts)
  ci: opt({
    arg: '<method>', value: choice(CI_METHODS), choices: CI_METHODS, sweep: 'base',
    uses: {
      eval: { help: CI, default: 'wilson' },
      study: { help: CI, default: 'wilson' },
      train: { help: CI + ' (metrics.jsonl)', default: 'wilson' },
      finetune: { help: CI + ' (metrics.jsonl)', default: 'wilson' },
    },
  }),
  ciLevel: opt({
    arg: '<level>', value: z.number().gt(0).lt(1), cli: 'number', text: 'a number in (0, 1)', sweep: 'base',
    uses: { eval: { help: CI_LEVEL, default: 0.95 }, study: { help: CI_LEVEL, default: 0.95 }, train: { help: CI_LEVEL, default: 0.95 }, finetune: { help: CI_LEVEL, default: 0.95 } },
  }),
  bootstrap: opt({
    arg: '<n>', value: int.min(0), cli: 'nonNegative', sweep: 'base',
    uses: { eval: { help: BOOTSTRAP, default: 2000 }, study: { help: BOOTSTRAP, default: 2000 }, train: { help: BOOTSTRAP, default: 2000 }, finetune: { help: BOOTSTRAP, default: 2000 } },
  }),
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
    },
  }),
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
  reweight: opt({ value: z.boolean(), uses: { train: { help: "weight each sample by N/|group| (the original's reweight=True)", default: false } } }),
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
    },
  }),
  perSample: opt({
    value: z.boolean(),
    uses: {
      study: {
        help: 'write samples.csv into the result folder: per block and image of the split its id, file, split, y, attribute, group, probability of the true class ' +
          'before, correct before, correct after (or the fraction of repeats right) and the probability after; with activated, whether it was among the poorest samples ranked with',
        default: false,
      },
      eval: { help: 'write samples.csv into the current folder: per image of the split its id, file, split, y, attribute, group, probability of the true class and whether it is right', default: false },
    },
  }),
  resume: opt({
    value: z.boolean(),
    uses: {
      train: { help: 'continue the run in --out from its last complete epoch (options not given are read from its config.json)', default: false },
      finetune: { help: 'continue the run in --out from its last complete epoch (options not given are read from its config.json)', default: false },
    },
  }),
  force: opt({
    value: z.boolean(),
    uses: { train: { help: 'start again in an --out folder that holds another run', default: false }, finetune: { help: 'start again in an --out folder that holds another run', default: false } },
  }),
  keepCheckpoints: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: {
      train: { help: "keep only the newest n epoch checkpoints and the best validation epoch's (default: every epoch's, as the original; a study with --run and --rewind-epochs needs the older ones)" },
      finetune: { help: "keep only the newest n epoch checkpoints and the best validation epoch's (default: every epoch's, as the original; a study with --run and --rewind-epochs needs the older ones)" },
    },
  }),
  quiet: opt({
    value: z.boolean(),
    uses: {
      train: { help: "leave out the dataset's counts table (warnings, each said once, results and errors are still printed)", default: false },
      finetune: { help: "leave out the dataset's counts table (warnings, each said once, results and errors are still printed)", default: false },
    },
  }),
} as const;

/** A key of the option table. */
export type OptionKey = keyof typeof OPTIONS;

/** The study's base options (a sweep file's `base` keys, in their order). */
export const STUDY_BASE_KEYS = [
  'run', 'checkpoint', 'rewindCheckpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize',
  'vitLnEps', 'batchSize', 'device', 'threads', 'skipBadImages', 'cacheMb', 'ci', 'ciLevel', 'bootstrap',
] as const satisfies readonly OptionKey[];

/** The options of one study setting, in canonical order (the order of setting names and sweep CSV columns). */
export const STUDY_SETTING_KEYS = [
  'split', 'ranking', 'mode', 'topK', 'fraction', 'smallest', 'dropoutP', 'faithfulThreshold', 'std', 'distribution', 'rewindEpochs', 'repeats',
  'poorestLimit', 'activatedLoss', 'seed',
] as const satisfies readonly OptionKey[];

/** The interval options: per-group method, level, bootstrap draws (eval, study, train, finetune-prune). */
export const INTERVAL_KEYS = ['ci', 'ciLevel', 'bootstrap'] as const satisfies readonly OptionKey[];

/** The run-folder options of `train` and `finetune-prune`. */
export const RUN_FOLDER_KEYS = ['out', 'resume', 'force', 'skipBadImages', 'cacheMb', 'keepCheckpoints', 'quiet'] as const satisfies readonly OptionKey[];
