/**
 * `spurmem finetune-prune`: the paper's Part II.
 */
import { Command } from 'commander';
import type { finetunePrune } from '../train/finetune-prune.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { addRunFolderOptions, runFolderAction } from './common.js';

/** The flags of `spurmem finetune-prune` before the run-folder ones, in --help order (the option table declares each). */
const FINETUNE_FLAGS: readonly OptionKey[] = [
  'run', 'checkpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize', 'prune', 'pruneFraction',
  'pruneChannelFraction', 'pruneTopK', 'poorestLimit', 'temperature', 'ceWeight', 'bnUpdate', 'epochs', 'lr', 'weightDecay', 'batchSize', 'evalBatchSize',
  'scheduler', 'patience', 'augment', 'seed', 'device', 'threads', 'decodeThreads', 'vitLnEps', 'ci', 'ciLevel', 'bootstrap', 'out',
];

export function finetunePruneCommand(): Command {
  const cmd = new Command('finetune-prune')
    .description(
      'finetune an ERM model while a mask removes part of it, pulling the dense and the pruned outputs together with NT-Xent ' +
        '(+ cross-entropy), to close the gap between majority and minority groups (the original SpuriousCorrelationFinetuningPruning.py). ' +
        'BatchNorm running statistics are updated in all three forward passes of a batch, as the original (see --bn-update)',
    );
  addOptions(cmd, 'finetune', FINETUNE_FLAGS);
  addRunFolderOptions(cmd, 'finetune');
  return runFolderAction(cmd, 'print the summary as JSON', async (o) => (await import('../train/finetune-prune.js')).finetunePrune(o as Parameters<typeof finetunePrune>[0]), (s) => {
    const f = (x: number | null) => (x === null ? '  n/a ' : x.toFixed(4));
    return (
      `run folder: ${s.out}\n` +
      `test accuracy            start (ERM)   finetuned (epoch ${s.selected.epoch}, ${s.selected.criterion})\n` +
      `  worst-group            ${f(s.start.test.worst_group_accuracy)}        ${f(s.selected.test.worst_group_accuracy)}\n` +
      `  average                ${f(s.start.test.average_accuracy)}        ${f(s.selected.test.average_accuracy)}\n`
    );
  });
}
