// Benchmark: ResNet-50 eval forward pass, 224x224, batch 32, on the CPU: images/s of spurmem's
// Model.forward (with a uint8 image batch, normalised natively, and with a float batch) against PyTorch
// (torchvision's resnet50, eval, torch.no_grad) with the same weights and the same thread count, in the
// same run. Prints medians and the ratios spurmem / PyTorch in images/s (goal: >= 0.95).
//
//   npx tsc -p tsconfig.json && node bench/forward.mjs [--threads N] [--repeats 3] [--batch 32] [--size 224]
//
// --threads defaults to os.availableParallelism(), as spurmem's own default; PyTorch gets
// torch.set_num_threads(N). PyTorch runs in a Python child process; the sides take turns one batch at a
// time (PyTorch, spurmem uint8, spurmem float, ...) after two warm-up batches each. PyTorch and spurmem's
// float batch are the same numbers.
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint } from '../dist/src/checkpoint.js';
import { createModel, loadWeights } from '../dist/src/model/index.js';
import { addon } from '../dist/src/native.js';
import { flag, loadNote, median, pythonServer, resnet50Weights, workDir } from './common.mjs';

const threads = Number(flag('threads', availableParallelism()));
const repeats = Number(flag('repeats', 3));
const batch = Number(flag('batch', 32));
const size = Number(flag('size', 224));
const weights = resnet50Weights().zip;

const model = createModel({ arch: 'resnet50', numClasses: 1000, head: 'linear', device: 'cpu', threads });
const report = await loadWeights(model, await readCheckpoint(weights), { strict: true });
if (report.loaded.length !== 320) throw new Error(`loaded ${report.loaded.length} of 320 tensors`);

// a fixed batch: uint8 RGB images [n, h, w, 3], and the float [n, 3, h, w] tensor of the same numbers
let seed = 1;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) / (1 << 24);
const images = new Uint8Array(batch * size * size * 3).map(() => Math.floor(rand() * 256));
const tensor = new Float32Array(batch * 3 * size * size).map(() => (rand() - 0.5) * 4);
const inputs = {
  uint8: { images, shape: [batch, size, size, 3] },
  float: { tensor, shape: [batch, 3, size, size] },
};

// PyTorch gets the same float batch
const inputFile = join(workDir, `input-${batch}x${size}.f32`);
writeFileSync(inputFile, Buffer.from(tensor.buffer));
const torch = await pythonServer('forward.py', [weights, inputFile, threads, batch, size], { OMP_NUM_THREADS: String(threads) });
const ours = async (b) => {
  const t0 = process.hrtime.bigint();
  const out = await model.forward(b);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (out.length !== batch * 1000) throw new Error(`forward gave ${out.length} numbers`);
  return s;
};
const torchThreads = Number(await torch.ask('threads'));
if (torchThreads !== threads) throw new Error(`PyTorch runs ${torchThreads} threads, not ${threads}`);
const times = { torch: [], uint8: [], float: [] };
for (let r = -2; r < repeats; r++) {
  const t = Number(await torch.ask('run'));
  const u = await ours(inputs.uint8);
  const f = await ours(inputs.float);
  if (r >= 0) {
    times.torch.push(t);
    times.uint8.push(u);
    times.float.push(f);
  }
}
torch.close();

const ips = (xs) => batch / median(xs);
const v = addon().versions();
if (v.threads !== threads) throw new Error(`libtorch runs ${v.threads} threads here, not ${threads}`);
console.log(
  `ResNet-50 eval forward, batch ${batch} at ${size}x${size}, CPU, ${threads} thread${threads === 1 ? "" : "s"} on both sides ` +
    `(libtorch ${v.libtorch}; ${await loadNote()}), median of ${repeats} batches:`,
);
console.log(`  PyTorch (no_grad, float batch)   ${ips(times.torch).toFixed(2)} images/s`);
for (const k of ['uint8', 'float']) {
  console.log(
    `  spurmem (${k} batch)${' '.repeat(12 - k.length)}   ${ips(times[k]).toFixed(2)} images/s   ` +
      `ratio spurmem/PyTorch ${(ips(times[k]) / ips(times.torch)).toFixed(2)} (goal >= 0.95)`,
  );
}
