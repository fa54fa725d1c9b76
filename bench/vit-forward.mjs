#!/usr/bin/env node
/**
 * Benchmark: eval forward throughput (images/s) of a ViT (default DeiT-small, 224 px, the original's
 * 2-way softmax head) on the CPU, spurmem's addon vs PyTorch (Python, the reference module of
 * test/fixtures/reference.py), same weights, same input, same number of threads, in one run.
 *
 *   npx tsc -p tsconfig.json && node bench/vit-forward.mjs [--arch deit_small] [--threads N]
 *       [--batch 8] [--iters 3] [--rounds 3] [--warmup 1] [--resolution 224]
 *
 * Both sides use the BLAS that libtorch finds at run time (Debian: whatever provides libblas.so.3;
 * reference BLAS unless OpenBLAS is installed), so both see the same one. $SPURMEM_PYTHON picks the
 * interpreter (default /usr/bin/python3). Prints the median (and best) seconds per batch, images/s,
 * the process CPU seconds per batch (with --threads 1 the figure least disturbed by other load on the
 * machine), the largest output difference, and the ratio spurmem / PyTorch (goal >= 0.95).
 * SPURMEM_CPU_CACHE_MB=0 runs the addon without its CPU memory cache (native/cpu_cache.h).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { addon } = await import(join(root, 'dist/src/native.js'));
const { createModel } = await import(join(root, 'dist/src/model/index.js'));

const { values: a } = parseArgs({
  options: {
    arch: { type: 'string', default: 'deit_small' },
    threads: { type: 'string', default: String(availableParallelism()) },
    batch: { type: 'string', default: '8' },
    iters: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    resolution: { type: 'string', default: '224' },
  },
});
const threads = Number(a.threads), batch = Number(a.batch), iters = Number(a.iters), rounds = Number(a.rounds), warmup = Number(a.warmup), res = Number(a.resolution);
for (const [k, v] of Object.entries({ threads, batch, iters, rounds, resolution: res })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
}

const work = join(root, 'bench', '.work', 'vit-forward');
mkdirSync(work, { recursive: true });
const native = addon();
native.setNumThreads(threads); // intra-op threads of the addon; the Python side calls torch.set_num_threads

// same weights on both sides: the native model's random init, saved as an ERM-style checkpoint
const m = createModel({ arch: a.arch, head: 'softmax', imageSize: res, device: 'cpu', seed: 0 });
const modelFile = join(work, 'model.pth');
await m.save(modelFile, { epoch: 0, loss: 0, optimizer: false });

// PyTorch starts first: it also writes the input. Then rounds alternate (PyTorch, spurmem, ...) so that
// both sides see the same machine load.
const python = process.env.SPURMEM_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const child = spawn(python, [join(root, 'bench', 'vit_forward.py'), '--model', modelFile, '--out', work, '--arch', a.arch,
  '--threads', String(threads), '--batch', String(batch), '--iters', String(iters), '--warmup', String(warmup),
  '--resolution', String(res)], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
async function pyLine() {
  const r = await Promise.race([lines.next(), exited.then((c) => ({ exited: c }))]);
  if ('exited' in r || r.done) throw new Error(`python stopped (${r.exited ?? 'end of output'})`);
  return JSON.parse(r.value);
}
const ready = await pyLine();

const xt = (await native.readCheckpoint(join(work, 'x.pth'))).tensor([]);
const x = { tensor: xt.data, shape: xt.shape };
let out;
for (let i = 0; i < Math.max(warmup, 1); i++) out = await m.forward(x);
const seconds = [], pySeconds = [], cpu = [], pyCpu = [];
for (let r = 0; r < rounds; r++) {
  child.stdin.write('run\n');
  const pr = await pyLine();
  pySeconds.push(...pr.seconds);
  pyCpu.push(...pr.cpu);
  for (let i = 0; i < iters; i++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    out = await m.forward(x);
    seconds.push(Number(process.hrtime.bigint() - t) / 1e9);
    const dc = process.cpuUsage(c);
    cpu.push((dc.user + dc.system) / 1e6);
  }
}
child.stdin.end('quit\n');
await exited;
const want = (await native.readCheckpoint(join(work, 'py_out.pth'))).tensor([]).data;
let diff = 0;
for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(out[i] - want[i]));

const median = (s) => [...s].sort((p, q) => p - q)[Math.floor(s.length / 2)];
const best = (s) => Math.min(...s);
const ours = batch / median(seconds), theirs = batch / median(pySeconds);
const v = native.versions();
console.log(`${a.arch} eval forward, ${res} px, batch ${batch}, ${rounds} alternating rounds of ${iters} timed batches per side after ${warmup} warm-up, ${threads} threads`);
console.log(`  libtorch ${v.libtorch} (addon, threads ${v.threads}) | torch ${ready.torch} (Python, threads ${ready.threads})`);
console.log(`  spurmem  median ${median(seconds).toFixed(4)} s/batch (best ${best(seconds).toFixed(4)})  ${ours.toFixed(2)} images/s`);
console.log(`  PyTorch  median ${median(pySeconds).toFixed(4)} s/batch (best ${best(pySeconds).toFixed(4)})  ${theirs.toFixed(2)} images/s`);
console.log(`  process CPU s/batch (median): spurmem ${median(cpu).toFixed(4)}, PyTorch ${median(pyCpu).toFixed(4)}; ratio ${(median(pyCpu) / median(cpu)).toFixed(3)} (with 1 thread this is the least disturbed by other load)`);
console.log(`  max |output difference| ${diff.toExponential(2)}`);
console.log(`  ratio spurmem / PyTorch: ${(ours / theirs).toFixed(3)} (medians; best batches: ${(best(pySeconds) / best(seconds)).toFixed(3)}) (goal >= 0.95)`);
