/**
 * The options of the option table that only `spurmem demo`, `spurmem data make-demo` and `spurmem sweep`
 * take (the options they share with other commands, --out, --arch, --device, --threads, --seed and
 * --force, are declared with those), and the command-line parsers of their values.
 */
import { z } from 'zod';
import { DEMO_CLASSES0, DEMO_CLASSES1, DEMO_DATASET_DEFAULTS, DEMO_SIZE_RANGE, FASHION_MNIST_DIR } from '../../data/fashion-waterbirds.js';
import { UsageError } from '../../util/errors.js';
import { EPOCH_SELECTIONS, SWEEP_SELECTIONS } from '../enums.js';
import { DEVICE_PATTERN, choice, int, opt } from '../spec.js';

/**
 * Parses `--size 96` or `--size 500x375` into width and height (pixels).
 * @throws UsageError naming the flag for anything else
 */
export function sizeParser(flag: string) {
  return (v: string): [number, number] => {
    const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
    if (!m) throw new UsageError(`${flag} expects PX or WxH (e.g. 96 or 500x375), got '${v}'`);
    const w = Number(m[1]);
    return [w, m[2] ? Number(m[2]) : w];
  };
}

/**
 * Parses a comma list of Fashion-MNIST labels (`0,2`).
 * @throws UsageError naming the flag for an empty item or a label outside 0-9
 */
export function classListParser(flag: string) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    const out = parts.map(Number);
    if (parts.some((p) => p === '') || out.some((n) => !Number.isInteger(n) || n < 0 || n > 9)) {
      throw new UsageError(`${flag} expects comma-separated Fashion-MNIST labels 0-9, got '${v}'`);
    }
    return out;
  };
}

/**
 * Parses a comma list of devices (`cuda:0,cuda:1`), each cpu, cuda or cuda:N.
 * @throws UsageError naming the flag for an empty list or another device name
 */
export function deviceListParser(flag: string) {
  return (v: string): string[] => {
    const xs = v.split(',').map((x) => x.trim()).filter(Boolean);
    if (xs.length === 0 || !xs.every((x) => DEVICE_PATTERN.test(x))) throw new UsageError(`${flag} expects a comma-separated list such as cuda:0,cuda:1, got '${v}'`);
    return xs;
  };
}

/**
 * Parses a comma list of sweep keys (`dataset,arch`).
 * @throws UsageError naming the flag for an empty list or item
 */
export function keyListParser(flag: string) {
  return (v: string): string[] => {
    const xs = v.split(',').map((x) => x.trim());
    if (xs.some((x) => x === '')) throw new UsageError(`${flag} expects a comma-separated list of sweep keys such as dataset,arch, got '${v}'`);
    return xs;
  };
}

const side = int.min(DEMO_SIZE_RANGE[0]).max(DEMO_SIZE_RANGE[1]);
const classes = z.array(int.min(0).max(9)).min(1);

