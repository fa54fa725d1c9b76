#!/usr/bin/env node
// Sweep benchmark: a 12-setting `largest` sweep with R = 10 repeats per setting on a small Fashion-Waterbirds
// model, done three ways on this machine, in this run:
//
//   A. `spurmem sweep CONFIG` (the in-process backend: the model, the checkpoint and the decoded split are
//      loaded once; each repeat restores the changed channels in place and evaluates from cached images);
//   B. `spurmem study ...` 12 times, one process per setting (what a shell loop over the CLI does);
//   C. the original's procedure in PyTorch (bench/original_largest.py, one Python process per setting, as
//      the original is run once per setting): reload the weights for every repetition, decode every image
//      with PIL + torchvision transforms on every pass, DataLoader num_workers=0.
//
// Prints the wall time of each and the ratios B / A and C / A (also C without Python's start-up and
// imports). Same threads for libtorch and PyTorch (--threads). Checks that A and B give the same numbers,
// and that A and C pick the same channels and see the same unmodified accuracies.
//
//   npm run build && node bench/sweep.mjs [--scale 0.02] [--size 48] [--resolution 48] [--threads 2] [--repeats 10]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(repo, 'dist', 'src', 'index.js');
if (!existsSync(dist)) {
  console.error('build first: npm run build');
  process.exit(2);
}
const { makeDemoDataset, train } = await import(dist);

const { values: a } = parseArgs({
  options: {
    scale: { type: 'string', default: '0.02' },
    size: { type: 'string', default: '48' },
    resolution: { type: 'string', default: '48' },
    threads: { type: 'string', default: '2' },
    repeats: { type: 'string', default: '10' },
  },
});
const threads = Number(a.threads);
const R = Number(a.repeats);
const resolution = Number(a.resolution);
const python = process.env.SPURMEM_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const cli = join(repo, 'bin', 'spurmem.js');

const work = join(repo, 'bench', '.work', 'sweep');
const root = join(work, `data_${a.scale}_${a.size}`);
const run = join(work, `run_${a.scale}_${a.size}_${resolution}`);
mkdirSync(work, { recursive: true });
if (!existsSync(join(root, 'metadata.csv'))) {
  await makeDemoDataset({ out: root, scale: Number(a.scale), width: Number(a.size), height: Number(a.size), seed: 0, force: true });
}
if (!existsSync(join(run, 'epoch_1_checkpoints.pth.tar'))) {
  await train({ dataset: 'folder', root, arch: 'resnet18', resolution, epochs: 2, batchSize: 32, lr: 1e-3, out: run, force: true, threads, evalInitial: false }, { log: () => {} });
}
const checkpoint = join(run, 'epoch_1_checkpoints.pth.tar');

// 12 settings: random_init top_k 1-3 x std {0.02, 0.1}, random_noise top_k 1-3 x std {0.01, 0.02}
const settings = [];
for (const [mode, stds] of [['random_init', [0.02, 0.1]], ['random_noise', [0.01, 0.02]]]) {
  for (const top_k of [1, 2, 3]) for (const std of stds) settings.push({ mode, top_k, std });
}
const config = {
  base: { run, threads, batch_size: 200 },
  grid: { ranking: 'largest', split: 'train', mode: ['random_init'], top_k: [1, 2, 3], std: [0.02, 0.1], repeats: R, seed: 0 },
  include: [{ mode: 'random_noise', std: [0.01, 0.02] }],
  out: join(work, 'sweep_out'),
};
writeFileSync(join(work, 'sweep.json'), JSON.stringify(config, null, 2));

