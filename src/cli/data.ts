/**
 * `spurmem data make-demo` (the built-in Fashion-Waterbirds dataset) and `spurmem data check`.
 */
import { Command } from 'commander';
import type { CheckReport } from '../data/check.js';
import { SPLITS } from '../data/types.js';
import { addDatasetOptions, type DatasetFlags } from './dataset-options.js';
import { addOptions } from '../options/derive.js';
import { MAKE_DEMO_KEYS } from '../options/table.js';
import { progressBar } from '../util/progress.js';

function makeDemoCommand(): Command {
  const cmd = new Command('make-demo').description(
    'build Fashion-Waterbirds: Fashion-MNIST items (class y) on land or water backgrounds (place), in the Waterbirds layout',
  );
  return addOptions(cmd, 'makeDemo', MAKE_DEMO_KEYS)
    .option('--json', 'print {root, images, counts, groupNames} as JSON')
    .action(
      async (o: {
        out: string; scale: number; size: [number, number]; seed: number; fashionMnist: string; classes0: number[]; classes1: number[];
        itemSize: number; itemOpacity: number; force?: boolean; json?: boolean;
      }) => {
        const bar = progressBar('make-demo');
        const t0 = Date.now();
        const { makeDemoDataset } = await import('../data/fashion-waterbirds.js');
        const r = await makeDemoDataset({
          out: o.out, scale: o.scale, width: o.size[0], height: o.size[1], seed: o.seed, fashionMnistDir: o.fashionMnist,
          classes0: o.classes0, classes1: o.classes1, itemSize: o.itemSize, itemOpacity: o.itemOpacity, force: o.force,
          onProgress: bar.update,
        }).finally(() => bar.stop());
        if (o.json) {
          process.stdout.write(JSON.stringify({ root: r.root, images: r.images, counts: r.counts, groupNames: r.groupNames }) + '\n');
          return;
        }
        const lines = [`Fashion-Waterbirds: ${r.images} images in ${r.root} (${((Date.now() - t0) / 1000).toFixed(1)} s)`];
        lines.push(`${'group'.padEnd(5)}  ${'name'.padEnd(22)}  ${SPLITS.map((s) => s.padStart(5)).join('  ')}`);
        r.groupNames.forEach((n, g) => lines.push(`${String(g).padEnd(5)}  ${n.padEnd(22)}  ${[r.counts.train[g], r.counts.val[g], r.counts.test[g]].map((c) => String(c).padStart(5)).join('  ')}`));
        lines.push(`open it with: --dataset folder --root ${r.root}`);
        process.stdout.write(lines.join('\n') + '\n');
      },
    );
}

/** The text report of `data check`. */
export function checkText(r: CheckReport, limit = 20): string {
  const nameW = Math.max(4, ...r.groupNames.map((n) => n.length));
  const lines = [`${r.dataset} dataset at ${r.root} (${r.metadataFile})`];
  const cols = SPLITS.map((s) => Math.max(s.length, String(r.splits[s].count).length));
  const row = (a: string, b: string, v: string[]) => `${a.padEnd(5)}  ${b.padEnd(nameW)}  ${v.map((x, i) => x.padStart(cols[i])).join('  ')}`;
  lines.push(row('group', 'name', [...SPLITS]));
  r.groupNames.forEach((n, g) => lines.push(row(String(g), n, SPLITS.map((s) => String(r.splits[s].groups[g])))));
  lines.push(row('all', '', SPLITS.map((s) => String(r.splits[s].count))));
  const list = (title: string, items: CheckReport['missing']) => {
    lines.push(`${title}: ${items.length}`);
    for (const m of items.slice(0, limit)) lines.push(`  line ${m.line} (${m.split}): ${m.file}${m.reason === 'no such file' ? '' : `: ${m.reason}`}`);
    if (items.length > limit) lines.push(`  ... and ${items.length - limit} more (--json lists them all)`);
  };
  list('missing images', r.missing);
  if (r.deep) {
    list('images that do not decode', r.undecodable);
    const modes = Object.entries(r.modes).sort((a, b) => b[1] - a[1]);
    lines.push(`colour modes (as PIL opens them): ${modes.length ? modes.map(([m, n]) => `${m === '?' ? 'other format' : m} ${n}`).join(', ') : 'none'}`);
    lines.push(`images converted to RGB as PIL's convert('RGB') does: ${r.converted.length}`);
    for (const c of r.converted.slice(0, limit)) lines.push(`  line ${c.line} (${c.split}): ${c.file}: ${c.mode}, ${c.conversion}`);
    if (r.converted.length > limit) lines.push(`  ... and ${r.converted.length - limit} more (--json lists them all)`);
  } else lines.push('images not decoded (add --deep to decode every image, count the colour modes and list the images that need a colour conversion)');
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.ok ? 'ok' : 'problems found');
  return lines.join('\n');
}

function checkCommand(): Command {
  const cmd = new Command('check').description(
    'counts per split and group, missing image files and, with --deep, images that do not decode, images per colour mode and those that need a colour conversion',
  );
  addDatasetOptions(cmd, { skip: false });
  return cmd
    .option('--deep', "decode every image as the transforms do; count the images per colour mode (PIL's) and list those converted to RGB (CMYK, palette, alpha, 16-bit, 1-bit)")
    .option('--json', 'print the report as JSON: {dataset, root, metadataFile, groupNames, splits, missing, undecodable, modes, converted, warnings, ok}')
    .action(async (o: DatasetFlags & { deep?: boolean; json?: boolean }) => {
      const bar = progressBar('decoding');
      const { checkDataset } = await import('../data/check.js');
      const r = await checkDataset({ dataset: o.dataset, root: o.root, target: o.target, attribute: o.attribute, deep: o.deep, onProgress: bar.update }).finally(() => bar.stop());
      process.stdout.write((o.json ? JSON.stringify(r) : checkText(r)) + '\n');
      if (!r.ok) process.exitCode = 1;
    });
}

export function dataCommand(): Command {
  return new Command('data')
    .description('datasets: build the built-in demo dataset, check a dataset folder')
    .addCommand(makeDemoCommand())
    .addCommand(checkCommand());
}
