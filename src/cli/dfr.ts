/**
 * `spurmem dfr`: Deep Feature Reweighting (Kirichenko et al. 2023): the last layer of an ERM model retrained
 * by L1 logistic regression on group-balanced subsets of the validation split.
 */
import { Command } from 'commander';
import type { dfr } from '../train/dfr.js';
import { addOptions } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';
import { runFolderAction } from './common.js';

/** The flags dfr shares with finetune-prune (what it works on, the dataset, where it runs, the folder), in --help order. */
export const DFR_FINETUNE_FLAGS: readonly OptionKey[] = [
  'run', 'checkpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize', 'vitLnEps', 'batchSize',
  'seed', 'device', 'threads', 'ci', 'ciLevel', 'bootstrap', 'force', 'skipBadImages', 'cacheMb', 'quiet',
];

export function dfrCommand(): Command {
  const cmd = new Command('dfr').description(
    "Deep Feature Reweighting (Kirichenko et al., ICLR 2023): the model's penultimate-layer embeddings of the validation split, C tuned on half of it, " +
      'then L1 logistic regression on --subsamples group-balanced subsets (weights averaged) written into the head; writes a run folder with ' +
      'epoch_0_checkpoints.pth.tar (the reweighted model), metrics.jsonl (epoch -1: the ERM model) and dfr.json',
  );
  addOptions(cmd, 'finetune', DFR_FINETUNE_FLAGS);
  addOptions(cmd, 'dfr', ['subsamples', 'out']);
  return runFolderAction(cmd, 'print the summary as JSON', async (o) => (await import('../train/dfr.js')).dfr(o as Parameters<typeof dfr>[0]), (s) => {
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
    return (
      `run folder: ${s.out}\n` +
      `C ${s.c} (tuned on half of the validation split)\n` +
      `ERM: test worst-group ${f(s.start.test.worst_group_accuracy)}, average ${f(s.start.test.average_accuracy)}\n` +
      `DFR: test worst-group ${f(s.dfr.test.worst_group_accuracy)}, average ${f(s.dfr.test.average_accuracy)}\n`
    );
  });
}
