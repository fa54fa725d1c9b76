/**
 * `spurmem study`: change the critical neurons of a trained model and measure per-group accuracy.
 */
import { Command, Option } from 'commander';
import { ARCHS } from '../model/index.js';
import { ACTIVATED_LOSSES, MODES, RANKINGS, study, type StudyResult } from '../neurons/study.js';
import { deviceOption, finiteNumber, nonNegativeInt, positiveInt, threadsOption, resizeOption } from './common.js';

const pct = (x: number | null) => (x === null ? '   n/a' : (100 * x).toFixed(2).padStart(6));
const signed = (x: number | null) => (x === null ? '    n/a' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`.padStart(7));

/** The terminal table: per block, per group the unmodified accuracy, mean +- std over repeats, change. */
export function studyTable(r: StudyResult): string {
  const out: string[] = [`${r.setting.ranking} / ${r.setting.mode} on the ${r.split} split (${r.setting.repeats} repeat${r.setting.repeats > 1 ? 's' : ''})${r.resize === 'sharp' ? ', images resized with sharp (approximate)' : ''}; accuracies in %`];
  for (const b of r.blocks) {
    if (b.source_group !== null) out.push(`gradients from group ${b.source_group} (${r.unmodified.groups[b.source_group].name})`);
    if (b.status === 'skipped') {
      out.push(`  skipped, nothing modified: ${b.reason}`);
      continue;
    }
    if (b.channels.length) out.push(`  channels: ${b.channels.map((c) => `${c.name}[${c.index}]`).join(', ')}`);
    if (b.threshold) out.push(`  weights selected: ${Object.values(b.threshold.selected).reduce((a, c) => a + c, 0)} (k = ${b.threshold.k}, |w| threshold ${b.threshold.threshold})`);
    out.push('  group                       n   before    after    std  change = before - after (positive: accuracy lost)');
    for (const g of b.groups) {
      out.push(`  ${String(g.id).padEnd(2)} ${g.name.padEnd(22)} ${String(g.count).padStart(5)}  ${pct(g.unmodified)}  ${pct(g.mean)}  ${pct(g.std)}  ${signed(g.change)}`);
    }
    for (const [name, s] of [['worst-group', b.worst_group_accuracy], ['average', b.average_accuracy]] as const) {
      out.push(`  ${name.padEnd(31)}  ${pct(s.unmodified)}  ${pct(s.mean)}  ${pct(s.std)}  ${signed(s.change)}`);
    }
  }
  out.push(`results: ${r.out} (${r.file.split('/').pop()}, result.json, result.csv, plots)`);
  return out.join('\n') + '\n';
}

export function studyCommand(): Command {
  return new Command('study')
    .description(
      'modify the critical neurons of a trained model (rankings largest | activated | threshold; modes zero | random_init | ' +
        'random_noise | rewind | layer_rewind) and report per-group accuracy before and after, averaged over repeats',
    )
    .option('--run <dir>', 'a spurmem train run folder (dataset, root, arch... are read from its config.json)')
    .option('--checkpoint <file>', 'any checkpoint (original epoch_<e>_checkpoints.pth.tar, spurmem, or a plain state dict)')
    .option('--epoch <e>', 'with --run: the epoch to study (default: the last)', nonNegativeInt('--epoch'))
    .option('--rewind-checkpoint <file>', 'rewind source with --checkpoint')
    .addOption(new Option('--dataset <name>', 'dataset layout (with --checkpoint)').choices(['waterbirds', 'celeba', 'folder']))
    .option('--root <dir>', 'dataset folder (with --checkpoint)')
    .option('--target <name>', 'class: a metadata.csv column (default y) or a CelebA attribute (default Blond_Hair) (with --checkpoint)')
    .option('--attribute <name>', 'spurious attribute: a metadata.csv column (default place) or a CelebA attribute (default Male) (with --checkpoint)')
    .addOption(new Option('--arch <arch>', 'architecture (default: from the run or checkpoint, else from the state-dict keys and shapes)').choices(ARCHS))
    .addOption(new Option('--head <kind>', 'head of the checkpoint').choices(['softmax', 'linear']))
    .addOption(new Option('--label-order <order>', 'output order of the checkpoint').choices(['original', 'natural']))
    .option('--resolution <px>', 'input size (default: the run\'s, else 224)', positiveInt('--resolution'))
    .addOption(resizeOption())
    .addOption(new Option('--split <split>', 'split to evaluate (and to pick activated samples from)').choices(['train', 'val', 'test']).default('train'))
    .addOption(new Option('--ranking <name>', 'largest: top-k channels by weight L2 norm; activated: top-k by gradient norm on each group\'s poorest 200 samples (one block per group; a group whose gradients cannot rank is reported and skipped); threshold: a fraction of single weights by |w|').choices(RANKINGS).default('largest'))
    .addOption(new Option('--activated-loss <loss>', "activated: the loss whose gradient ranks channels: probabilities = cross-entropy on the head's output (the original's; with the softmax head it passes no gradient once the other class's probability is exactly 0.0 in float32), logits = cross-entropy on the Linear layer's output, kept from underflowing (default probabilities)").choices(ACTIVATED_LOSSES))
    .option('--poorest-limit <n>', "activated: how many of each group's poorest samples give the gradients (default 200, the original's)", positiveInt('--poorest-limit'))
    .option('--top-k <k>', 'channels to modify (largest, activated; default 3)', positiveInt('--top-k'))
    .option('--fraction <p>', 'threshold: fraction of the conv weights (exactly ceil(p*N); default 0.05)', finiteNumber('--fraction'))
    .option('--smallest', 'threshold: the smallest weights instead of the largest')
    .option('--dropout-p <q>', 'threshold: drop each selected weight from the selection with probability q (default 0)', finiteNumber('--dropout-p'))
    .option('--faithful-threshold', 'threshold as the original: off-by-one counts, applied to every parameter (BatchNorm and fc too), uniform noise')
    .addOption(new Option('--mode <mode>', 'modification').choices(MODES).default('zero'))
    .option('--std <s>', 'random_init / random_noise standard deviation (needed by them; the original used 0.02, 0.15, 0.1 and 0.02, 0.01, 0.005)', finiteNumber('--std'))
    .option('--rewind-epochs <n>', 'rewind modes with --run: copy from the checkpoint n epochs earlier', positiveInt('--rewind-epochs'))
    .option('--repeats <r>', 'repeats of the random modes (default 10; others run once)', positiveInt('--repeats'))
    .addOption(new Option('--distribution <d>', 'random values: normal N(0, std^2), or uniform [0,1)*std (the original threshold script)').choices(['normal', 'uniform']))
    .option('--seed <n>', 'seed of the random modes (default 0); repeat r of block b uses its own stream derived from it', nonNegativeInt('--seed'))
    .option('--batch-size <n>', 'evaluation batch size (the original: 200)', positiveInt('--batch-size'), 200)
    .addOption(deviceOption())
    .addOption(threadsOption())
    .option('--vit-ln-eps <x>', 'ViT LayerNorm epsilon (default: recorded in spurmem checkpoints, else timm\'s 1e-6; the original code used 1e-5)', finiteNumber('--vit-ln-eps'))
    .option('--skip-bad-images', 'skip missing or undecodable images (counted)')
    .option('--out <dir>', 'result folder (default: <run>/studies/<split>_<original file name>[_resize-sharp]; with --checkpoint: experiments/studies/<checkpoint name>/<split>_<original file name>)')
    .option('--quiet', 'leave out the per-repeat progress lines (warnings, each said once, results and errors are still printed)')
    .option('--json', 'print the result as JSON')
    .action(async (o: Record<string, unknown>) => {
      const { json, quiet, ...opts } = o;
      const log = quiet ? (l: string) => (l.startsWith('warning: ') ? process.stderr.write(l + '\n') : undefined) : undefined;
      const r = await study(opts as Parameters<typeof study>[0], log);
      process.stdout.write(json ? JSON.stringify(r) + '\n' : studyTable(r));
    });
}
