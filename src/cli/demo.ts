/**
 * `spurmem demo`: the whole study on the built-in dataset, with a report.
 */
import { Command } from 'commander';
import { demo } from '../demo/run.js';
import { SMOKE_TEST_NOTICE, drop, testOf, verdict } from '../demo/report.js';
import { addOptions } from '../options/derive.js';
import { DEMO_KEYS } from '../options/table.js';
import type { DemoArch } from '../options/enums.js';

export function demoCommand(): Command {
  const cmd = new Command('demo').description(
    'run the whole study on the built-in Fashion-Waterbirds dataset (made from Debian\'s Fashion-MNIST): ERM, ' +
      'critical neurons (largest zero / random_noise, activated zero), finetune-prune, and a report (report.md, report.html)',
  );
  return addOptions(cmd, 'demo', DEMO_KEYS)
    .action(async (o: { out: string; quick?: boolean; arch: DemoArch; device: string; threads?: number; seed: number }) => {
      const r = await demo(o);
      const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
      const lines = [
        '',
        ...(r.smoke_test ? [SMOKE_TEST_NOTICE] : []),
        `ERM (epoch ${r.erm.epoch}): test worst-group ${pct(r.erm.test.worst_group_accuracy)}, average ${pct(r.erm.test.average_accuracy)}; ` +
          `training accuracy of the minority groups ${r.groups.filter((g) => g.minority).map((g) => pct(r.erm.train.groups[g.id].accuracy)).join(', ')}`,
        ...r.studies.map(
          (s) =>
            `${s.title}: ${s.blocks.map((b) => `${b.source_group !== null ? `group ${b.source_group}'s gradients: ` : ''}minority groups ${drop(b.minority_change_points, b.minority_samples, testOf(b, 'minority'))}, majority groups ${drop(b.majority_change_points, b.majority_samples, testOf(b, 'majority'))} (${verdict(b.minority_change_points, b.majority_change_points, { minority: b.minority_samples, majority: b.majority_samples }, { minority: testOf(b, 'minority'), majority: testOf(b, 'majority') })})`).join('; ')}`,
        ),
        `finetune-prune: test worst-group ${pct(r.finetune.start_test.worst_group_accuracy)} -> ${pct(r.finetune.selected_test.worst_group_accuracy)}`,
        `report: ${r.report} (and ${r.html.split('/').pop()})`,
        '',
      ];
      process.stdout.write(lines.join('\n'));
    });
}
