/**
 * Helpers shared by the run commands (train, finetune-prune); every flag itself comes from the option table.
 */
import type { Command } from 'commander';
import { addOptions } from '../options/derive.js';

/** Help of every command's --quiet. */
export const QUIET_HELP = "leave out the dataset's counts table (warnings, each said once, results and errors are still printed)";

/**
 * The run-folder flags of `train` and `finetune-prune` (see RUN_FOLDER_KEYS): --resume (with --out DIR alone: the run's config.json gives the rest), --force,
 * --skip-bad-images, --keep-checkpoints, --cache-mb, --quiet. `--out` stays with each command (its default differs).
 */
export function addRunFolderOptions(cmd: Command, scope: 'train' | 'finetune'): Command {
  return addOptions(cmd, scope, ['resume', 'force', 'skipBadImages', 'keepCheckpoints', 'cacheMb', 'quiet']);
}

/**
 * A command's options for the API: with --resume, the defaults commander filled in are left out, so that
 * the run's config.json supplies what was not given on the command line.
 */
export function givenOptions(o: Record<string, unknown>, cmd: Command): Record<string, unknown> {
  if (!o.resume) return o;
  return Object.fromEntries(Object.entries(o).filter(([k]) => cmd.getOptionValueSource(k) !== 'default'));
}

/**
 * The --json flag and the action of a run command (train, finetune-prune): the given options go to
 * `run` (with --resume, without commander's defaults), and its summary is printed as JSON or as `text`.
 */
export function runFolderAction<T>(cmd: Command, jsonHelp: string, run: (opts: Record<string, unknown>) => Promise<T>, text: (summary: T) => string): Command {
  return cmd.option('--json', jsonHelp).action(async (o: Record<string, unknown>, c: Command) => {
    const { json, ...opts } = givenOptions(o, c);
    const summary = await run(opts);
    process.stdout.write(json ? JSON.stringify(summary) + '\n' : text(summary));
  });
}
