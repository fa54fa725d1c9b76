#!/usr/bin/env node
// Training throughput on the CPU: images/s of one training step (forward, the original's loss, backward,
// Adam) on uint8 batches of batch 32, for ResNet-50 at 224 px and ResNet-18 at 64 px, spurmem
// (Model.trainStep) next to the same loop in PyTorch (bench/train_loop.py), same thread count, same run.
// Prints the ratio spurmem / PyTorch (goal >= 0.95).
//
//   npm run build && node bench/train.mjs [--threads N] [--iters N] [--warmup 3]
//
// Timed steps: --iters, else 30 for ResNet-18 and 8 for ResNet-50 (fewer steps are noisy).
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, dist, python } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    threads: { type: 'string', default: String(availableParallelism()) },
    iters: { type: 'string' },
    warmup: { type: 'string', default: '3' },
  },
});
const threads = Number(a.threads);
const warmup = Number(a.warmup);
const { addon } = await dist('native.js');
const { createModel } = await dist('model/index.js');
addon().setNumThreads(threads);

async function ours(arch, res, batch, iters) {
  const m = createModel({ arch, device: 'cpu', seed: 0 });
  m.setOptimizer({ type: 'adam', lr: 5e-6 });
  const images = new Uint8Array(batch * res * res * 3);
  for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
  const b = { images, shape: [batch, res, res, 3] };
  const targets = Int32Array.from({ length: batch }, (_, i) => i % 2);
  for (let i = 0; i < warmup; i++) await m.trainStep(b, { targets });
  const t = performance.now();
  for (let i = 0; i < iters; i++) await m.trainStep(b, { targets });
  return (batch * iters) / ((performance.now() - t) / 1000);
}

function theirs(arch, res, batch, iters) {
  const r = spawnSync(python(), [join(benchDir, 'train_loop.py'), arch, String(res), String(batch), String(iters), String(warmup), String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim());
}

console.log(`training throughput, batch 32, ${threads} thread(s), ${warmup} warm-up steps each`);
for (const [arch, res, n] of [['resnet18', 64, 30], ['resnet50', 224, 8]]) {
  const iters = a.iters ? Number(a.iters) : n;
  const s = await ours(arch, res, 32, iters);
  const p = theirs(arch, res, 32, iters);
  console.log(`${arch} @ ${res}px, ${iters} timed steps: spurmem ${s.toFixed(1)} img/s, PyTorch ${p.toFixed(1)} img/s, ratio ${(s / p).toFixed(2)} (goal >= 0.95)`);
}
