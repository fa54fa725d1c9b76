// The checks of scripts/gpu-check.sh (run that script: it builds the addon first).
//
//   node scripts/gpu-check.mjs [--device cuda] [--quick] [--out DIR]
//
// --quick shrinks every size (a dry run; on a CPU it takes a few minutes). Prints one summary table,
// writes summary.json to the work folder, and exits 1 when parity fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { addon } from '../dist/src/native.js';
import { createModel, loadWeights } from '../dist/src/model/index.js';
import { makeDemoDataset } from '../dist/src/data/index.js';
import { prepareStudy, runStudySetting } from '../dist/src/neurons/study.js';

const { values: opt } = parseArgs({
  options: {
    device: { type: 'string', default: 'cuda' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/.work/gpu-check' },
  },
});
const device = opt.device;
const quick = opt.quick;
const work = resolve(opt.out);
mkdirSync(work, { recursive: true });
const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') && device === 'cpu' ? '/usr/bin/python3' : 'python3');
const threads = availableParallelism();
const a = addon();
a.setNumThreads(threads);
a.checkDevice(device);
const v = a.versions();
const sizes = quick
  ? { parityBatch: 2, batch: 8, iters: 2, warmup: 1, scale: 0.02, width: 500, height: 375, studyBatch: 16 }
  : { parityBatch: 8, batch: 128, iters: 20, warmup: 5, scale: 0.25, width: 500, height: 375, studyBatch: 128 };
const rows = [];
const summary = { device, libtorch: v.libtorch, cuda: v.cuda, cudaDevices: v.cudaDevices, quick, threads };
const log = (s) => process.stderr.write(`gpu-check: ${s}\n`);
const pushRow = (r) => { rows.push(r); log(`  ${r.filter((c) => c !== "").join("  ")}`); };

function py(args) {
  const r = spawnSync(python, [join('scripts', 'gpu_check.py'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${python} scripts/gpu_check.py ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

function randomImages(n) {
  const x = new Uint8Array(n * 224 * 224 * 3);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = s >>> 24;
  }
  return x;
}

// ---- 1. parity ----------------------------------------------------------------------------------
log(`1/3 parity: ResNet-50 on ${device}, TF32 off on both sides`);
py(['parity', '--device', device, '--out', work, '--batch', String(sizes.parityBatch)]);
a.setTf32(false);
const sd = await a.readCheckpoint(join(work, 'resnet50_state_dict.pth'));
const ref = await a.readCheckpoint(join(work, 'parity.pth'));
const m = createModel({ arch: 'resnet50', device });
await loadWeights(m, sd);
const x = ref.tensor(['inputs']);
const out = await m.forward({ tensor: x.data, shape: x.shape });
const want = ref.tensor(['outputs']).data;
let maxDiff = 0;
for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - want[i]));
const parityOk = maxDiff < 1e-4;
summary.parity = { maxAbsDiff: maxDiff, tolerance: 1e-4, ok: parityOk };
pushRow(['parity: ResNet-50 outputs, max |spurmem - PyTorch|', maxDiff.toExponential(2), '< 1e-4', parityOk ? 'ok' : 'FAILED']);
a.setTf32(true);

// ---- 2. throughput ------------------------------------------------------------------------------
log(`2/3 throughput: ResNet-50, 224 px, batch ${sizes.batch}`);
const torchRates = JSON.parse(py(['throughput', '--device', device, '--batch', String(sizes.batch), '--iters', String(sizes.iters), '--warmup', String(sizes.warmup), '--threads', String(threads)]));
const images = randomImages(sizes.batch);
const batch = { images, shape: [sizes.batch, 224, 224, 3] };
const targets = Int32Array.from({ length: sizes.batch }, (_, i) => i % 2);
summary.throughput = {};
for (const [name, amp, cl] of [['fp32', false, false], ['bf16_channels_last', true, true]]) {
  if (amp && !device.startsWith('cuda')) continue;
  const model = createModel({ arch: 'resnet50', device, amp: amp ? 'bf16' : '', channelsLast: cl, seed: 0 });
  model.setOptimizer({ type: 'adam', lr: 1e-4 });
  for (const kind of ['eval', 'train']) {
    const step = kind === 'eval' ? () => model.forward(batch) : () => model.trainStep(batch, { targets });
    for (let i = 0; i < sizes.warmup; i++) await step();
    const t = performance.now();
    for (let i = 0; i < sizes.iters; i++) await step();
    const rate = (sizes.batch * sizes.iters) / ((performance.now() - t) / 1000);
    const theirs = torchRates[`${kind}_${name}`];
    summary.throughput[`${kind}_${name}`] = { spurmem: rate, pytorch: theirs, ratio: rate / theirs };
    pushRow([`${kind} ${name} images/s (spurmem / PyTorch)`, `${rate.toFixed(1)} / ${theirs.toFixed(1)}`, '', `ratio ${(rate / theirs).toFixed(2)}`]);
  }
}

// ---- 3. study on a Waterbirds-sized dataset -----------------------------------------------------
const dataDir = join(work, `waterbirds-sized-${sizes.scale}`);
if (!existsSync(join(dataDir, 'metadata.csv'))) {
  log(`3/3 study: generating ${sizes.scale === 0.25 ? 'a quarter of Waterbirds (2,947)' : 'a few'} ${sizes.width}x${sizes.height} JPEGs in ${dataDir}`);
  await makeDemoDataset({ out: dataDir, scale: sizes.scale, width: sizes.width, height: sizes.height, seed: 0, force: true });
}
log('3/3 study: largest top-3, random_noise std 0.02, 10 repeats, train split');
const ctx = await prepareStudy({ checkpoint: join(work, 'resnet50_state_dict.pth'), dataset: 'folder', root: dataDir, arch: 'resnet50', device, batchSize: sizes.studyBatch, threads });
const t0 = performance.now();
const r = await runStudySetting(ctx, { split: 'train', ranking: 'largest', mode: 'random_noise', std: 0.02, topK: 3, repeats: 10, out: join(work, 'study'), quiet: true }, () => {});
const total = (performance.now() - t0) / 1000;
const n = ctx.ds.samples.train.length;
summary.study = { images: n, evaluations: r.timing.evaluations, seconds: total, data_seconds: r.timing.data_seconds, compute_seconds: r.timing.compute_seconds };
pushRow([`study: ${r.timing.evaluations} passes over ${n} images, total s`, total.toFixed(1), '', `${((n * r.timing.evaluations) / total).toFixed(0)} img/s`]);
pushRow(['study: waiting for data / in the model, s', `${r.timing.data_seconds.toFixed(1)} / ${r.timing.compute_seconds.toFixed(1)}`, '', '']);

// ---- summary ------------------------------------------------------------------------------------
writeFileSync(join(work, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length)), 8, 10];
const line = (c) => `| ${c[0].padEnd(w[0])} | ${c[1].padStart(w[1])} | ${c[2].padEnd(w[2])} | ${c[3].padEnd(w[3])} |`;
process.stdout.write(
  `spurmem GPU check: device ${device}, libtorch ${v.libtorch} (CUDA ${v.cuda ? 'yes' : 'no'}, ${v.cudaDevices} device(s)), ${threads} CPU threads${quick ? ', --quick' : ''}\n` +
    [line(['check', 'value', 'goal', 'result']), line(['-'.repeat(w[0]), '-'.repeat(w[1]), '-'.repeat(w[2]), '-'.repeat(w[3])]), ...rows.map(line)].join('\n') +
    '\n',
);
process.exitCode = parityOk ? 0 : 1;
