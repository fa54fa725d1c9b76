/**
 * The options of the option table that say what a command works on (a run, a checkpoint), the dataset, the model
 * and where it runs.
 */
import { z } from 'zod';
import { ARCHS, CI_METHODS, DATASET_KINDS, DEMO_ARCHS, HEADS, LABEL_ORDERS, RESIZE_METHODS, type DatasetKind, type LabelOrder, type ResizeMethod } from '../enums.js';
import { DEVICE_PATTERN, choice, int, opt } from '../spec.js';

const DECODE_THREADS = 'threads decoding images at once (default: every core the model is not using; decoding and libtorch share the cores)';
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

/** What a command works on, the dataset, the model and where it runs, keyed by camelCase name. */
export const BASE_OPTIONS = {
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
      demo: { help: 'architecture', default: 'resnet18', value: choice(DEMO_ARCHS), choices: DEMO_ARCHS },
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
      eval: { help: 'images per forward pass (the original: 200)', default: 200 },
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
      demo: { help: 'cpu, cuda or cuda:N', default: 'cpu' },
      sweep: { help: "override the base's device" },
    },
  }),
  threads: opt({
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'base',
    uses: {
      train: { help: 'CPU threads for libtorch (default: all cores)' },
      finetune: { help: 'CPU threads for libtorch (default: all cores)' },
      study: { help: 'CPU threads for libtorch (default: all cores)' },
      eval: { help: 'CPU threads for libtorch (default: all cores)' },
      demo: { help: 'CPU threads for libtorch (default: all cores)' },
      sweep: { help: "override the base's libtorch CPU threads" },
    },
  }),
  decodeThreads: opt({
    arg: '<n>', value: int.positive(), cli: 'positive', sweep: 'base',
    uses: {
      train: { help: DECODE_THREADS },
      finetune: { help: DECODE_THREADS },
      study: { help: DECODE_THREADS },
      eval: { help: DECODE_THREADS },
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
  // ---- per-sample results (src/eval/per-sample.ts, src/neurons/study/paired.ts)
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
} as const;
