/**
 * `spurmem demo`: the whole study on the built-in dataset, with a report.
 */
import { Command } from 'commander';
import { addOptions } from '../options/derive.js';
import { DEMO_KEYS } from '../options/table.js';
import type { DemoArch } from '../options/enums.js';

export function demoCommand(): Command {
  const cmd = new Command('demo').description(
    'run the whole study on the built-in Fashion-Waterbirds dataset (made from Debian\'s Fashion-MNIST): ERM, ' +
      'critical neurons (a sweep on the training split: largest and activated x zero and random_init std 0.15 x top-k 1, 2, 3, 5, 10), ' +
        'finetune-prune against ERM and the GroupDRO and DFR baselines, and a report (report.md, report.html) with the change-against-top-k figure',
  );
  return addOptions(cmd, 'demo', DEMO_KEYS)
    .action(async (o: { out: string; quick?: boolean; arch: DemoArch; device: string; threads?: number; seed: number }) => {
      const { demo } = await import('../demo/run.js');
      const { SMOKE_TEST_NOTICE, findingLines } = await import('../demo/report.js');
      const r = await demo(o);
      const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
      const lines = [
        '',
        ...(r.smoke_test ? [SMOKE_TEST_NOTICE] : []),
        `ERM (epoch ${r.erm.epoch}): test worst-group ${pct(r.erm.test.worst_group_accuracy)}, average ${pct(r.erm.test.average_accuracy)}; ` +
          `training accuracy of the minority groups ${r.groups.filter((g) => g.minority).map((g) => pct(r.erm.train.groups[g.id].accuracy)).join(', ')}`,
        ...findingLines(r),
        'Part II, test split (worst-group, average):',
        ...r.part2.map((m) => `  ${m.method}${m.epoch !== null ? ` [epoch ${m.epoch}]` : ''}: ${pct(m.worst_group_accuracy)}, ${pct(m.average_accuracy)}`),
        ...(r.figure ? [`figure: ${r.figure.png}`] : []),
        `report: ${r.report} (and ${r.html.split('/').pop()})`,
        '',
      ];
      process.stdout.write(lines.join('\n'));
    });
}
