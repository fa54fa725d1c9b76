/**
 * `spurmem train`: ERM training with per-epoch group metrics, checkpoints PyTorch can read, and resume.
 */
import { Command, Option } from 'commander';
import { ARCHS } from '../model/index.js';
import { train } from '../train/erm.js';
import { DATASETS } from '../train/options.js';
import { addRunFolderOptions, givenOptions, deviceOption, finiteNumber, nonNegativeInt, positiveInt, threadsOption, resizeOption } from './common.js';

export function trainCommand(): Command {
  const cmd = new Command('train')
    .description(
      'train a classifier by ERM (the original SpuriousCorrelationPretrainingErm.py, fixed) and write a run folder: ' +
        'config.json, epoch_<e>_checkpoints.pth.tar, metrics.jsonl, group_accuracy_evolution_in_*_set.txt, plots, best.json',
    )
    .addOption(new Option('--dataset <name>', 'dataset layout (needed, except with --resume --out DIR)').choices(DATASETS))
    .option('--root <dir>', 'dataset folder (Waterbirds: waterbird_complete95_forest2water2; CelebA: the folder holding img_align_celeba/; needed, except with --resume --out DIR)')
    .option('--target <name>', 'class: a metadata.csv column (default y) or a CelebA attribute (default Blond_Hair)')
    .option('--attribute <name>', 'spurious attribute: a metadata.csv column (default place) or a CelebA attribute (default Male)')
    .addOption(new Option('--arch <arch>', 'architecture').choices(ARCHS).default('resnet50'))
    .option('--pretrained <file>', 'start from ImageNet weights (e.g. torchvision resnet50-19c8e357.pth, a DeiT file): all but the head')
    .option('--epochs <n>', 'epochs (default: waterbirds 40, celeba 20, folder 40)', positiveInt('--epochs'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd']).default('adam'))
    .option('--lr <x>', 'learning rate (default: adam 5e-6 as the original; sgd 1e-3)', finiteNumber('--lr'))
    .option('--momentum <x>', 'SGD momentum (default 0.9)', finiteNumber('--momentum'))
    .option('--weight-decay <x>', 'weight decay (default: adam 0; sgd 1e-4)', finiteNumber('--weight-decay'))
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'), 256)
    .addOption(new Option('--scheduler <name>', 'plateau: ReduceLROnPlateau(factor 0.5) on the epoch\'s summed loss').choices(['plateau', 'none', 'cosine']).default('plateau'))
    .option('--patience <n>', 'plateau patience in epochs', nonNegativeInt('--patience'), 3)
    .option('--no-augment', 'no RandomResizedCrop/flip on the training split')
    .option('--reweight', 'weight each sample by N/|group| (the original\'s reweight=True)')
    .addOption(new Option('--head <kind>', 'softmax: Linear + Softmax with cross-entropy on its output, as the original; linear: plain logits').choices(['softmax', 'linear']).default('softmax'))
    .addOption(new Option('--label-order <order>', 'original: targets [y, 1-y], output 0 = class 1; natural: output c = class c').choices(['original', 'natural']).default('original'))
    .option('--resolution <px>', 'input size R (eval: resize to R*256/224, centre-crop R)', positiveInt('--resolution'), 224)
    .addOption(resizeOption())
    .option('--seed <n>', 'seed for initialisation, shuffling and augmentation', nonNegativeInt('--seed'), 0)
    .option('--vit-ln-eps <x>', 'ViT LayerNorm epsilon (timm/DeiT 1e-6; the original code 1e-5)', finiteNumber('--vit-ln-eps'))
    .addOption(deviceOption())
    .option('--amp', 'CUDA: bf16 autocast for the forward and backward passes')
    .option('--channels-last', 'channels-last memory format for weights and inputs (faster convolutions on GPUs)')
    .addOption(threadsOption())
    .option('--out <dir>', 'run folder (default experiments/<arch>_<dataset>_erm)');
  return addRunFolderOptions(cmd)
    .option('--no-eval-initial', 'do not evaluate the model before the first epoch')
    .option('--eval-batch-size <n>', 'batch size for evaluation (default: --batch-size)', positiveInt('--eval-batch-size'))
    .option('--json', 'print the run summary as JSON')
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const { json, ...opts } = givenOptions(o, cmd);
      const summary = await train(opts as Parameters<typeof train>[0]);
      if (json) {
        process.stdout.write(JSON.stringify(summary) + '\n');
        return;
      }
      const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
      process.stdout.write(
        `run folder: ${summary.out}\n` +
          `final epoch ${summary.final.epoch}: test worst-group ${f(summary.final.test.worst_group_accuracy)}, average ${f(summary.final.test.average_accuracy)}\n` +
          `best validation worst-group: epoch ${summary.best.epoch} (val ${f(summary.best.val_worst_group_accuracy)}, test ${f(summary.best.test_worst_group_accuracy)})\n`,
      );
    });
}
