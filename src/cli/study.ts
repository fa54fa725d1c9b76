/**
 * `spurmem study`: change the critical neurons of a trained model and measure per-group accuracy.
 */
import { Command } from 'commander';
import { study, type StudyResult } from '../neurons/study.js';
import { addOptions, cliOption } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';

/** The flags of `spurmem study` in --help order (the option table declares each; --out, --quiet and --json follow). */
const STUDY_FLAGS: readonly OptionKey[] = [
  'run', 'checkpoint', 'epoch', 'rewindCheckpoint', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize',
  'split', 'ranking', 'activatedLoss', 'poorestLimit', 'topK', 'fraction', 'smallest', 'dropoutP', 'faithfulThreshold', 'mode', 'std', 'rewindEpochs',
  'repeats', 'distribution', 'seed', 'batchSize', 'device', 'threads', 'vitLnEps', 'skipBadImages', 'cacheMb', 'ci', 'ciLevel', 'bootstrap',
];

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
  const cmd = new Command('study').description(
    'modify the critical neurons of a trained model (rankings largest | activated | threshold; modes zero | random_init | ' +
      'random_noise | rewind | layer_rewind) and report per-group accuracy before and after, averaged over repeats',
  );
  addOptions(cmd, 'study', STUDY_FLAGS);
  return cmd
    .addOption(cliOption('out', 'study'))
    .option('--quiet', 'leave out the per-repeat progress lines (warnings, each said once, results and errors are still printed)')
    .option('--json', 'print the result as JSON')
    .action(async (o: Record<string, unknown>) => {
      const { json, quiet, ...opts } = o;
      const log = quiet ? (l: string) => (l.startsWith('warning: ') ? process.stderr.write(l + '\n') : undefined) : undefined;
      const r = await study(opts as Parameters<typeof study>[0], log);
      process.stdout.write(json ? JSON.stringify(r) + '\n' : studyTable(r));
    });
}
