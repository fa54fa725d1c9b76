// Benchmark: loading ResNet-50 weights (~100 MB, torchvision's resnet50() state dict) from the zip and
// the legacy layout: spurmem's readCheckpoint against torch.load (Debian's python3-torch) on the same
// files in the same run. Prints median times and the ratio spurmem / torch (goal: <= 1.0).
//
//   npx tsc -p tsconfig.json && node --expose-gc bench/load.mjs [--repeats 15]
//
// torch.load runs in a Python child process kept alive for the whole run; the two sides take turns, one
// load at a time (torch zip, spurmem zip, torch legacy, spurmem legacy, ...), so that both see the same
// machine. Every file is loaded once by each side before timing (page cache, allocators). Between loads
// the previous result is dropped: Python frees it at once; here gc() runs outside the timed part.
import { statSync } from 'node:fs';
import { readCheckpoint } from '../dist/src/checkpoint.js';
import { addon } from '../dist/src/native.js';
import { flag, loadNote, median, pythonServer, resnet50Weights } from './common.mjs';

const repeats = Number(flag('repeats', 15));
const files = resnet50Weights();
const gc = globalThis.gc ?? (() => {});
if (!globalThis.gc) process.stderr.write('note: run node with --expose-gc for steadier figures\n');

const torch = await pythonServer('load.py', [], { OMP_NUM_THREADS: '1' });
const layouts = ['zip', 'legacy'];
const times = { torch: { zip: [], legacy: [] }, spurmem: { zip: [], legacy: [] } };
const ours = async (f) => {
  gc();
  await new Promise((resolve) => setImmediate(resolve));  // let the dropped checkpoint's finalizer run
  const t0 = process.hrtime.bigint();
  const ck = await readCheckpoint(f);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (ck.entries().length !== 320) throw new Error(`${f}: expected 320 tensors`);
  return ms;
};
for (const layout of layouts) {
  await torch.ask(files[layout]);
  await ours(files[layout]);
}
for (let r = 0; r < repeats; r++) {
  for (const layout of layouts) {
    times.torch[layout].push(Number(await torch.ask(files[layout])) * 1000);
    times.spurmem[layout].push(await ours(files[layout]));
  }
}
torch.close();

const v = addon().versions();
console.log(`ResNet-50 weights load (libtorch ${v.libtorch}, ${await loadNote()}), median of ${repeats} loads each:`);
for (const layout of layouts) {
  const s = median(times.spurmem[layout]);
  const t = median(times.torch[layout]);
  const mb = statSync(files[layout]).size / 1e6;
  console.log(
    `  ${layout.padEnd(6)} ${mb.toFixed(1)} MB   spurmem ${s.toFixed(1)} ms   torch.load ${t.toFixed(1)} ms   ` +
      `ratio spurmem/torch ${(s / t).toFixed(2)} (goal <= 1.0)`,
  );
}
