/**
 * `spurmem train`: ERM training with per-epoch group metrics, checkpoints PyTorch can read, and resume.
 */
import { Command } from 'commander';
import type { train } from '../train/erm.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { addRunFolderOptions, runFolderAction } from './common.js';

/** The flags of `spurmem train` before the run-folder ones, in --help order (the option table declares each). */
const TRAIN_FLAGS: readonly OptionKey[] = [
  'dataset', 'root', 'target', 'attribute', 'arch', 'pretrained', 'epochs', 'optimizer', 'lr', 'momentum', 'weightDecay', 'batchSize', 'scheduler',
  'patience', 'augment', 'reweight', 'algorithm', 'droEta', 'droAdjustment', 'subsampleRedraw', 'head', 'labelOrder', 'resolution', 'resize', 'seed', 'vitLnEps', 'device', 'amp', 'channelsLast', 'threads', 'decodeThreads', 'ci', 'ciLevel', 'bootstrap', 'out',
];

export function trainCommand(): Command {
  const cmd = new Command('train')
    .description(
      'train a classifier by ERM (the original SpuriousCorrelationPretrainingErm.py, fixed), or by --algorithm groupdro | reweight | subsample, and write a run folder: ' +
        'config.json, epoch_<e>_checkpoints.pth.tar, metrics.jsonl, group_accuracy_evolution_in_*_set.txt, plots, best.json',
    );
  addOptions(cmd, 'train', TRAIN_FLAGS);
  addRunFolderOptions(cmd, 'train');
  addOptions(cmd, 'train', ['evalInitial', 'evalBatchSize']);
  return runFolderAction(cmd, 'print the run summary as JSON', async (o) => (await import('../train/erm.js')).train(o as Parameters<typeof train>[0]), (summary) => {
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
    return (
      `run folder: ${summary.out}\n` +
      `final epoch ${summary.final.epoch}: test worst-group ${f(summary.final.test.worst_group_accuracy)}, average ${f(summary.final.test.average_accuracy)}\n` +
      `best validation worst-group: epoch ${summary.best.epoch} (val ${f(summary.best.val_worst_group_accuracy)}, test ${f(summary.best.test_worst_group_accuracy)})\n`
    );
  });
}
