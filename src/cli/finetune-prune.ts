/**
 * `spurmem finetune-prune`: the paper's Part II.
 */
import { Command, Option } from 'commander';
import { ARCHS } from '../model/index.js';
import { PRUNE_CRITERIA, finetunePrune, type PruneCriterion } from '../train/finetune-prune.js';
import { UsageError } from '../util/errors.js';
import { addRunFolderOptions, givenOptions, deviceOption, finiteNumber, nonNegativeInt, positiveInt, threadsOption, resizeOption } from './common.js';

function criteria(v: string, prev: PruneCriterion[] | undefined): PruneCriterion[] {
  const out = [...(prev ?? [])];
  for (const c of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(PRUNE_CRITERIA as readonly string[]).includes(c)) throw new UsageError(`--prune: '${c}' is not one of ${PRUNE_CRITERIA.join(', ')}`);
    out.push(c as PruneCriterion);
  }
  return out;
}

export function finetunePruneCommand(): Command {
  const cmd = new Command('finetune-prune')
    .description(
      'finetune an ERM model while a mask removes part of it, pulling the dense and the pruned outputs together with NT-Xent ' +
        '(+ cross-entropy), to close the gap between majority and minority groups (the original SpuriousCorrelationFinetuningPruning.py). ' +
        'BatchNorm running statistics are updated in all three forward passes of a batch, as the original (see --bn-update)',
    )
    .option('--run <dir>', 'the ERM run folder to start from (its last epoch unless --epoch)')
    .option('--checkpoint <file>', 'or any ERM checkpoint')
    .option('--epoch <e>', 'with --run: the epoch to start from', nonNegativeInt('--epoch'))
    .addOption(new Option('--dataset <name>', 'dataset layout (with --checkpoint)').choices(['waterbirds', 'celeba', 'folder']))
    .option('--root <dir>', 'dataset folder (with --checkpoint)')
    .option('--target <name>', 'class: a metadata.csv column (default y) or a CelebA attribute (default Blond_Hair) (with --checkpoint)')
    .option('--attribute <name>', 'spurious attribute: a metadata.csv column (default place) or a CelebA attribute (default Male) (with --checkpoint)')
    .addOption(new Option('--arch <arch>', 'architecture of the checkpoint').choices(ARCHS))
    .addOption(new Option('--head <kind>', 'head of the checkpoint').choices(['softmax', 'linear']))
    .addOption(new Option('--label-order <order>', 'output order of the checkpoint').choices(['original', 'natural']))
    .option('--resolution <px>', 'input size (default: the run\'s, else 224)', positiveInt('--resolution'))
    .addOption(resizeOption())
    .option(
      '--prune <criteria>',
      `what the mask removes, refreshed every epoch; with a comma list a weight is removed if any criterion removes it (the keep-masks are AND-ed): ${PRUNE_CRITERIA.join(' | ')} (default magnitude-smallest, as the original)`,
      criteria,
    )
    .option('--prune-fraction <p>', 'magnitude criteria: exactly ceil(p*N) of the prunable weights', finiteNumber('--prune-fraction'), 0.01)
    .option('--prune-channel-fraction <p>', 'channel criteria: ceil(p * channels) channels', finiteNumber('--prune-channel-fraction'), 0.01)
    .option('--prune-top-k <k>', 'channel criteria: exactly k channels', positiveInt('--prune-top-k'))
    .option('--temperature <t>', 'NT-Xent temperature', finiteNumber('--temperature'), 0.5)
    .option('--ce-weight <l>', 'weight of the cross-entropy term', finiteNumber('--ce-weight'), 0.2)
    .addOption(new Option('--bn-update <which>', 'all: BatchNorm statistics updated by all three passes (the original); dense-only: not by the masked pass').choices(['all', 'dense-only']).default('all'))
    .option('--epochs <n>', 'epochs', positiveInt('--epochs'), 21)
    .option('--lr <x>', 'Adam learning rate', finiteNumber('--lr'), 2e-4)
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'), 100)
    .option('--eval-batch-size <n>', 'evaluation batch size (default: --batch-size)', positiveInt('--eval-batch-size'))
    .option('--patience <n>', 'ReduceLROnPlateau patience', nonNegativeInt('--patience'), 1)
    .option('--no-augment', 'no RandomResizedCrop/flip on the training split')
    .option('--seed <n>', 'seed', nonNegativeInt('--seed'), 0)
    .addOption(deviceOption())
    .addOption(threadsOption())
    .option('--vit-ln-eps <x>', 'ViT LayerNorm epsilon (default: recorded in spurmem checkpoints, else timm\'s 1e-6; the original code used 1e-5)', finiteNumber('--vit-ln-eps'))
    .option('--out <dir>', 'run folder (default, named by the settings so that other settings never share it: <run>/finetune_prune/epoch<e>_<settings> with --run, experiments/finetune_prune/<checkpoint name>/<settings> with --checkpoint; <settings> = the criteria with their size and every option that differs from its default, e.g. magnitude-smallest_p0.01_lr0.0001; --epochs is not part of it)');
  return addRunFolderOptions(cmd)
    .option('--json', 'print the summary as JSON')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const { json, ...opts } = givenOptions(o, cmd);
      const s = await finetunePrune(opts as Parameters<typeof finetunePrune>[0]);
      if (json) {
        process.stdout.write(JSON.stringify(s) + '\n');
        return;
      }
      const f = (x: number | null) => (x === null ? '  n/a ' : x.toFixed(4));
      process.stdout.write(
        `run folder: ${s.out}\n` +
          `test accuracy            start (ERM)   finetuned (epoch ${s.selected.epoch}, ${s.selected.criterion})\n` +
          `  worst-group            ${f(s.start.test.worst_group_accuracy)}        ${f(s.selected.test.worst_group_accuracy)}\n` +
          `  average                ${f(s.start.test.average_accuracy)}        ${f(s.selected.test.average_accuracy)}\n`,
      );
    });
}