/** The options of demo, data make-demo and sweep alone, keyed by camelCase name. */
export const COMMAND_OPTIONS = {
  // ---- spurmem demo
  quick: opt({
    value: z.boolean(),
    uses: {
      demo: {
        help: 'a smoke test: a smaller dataset, fewer epochs and repeats; its report says its numbers are not to be read (1 min 7 s to 1 min 33 s measured on 2 CPU cores shared with other work; the full demo took 19 min 23 s there)',
        default: false,
      },
    },
  }),
  // ---- spurmem data make-demo
  scale: opt({
    arg: '<s>', value: z.number().positive(), cli: 'number',
    uses: { makeDemo: { help: "Waterbirds' per-group counts times S (each group at least 1)", default: DEMO_DATASET_DEFAULTS.scale } },
  }),
  size: opt({
    arg: '<px>', value: z.tuple([side, side]), parse: sizeParser,
    uses: { makeDemo: { help: 'image size: PX (square) or WxH', default: [DEMO_DATASET_DEFAULTS.size, DEMO_DATASET_DEFAULTS.size], defaultText: String(DEMO_DATASET_DEFAULTS.size) } },
  }),
  fashionMnist: opt({
    arg: '<dir>', value: z.string().min(1),
    uses: { makeDemo: { help: 'folder of the Fashion-MNIST IDX .gz files', default: FASHION_MNIST_DIR } },
  }),
  classes0: opt({
    arg: '<list>', value: classes, parse: classListParser,
    uses: { makeDemo: { help: 'Fashion-MNIST labels of class y=0', default: DEMO_CLASSES0, defaultText: '0,2 (T-shirt/top, Pullover: "top")' } },
  }),
  classes1: opt({
    arg: '<list>', value: classes, parse: classListParser,
    uses: { makeDemo: { help: 'Fashion-MNIST labels of class y=1', default: DEMO_CLASSES1, defaultText: '5,7,9 (Sandal, Sneaker, Ankle boot: "shoe")' } },
  }),
  itemSize: opt({
    arg: '<f>', value: z.number().positive().max(1), cli: 'number',
    uses: { makeDemo: { help: "item side as a fraction of the image's shorter side", default: DEMO_DATASET_DEFAULTS.itemSize } },
  }),
  itemOpacity: opt({
    arg: '<f>', value: z.number().positive().max(1), cli: 'number',
    uses: { makeDemo: { help: 'item opacity in (0, 1]', default: DEMO_DATASET_DEFAULTS.itemOpacity } },
  }),
  // ---- spurmem sweep
  workers: opt({
    arg: '<n>', value: int.positive(), cli: 'positive',
    uses: { sweep: { help: 'worker processes on the base device (CPU: cores / n threads each)' } },
  }),
  devices: opt({
    arg: '<list>', value: z.array(z.string().regex(DEVICE_PATTERN)).min(1), parse: deviceListParser,
    uses: { sweep: { help: 'one worker process per device, e.g. cuda:0,cuda:1' } },
  }),
  slurm: opt({
    value: z.boolean(),
    uses: { sweep: { help: 'submit a Slurm job array (one task per unfinished setting) with sbatch', default: false } },
  }),
  sbatchArgs: opt({
    arg: '<args>', value: z.union([z.string(), z.array(z.string())]),
    uses: { sweep: { help: 'extra sbatch options, e.g. "--time=2:00:00 --partition=gpu --gres=gpu:1"' } },
  }),
  index: opt({
    arg: '<i>', value: int.min(0), cli: 'nonNegative',
    uses: { sweep: { help: 'run setting i only (what a Slurm task runs)' } },
  }),
  // ---- the tables of a training sweep (spurmem sweep table; the configuration's group_by, select, epoch_select)
  groupBy: opt({
    arg: '<keys>', value: z.array(z.string().min(1)), parse: keyListParser,
    uses: {
      sweepTable: {
        help: "training sweeps: one table row per value of these options (comma list of sweep keys, e.g. dataset,arch,prune; default: the configuration's group_by, else the command, dataset and arch); the other varied options except seed are the hyperparameters selected in each row",
      },
    },
  }),
  select: opt({
    arg: '<how>', value: choice(SWEEP_SELECTIONS), choices: SWEEP_SELECTIONS,
    uses: {
      sweepTable: {
        help: "training sweeps: the hyperparameters of each row: val_wga = best seed-mean validation worst-group accuracy (SubpopBench's training-domain validation), val_avg = best seed-mean validation average accuracy, oracle = best seed-mean test worst-group accuracy (labelled oracle in the tables); default: the configuration's select, else val_wga",
        default: 'val_wga', cliDefault: false,
      },
    },
  }),
  epochSelect: opt({
    arg: '<how>', value: choice(EPOCH_SELECTIONS), choices: EPOCH_SELECTIONS,
    uses: {
      sweepTable: {
        help: "training sweeps: the epoch of each run: val_wga = best validation worst-group accuracy (earlier epoch on ties), val_avg = best validation average accuracy, last = the last epoch; default: the configuration's epoch_select, else val_wga",
        default: 'val_wga', cliDefault: false,
      },
    },
  }),
} as const;