function timed(cmd, args, label) {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr}`);
  return { s, stdout: r.stdout };
}

// ---- A: one sweep process
rmSync(config.out, { recursive: true, force: true });
const A = timed(process.execPath, [cli, 'sweep', join(work, 'sweep.json'), '--json'], 'spurmem sweep');
const sweepSummary = JSON.parse(A.stdout);
if (sweepSummary.finished !== 12) throw new Error(`the sweep finished ${sweepSummary.finished} of 12 settings`);

// ---- B: spurmem study, one process per setting
let B = 0;
const studies = [];
for (const [i, s] of settings.entries()) {
  const out = join(work, 'study_out', String(i));
  rmSync(out, { recursive: true, force: true });
  const r = timed(process.execPath, [
    cli, 'study', '--run', run, '--split', 'train', '--ranking', 'largest', '--mode', s.mode, '--top-k', String(s.top_k), '--std', String(s.std),
    '--repeats', String(R), '--seed', '0', '--threads', String(threads), '--batch-size', '200', '--out', out, '--json',
  ], `spurmem study #${i}`);
  B += r.s;
  studies.push(JSON.parse(r.stdout));
}

// ---- C: the original's procedure in PyTorch, one process per setting
let C = 0;
let Cinner = 0;
const originals = [];
for (const s of settings) {
  const r = timed(python, [join(repo, 'bench', 'original_largest.py'), JSON.stringify({
    checkpoint, root, arch: 'resnet18', resolution, split: 'train', mode: s.mode, top_k: s.top_k, std: s.std, repeats: R, threads, seed: 0,
  })], 'original_largest.py');
  C += r.s;
  const o = JSON.parse(r.stdout.trim().split('\n').pop());
  Cinner += o.seconds;
  originals.push(o);
}

// ---- checks
const byKey = new Map(sweepSummary.settings.map((s) => [`${s.setting.mode}/${s.setting.top_k}/${s.setting.std}`, s]));
let same = true;
let sameChannels = true;
let unmodifiedDiff = 0;
for (const [i, s] of settings.entries()) {
  const sw = JSON.parse(readFileSync(join(byKey.get(`${s.mode}/${s.top_k}/${s.std}`).folder, 'result.json'), 'utf8'));
  const st = studies[i];
  if (JSON.stringify(sw.blocks[0].groups.map((g) => g.mean)) !== JSON.stringify(st.blocks[0].groups.map((g) => g.mean))) same = false;
  const o = originals[i];
  if (JSON.stringify(sw.blocks[0].channels.map((c) => [c.name, c.index])) !== JSON.stringify(o.channels.map((c) => [c[0], c[1]]))) sameChannels = false;
  const u = sw.unmodified.groups.map((g) => g.accuracy);
  u.forEach((v, g) => {
    if (v !== null && o.unmodified[g] !== null) unmodifiedDiff = Math.max(unmodifiedDiff, Math.abs(v - o.unmodified[g]));
  });
}
const n = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).dataset.counts.train.reduce((x, y) => x + y, 0);

console.log(`sweep benchmark: 12 largest settings (random_init, random_noise; top-k 1-3), R = ${R}, resnet18 at ${resolution} px,`);
console.log(`  ${n} train-split images (Fashion-Waterbirds scale ${a.scale}, ${a.size} px), ${threads} threads, ${12 * R + 12} evaluations`);
console.log(`  A  spurmem sweep (one process, base loaded once)        ${A.s.toFixed(1).padStart(7)} s`);
console.log(`  B  spurmem study x 12 (one process per setting)         ${B.toFixed(1).padStart(7)} s`);
console.log(`  C  original procedure in PyTorch (12 processes)         ${C.toFixed(1).padStart(7)} s   (${Cinner.toFixed(1)} s after imports)`);
console.log(`  ratio B / A  = ${(B / A.s).toFixed(2)}   (the sweep vs the study command run once per setting)`);
console.log(`  ratio C / A  = ${(C / A.s).toFixed(2)}   (the sweep vs the original's procedure; ${(Cinner / A.s).toFixed(2)} without Python start-up and imports)`);
console.log(`  checks: sweep = study numbers: ${same ? 'yes' : 'NO'}; same channels as PyTorch: ${sameChannels ? 'yes' : 'NO'}; largest difference of an unmodified group accuracy from PyTorch's (sharp vs PIL decoding): ${(100 * unmodifiedDiff).toFixed(2)} points`);
