/**
 * `spurmem study`: change the critical neurons of a trained model and measure per-group accuracy.
 */
import { Command } from 'commander';
import type { study, PairedFields, StudyResult } from '../neurons/study.js';
import { addOptions, cliOption } from '../options/derive.js';
import type { OptionKey } from '../options/table.js';

/** The flags of `spurmem study` in --help order (the option table declares each; --out, --quiet and --json follow). */
const STUDY_FLAGS: readonly OptionKey[] = [
  'run', 'checkpoint', 'epoch', 'rewindCheckpoint', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize',
  'split', 'ranking', 'activatedLoss', 'poorestLimit', 'topK', 'fraction', 'smallest', 'dropoutP', 'faithfulThreshold', 'mode', 'std', 'rewindEpochs',
  'repeats', 'distribution', 'seed', 'batchSize', 'device', 'threads', 'decodeThreads', 'vitLnEps', 'skipBadImages', 'cacheMb', 'ci', 'ciLevel', 'bootstrap',
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
    out.push(...pairedLines(b));
  }
  out.push(`results: ${r.out} (${r.file.split('/').pop()}, result.json, result.csv, plots)`);
  return out.join('\n') + '\n';
}

const pval = (p: number | null | undefined) => (p === null || p === undefined ? '     n/a' : p < 1e-4 ? p.toExponential(1).padStart(8) : p.toFixed(4).padStart(8));
const ci = (c: [number, number] | null | undefined) => (c ? `[${signed(c[0]).trim()}, ${signed(c[1]).trim()}]` : 'n/a (one repeat)');

/**
 * The paired lines of a block that ran: per group and for the pooled minority / majority groups, the
 * images flipped (right -> wrong, wrong -> right; random changes: in most repeats) with the exact McNemar
 * p-value and its Holm adjustment, and for random changes the 95% t-interval of the change over the repeats.
 */
export function pairedLines(b: StudyResult['blocks'][number]): string[] {
  if (!b.paired_test || !b.minority || !b.majority) return [];
  const rows: [string, number, PairedFields][] = [
    ...b.groups.map((g) => [`${String(g.id).padEnd(2)} ${g.name}`, g.count, g] as [string, number, PairedFields]),
    [`minority (${b.minority.groups.join(' ') || 'none'})`, b.minority.count, b.minority],
    [`majority (${b.majority.groups.join(' ') || 'none'})`, b.majority.count, b.majority],
  ];
  const random = b.paired_test !== 'mcnemar_exact';
  const out = [
    random
      ? '  paired: images right -> wrong, wrong -> right in most repeats; exact McNemar p, Holm-adjusted over these rows; 95% t-interval of the change over the repeats (points)'
      : '  paired: images right -> wrong, wrong -> right; exact McNemar p, Holm-adjusted over these rows',
    `  group                       n  to_wrong  to_right         p    p_holm${random ? '  change 95% CI' : ''}`,
  ];
  for (const [name, n, p] of rows) {
    out.push(
      `  ${name.padEnd(25)} ${String(n).padStart(5)}  ${String(p.flips?.to_wrong ?? 0).padStart(8)}  ${String(p.flips?.to_right ?? 0).padStart(8)}  ${pval(p.p_value)}  ${pval(p.p_holm)}` +
        (random ? `  ${ci(p.change_ci95)}` : ''),
    );
  }
  if (b.flipped_sheet) out.push(`  ${b.flipped_images} image${b.flipped_images === 1 ? '' : 's'} flipped: ${b.flipped_sheet}`);
  return out;
}

export function studyCommand(): Command {
  const cmd = new Command('study').description(
    'modify the critical neurons of a trained model (rankings largest | activated | threshold; modes zero | random_init | ' +
      'random_noise | rewind | layer_rewind) and report per-group accuracy before and after, averaged over repeats',
  );
  addOptions(cmd, 'study', STUDY_FLAGS);
  return cmd
    .addOption(cliOption('out', 'study'))
    .addOption(cliOption('perSample', 'study'))
    .option('--quiet', 'leave out the per-repeat progress lines (warnings, each said once, results and errors are still printed)')
    .option('--json', 'print the result as JSON')
    .action(async (o: Record<string, unknown>) => {
      const { json, quiet, ...opts } = o;
      const log = quiet ? (l: string) => (l.startsWith('warning: ') ? process.stderr.write(l + '\n') : undefined) : undefined;
      const r = await (await import('../neurons/study.js')).study(opts as Parameters<typeof study>[0], log);
      process.stdout.write(json ? JSON.stringify(r) + '\n' : studyTable(r));
    });
}
