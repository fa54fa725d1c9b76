/**
 * Options and helpers shared by every command.
 */
import { type Command, Option } from 'commander';
import { UsageError } from '../util/errors.js';

/** Parses a positive integer flag value. */
export function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} expects a positive integer, got '${v}'`);
    return n;
  };
}

/** Parses a non-negative integer flag value. */
export function nonNegativeInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a non-negative integer, got '${v}'`);
    return n;
  };
}

/** Parses a finite number flag value. */
export function finiteNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} expects a number, got '${v}'`);
    return n;
  };
}

/** Help of every command's --quiet. */
export const QUIET_HELP = "leave out the dataset's counts table (warnings, each said once, results and errors are still printed)";

/**
 * The run-folder flags of `train` and `finetune-prune` (see runFolderFields): --resume (with --out DIR alone: the run's config.json gives the rest), --force,
 * --skip-bad-images, --keep-checkpoints, --cache-mb, --quiet. `--out` stays with each command (its default differs).
 */
export function addRunFolderOptions(cmd: Command): Command {
  return cmd
    .option('--resume', 'continue the run in --out from its last complete epoch (options not given are read from its config.json)')
    .option('--force', 'start again in an --out folder that holds another run')
    .option('--skip-bad-images', 'skip missing or undecodable images (counted) instead of stopping')
    .option('--keep-checkpoints <n>', 'keep only the newest n epoch checkpoints and the best validation epoch\'s (default: every epoch\'s, as the original; a study with --run and --rewind-epochs needs the older ones)', positiveInt('--keep-checkpoints'))
    .option('--cache-mb <n>', 'memory for decoded eval images (MiB)', nonNegativeInt('--cache-mb'), 4096)
    .option('--quiet', QUIET_HELP);
}

/**
 * A command's options for the API: with --resume, the defaults commander filled in are left out, so that
 * the run's config.json supplies what was not given on the command line.
 */
export function givenOptions(o: Record<string, unknown>, cmd: Command): Record<string, unknown> {
  if (!o.resume) return o;
  return Object.fromEntries(Object.entries(o).filter(([k]) => cmd.getOptionValueSource(k) !== 'default'));
}

export function deviceOption(): Option {
  return new Option('--device <device>', 'cpu, cuda or cuda:N')
    .default('cpu')
    .argParser((v: string) => {
      if (!/^(cpu|cuda(:\d+)?)$/.test(v)) throw new UsageError(`--device expects cpu, cuda or cuda:N, got '${v}'`);
      return v;
    });
}

export function threadsOption(): Option {
  return new Option('--threads <n>', 'CPU threads for libtorch (default: all cores)').argParser(positiveInt('--threads'));
}

/**
 * --resize pil|sharp: how the eval (and train) transform resizes. pil, the default, gives torchvision +
 * PIL's bytes; sharp is libvips' faster approximation (about 0.2/255 per pixel off), named in the results.
 */
export function resizeOption(): Option {
  return new Option(
    '--resize <method>',
    "pil: PIL's bilinear resize bit for bit, as the original's torchvision pipeline (default); sharp: libvips' resize, about 0.2/255 per pixel off on photos, and far off for CMYK JPEGs (ICC transform) and 16-bit PNGs (scaled, where PIL clamps) (named in the results)",
  )
    .choices(['pil', 'sharp'])
    .default('pil');
}
