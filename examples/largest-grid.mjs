#!/usr/bin/env node
// The original Largest study's grid (StudyChannelwiseLargestNeuronExperiments.py, the settings named in
// its commented configuration lists, original-behaviour §5), run as one spurmem sweep:
//
//   random_init   top_k 1-3  x  std {0.02, 0.15, 0.1}    9 settings, R = 10 each
//   random_noise  top_k 1-3  x  std {0.02, 0.01, 0.005}  9 settings, R = 10 each
//   zero          top_k 1-10                            10 settings
//   rewind        top_k 1-3  x  {5, 10} epochs back      6 settings
//                                                       34 distinct settings
//
// The lists name 34 distinct settings (the rewind top-k is not given there; 1-3 as the random modes).
// Every setting evaluates the same split for the unmodified and the modified model (Q1, Q28).
//
//   node examples/largest-grid.mjs --run experiments/resnet50_waterbirds_erm [--split train] [--device cuda]
//                                  [--workers N | --devices cuda:0,cuda:1] [--out DIR]
//   node examples/largest-grid.mjs --demo     # a small Fashion-Waterbirds model trained here first (CPU, minutes);
//                                             # it shows the pipeline, not the effect: that tiny model has hardly
//                                             # any minority samples to memorise, so the changes stay near 0
//
// The run folder needs the epochs 10 before its last (rewind 10), as the original's epoch 40 -> 30.
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { expandSweep, makeDemoDataset, parseSweepConfig, sweep, sweepTable, train } from 'spurmem';

const { values: o } = parseArgs({
  options: {
    run: { type: 'string' },
    demo: { type: 'boolean' },
    split: { type: 'string', default: 'train' },
    device: { type: 'string' },
    workers: { type: 'string' },
    devices: { type: 'string' },
    out: { type: 'string' },
  },
});

let run = o.run;
if (o.demo) {
  // Fashion-Waterbirds (real Fashion-MNIST items on land/water textures, Waterbirds' 95 % correlation),
  // 2 % of Waterbirds' size, and a resnet18 at 48 px trained for 11 epochs (0-10).
  const dir = join(tmpdir(), 'spurmem-largest-grid');
  const root = join(dir, 'data');
  await makeDemoDataset({ out: root, scale: 0.02, width: 56, height: 56, seed: 0, force: true });
  const t = await train({ dataset: 'folder', root, arch: 'resnet18', resolution: 48, epochs: 11, batchSize: 32, lr: 1e-3, out: join(dir, 'run'), force: true }, { log: () => {} });
  run = t.out;
  console.error(`demo model: ${run} (test worst-group ${t.final.test.worst_group_accuracy?.toFixed(3)}, average ${t.final.test.average_accuracy?.toFixed(3)})`);
}
if (!run) {
  console.error('give --run DIR (a spurmem train run folder) or --demo');
  process.exit(2);
}

const config = {
  base: { run, ...(o.device ? { device: o.device } : {}) },
  grid: { ranking: 'largest', split: o.split, mode: 'random_init', top_k: [1, 2, 3], std: [0.02, 0.15, 0.1], repeats: 10 },
  include: [
    { mode: 'random_noise', std: [0.02, 0.01, 0.005] },
    { mode: 'zero', top_k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    { mode: 'rewind', rewind_epochs: [5, 10] },
  ],
  out: o.out ?? join(run, 'sweeps', `largest_${o.split}`),
};

const plan = expandSweep(parseSweepConfig(config));
const count = (mode) => plan.filter((p) => p.setting.mode === mode).length;
console.error(
  `${plan.length} settings: random_init ${count('random_init')}, random_noise ${count('random_noise')}, zero ${count('zero')}, rewind ${count('rewind')}`,
);

const summary = await sweep(config, {
  workers: o.workers ? Number(o.workers) : undefined,
  devices: o.devices ? o.devices.split(',') : undefined,
});
process.stdout.write(sweepTable(summary));
process.exitCode = summary.failed.length || summary.missing.length ? 1 : 0;
