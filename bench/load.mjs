// Benchmark: loading ResNet-50 weights (~100 MB, torchvision's resnet50() state dict) from the zip and
// the legacy layout: spurmem's readCheckpoint against torch.load (Debian's python3-torch) on the same
// files in the same run. The zip file is read twice by spurmem: as by default, checking the CRC-32 of
// every entry, and with { checkStorageCrc: false }, which checks only the pickle's entry; torch.load
// checks none (test/checkpoint-fuzz.test.ts shows it loading a flipped bit). Prints median times and the ratio spurmem / torch (goal: <= 1.0), in wall-clock
// time and in CPU time (user + system, all threads of the process), which a busy machine disturbs less.
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
// case -> [file, readCheckpoint options, torch's case]
const cases = {
  zip: [files.zip, {}, 'zip'],
  'zip, no storage CRC': [files.zip, { checkStorageCrc: false }, 'zip'],
  legacy: [files.legacy, {}, 'legacy'],
};
const times = { torch: { zip: [], legacy: [] }, spurmem: {} };
const cpu = { torch: { zip: [], legacy: [] }, spurmem: {} };
const ours = async (f, o) => {
  gc();
  await new Promise((resolve) => setImmediate(resolve));  // let the dropped checkpoint's finalizer run
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const ck = await readCheckpoint(f, o);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  if (ck.entries().length !== 320) throw new Error(`${f}: expected 320 tensors`);
  return [ms, (c.user + c.system) / 1000];
};
for (const [f, o] of Object.values(cases)) {
  await torch.ask(f);
  await ours(f, o);
}
for (let r = 0; r < repeats; r++) {
  for (const layout of ['zip', 'legacy']) {
    const [tw, tc] = (await torch.ask(files[layout])).split(' ').map((x) => Number(x) * 1000);
    times.torch[layout].push(tw);
    cpu.torch[layout].push(tc);
  }
  for (const [name, [f, o]] of Object.entries(cases)) {
    const [sw, sc] = await ours(f, o);
    (times.spurmem[name] ??= []).push(sw);
    (cpu.spurmem[name] ??= []).push(sc);
  }
}
torch.close();

const v = addon().versions();
console.log(`ResNet-50 weights load (libtorch ${v.libtorch}, ${await loadNote()}), median of ${repeats} loads each:`);
for (const [name, [f, , layout]] of Object.entries(cases)) {
  const s = median(times.spurmem[name]);
  const t = median(times.torch[layout]);
  const sc = median(cpu.spurmem[name]);
  const tc = median(cpu.torch[layout]);
  const mb = statSync(f).size / 1e6;
  console.log(
    `  ${name.padEnd(19)} ${mb.toFixed(1)} MB   wall: spurmem ${s.toFixed(1)} ms, torch.load ${t.toFixed(1)} ms, ` +
      `ratio ${(s / t).toFixed(2)} (goal <= 1.0)   CPU: spurmem ${sc.toFixed(1)} ms, torch.load ${tc.toFixed(1)} ms, ratio ${(sc / tc).toFixed(2)}`,
  );
}
