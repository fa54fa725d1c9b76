/**
 * `spurmem jtt`: Just Train Twice (Liu et al. 2021): an identification run, its error set on the training
 * split, and a final run with the error set upsampled.
 */
import { Command } from 'commander';
import type { jtt } from '../train/jtt.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { runFolderAction } from './common.js';

/** train's flags that both stages take, in --help order (the option table declares each). */
export const STAGE_FLAGS: readonly OptionKey[] = [
  'dataset', 'root', 'target', 'attribute', 'arch', 'pretrained', 'epochs', 'optimizer', 'lr', 'momentum', 'weightDecay', 'batchSize', 'scheduler',
  'patience', 'augment', 'head', 'labelOrder', 'resolution', 'resize', 'seed', 'vitLnEps', 'device', 'amp', 'channelsLast', 'threads', 'decodeThreads', 'ci', 'ciLevel', 'bootstrap',
];

/** train's run-folder and evaluation flags that both stages take. */
export const STAGE_RUN_FLAGS: readonly OptionKey[] = ['resume', 'force', 'skipBadImages', 'keepCheckpoints', 'cacheMb', 'quiet', 'evalInitial', 'evalBatchSize'];

export function jttCommand(): Command {
  const cmd = new Command('jtt').description(
    'Just Train Twice (Liu et al., ICML 2021): ERM for --identification-epochs, the error set of the training split, then a final model ' +
      'trained by ERM for --epochs with each error-set sample repeated --upweight times; writes stage1/ and stage2/ (run folders) and error_set.json',
  );
  addOptions(cmd, 'train', STAGE_FLAGS);
  addOptions(cmd, 'jtt', ['identificationEpochs', 'upweight', 'out']);
  addOptions(cmd, 'train', STAGE_RUN_FLAGS);
  return runFolderAction(cmd, 'print the summary as JSON', async (o) => (await import('../train/jtt.js')).jtt(o as Parameters<typeof jtt>[0]), (s) => {
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
    return (
      `folder: ${s.out}\n` +
      `error set: ${s.error_set.size} training samples (by group ${s.error_set.by_group.join(', ')}) in ${s.error_set.file}\n` +
      `final model, best validation worst-group: epoch ${s.final.best.epoch} (val ${f(s.final.best.val_worst_group_accuracy)}, test ${f(s.final.best.test_worst_group_accuracy)})\n`
    );
  });
}
