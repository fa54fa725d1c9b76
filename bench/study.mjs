#!/usr/bin/env node
// Study speed: a `largest` + `random_noise` study with R = 10 on a Fashion-Waterbirds split, against
//   (a) 11 plain evaluation passes over the same split in the same process (goal: the study takes at most
//       1.25x their time: no model copies, the split decoded once), and
//   (b) the original's procedure in PyTorch (bench/original_largest.py: reload the weights for every
//       repetition, decode every image with PIL + torchvision on every pass; goal: spurmem >= 3x faster).
//
//   npm run build && node bench/study.mjs [--scale 0.1] [--size 96 | --width 500 --height 375] [--resolution 64] [--threads N]
//
// --size makes square images; --width/--height other sizes (500x375 is Waterbirds' typical size, where the
// original's decoding on every pass weighs most).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, demoJpegs, dist, python, workDir } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    scale: { type: 'string', default: '0.1' },
    size: { type: 'string', default: '96' },
    width: { type: 'string' },
    height: { type: 'string' },
    resolution: { type: 'string', default: '64' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const threads = Number(a.threads);
const resolution = Number(a.resolution);
const width = Number(a.width ?? a.size);
const height = Number(a.height ?? a.size);
const root = await demoJpegs(width, height, Number(a.scale));
const { addon } = await dist('native.js');
const { train } = await dist('train/erm.js');
const { prepareStudy, runStudySetting } = await dist('neurons/study.js');
const { evaluateSplit } = await dist('eval/evaluate-split.js');
addon().setNumThreads(threads);

const run = join(workDir, `study-bench-run-${a.scale}-${width}x${height}-${resolution}`);
rmSync(run, { recursive: true, force: true });
mkdirSync(workDir, { recursive: true });
await train({ dataset: 'folder', root, arch: 'resnet18', resolution, epochs: 1, batchSize: 64, optimizer: 'adam', lr: 1e-3, threads, out: run, evalInitial: false }, { log: () => {} });

const ctx = await prepareStudy({ run, threads, batchSize: 200 });
const n = ctx.ds.samples.train.length;
// warm the decode cache, then time 11 plain passes
await evaluateSplit(ctx.model, ctx.ds, 'train', { resolution, batchSize: 200, cache: ctx.cache });
let t = performance.now();
for (let i = 0; i < 11; i++) await evaluateSplit(ctx.model, ctx.ds, 'train', { resolution, batchSize: 200, cache: ctx.cache });
const plain = (performance.now() - t) / 1000;
// a fresh base: the study pays for its own decoding, as a user's run does
const fresh = await prepareStudy({ run, threads, batchSize: 200 });
t = performance.now();
await runStudySetting(fresh, { split: 'train', ranking: 'largest', mode: 'random_noise', std: 0.02, topK: 3, repeats: 10, out: join(run, 'bench-study'), quiet: true }, () => {});
const studyS = (performance.now() - t) / 1000;

const setting = { checkpoint: join(run, 'epoch_0_checkpoints.pth.tar'), root, arch: 'resnet18', resolution, split: 'train', mode: 'random_noise', top_k: 3, std: 0.02, repeats: 10, threads, seed: 0 };
t = performance.now();
const r = spawnSync(python(), [join(benchDir, 'original_largest.py'), JSON.stringify(setting)], { encoding: 'utf8' });
if (r.status !== 0) throw new Error(r.stderr);
const orig = (performance.now() - t) / 1000;

console.log(`study: largest + random_noise, R = 10, resnet18 @ ${resolution}px, train split of ${n} ${width}x${height} JPEGs, ${threads} thread(s)`);
console.log(`11 plain eval passes (decoded images cached): ${plain.toFixed(2)} s`);
console.log(`spurmem study (decoding included):            ${studyS.toFixed(2)} s  -> ${(studyS / plain).toFixed(2)}x the 11 passes (goal <= 1.25)`);
console.log(`original procedure in PyTorch:               ${orig.toFixed(2)} s  -> spurmem ${(orig / studyS).toFixed(2)}x faster (goal >= 3)`);
