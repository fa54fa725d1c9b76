// End-to-end evaluation on the CPU: `spurmem eval` of a CelebA-sized folder against PyTorch the original's
// way (PIL, DataLoader num_workers=0, batch 200) with 1 and 2 threads and with DataLoader(num_workers=2),
// in one run, each in its own process, with wall time, max RSS and the ratios; and the core-seconds lower
// bound (decode core-seconds + model core-seconds) / cores: decoding's CPU time (every thread it uses)
// and the model's time on one thread.
//
// The folder is CelebA's official layout (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt)
// with 202,599 names, hard links to 256 distinct 178x218 JPEGs, so it takes a few MiB; --test-images N
// keeps N images in the test partition (default 19,962, CelebA's) and moves the rest to train.
//
// Every row says its CPU time (user + system, all threads: the core-seconds it used, steadier than the wall
// time on a busy machine) and the machine's 1-minute load average when it ended (the machine may be shared).
// --quick leaves out the rows that are not comparisons with PyTorch (--threads 1, spinning OpenMP threads,
// evaluate() twice).
//
// spurmem and the lower bound are measured --repeat times in turn (default 3) and their medians compared;
// each run's ratio to the bound measured right after it is printed too.
//
//   npm run build:ts && node bench/eval-e2e.mjs [--resolution 32] [--test-images N] [--repeat N] [--skip-torch] [--quick]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, dist, pythonBin, repoDir, workDir } from './common.mjs';

const { values } = parseArgs({
  options: {
    resolution: { type: 'string', default: '32' },
    'test-images': { type: 'string', default: '19962' },
    'skip-torch': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '3' },
    child: { type: 'string' },
  },
});
const R = Number(values.resolution);
const nTest = Number(values['test-images']);
const TOTAL = 202599;
const CELEBA = { train: 162770, val: 19867, test: 19962 };
// the 40 attribute names of CelebA's list_attr_celeba.txt, in its order (shared with test/celeba.test.ts)
const ATTRS = readFileSync(join(repoDir, 'test', 'fixtures', 'celeba_attributes.txt'), 'utf8').trim().split(' ');

/** The CelebA-sized folder (made once per test size). */
async function celebaFolder() {
  const root = join(workDir, `celeba-sized-v2-${nTest}`);
  if (existsSync(join(root, 'list_eval_partition.txt'))) return root;
  const sharp = (await import('sharp')).default;
  rmSync(root, { recursive: true, force: true });
  const imgs = join(root, 'img_align_celeba');
  const src = join(root, 'distinct');
  mkdirSync(imgs, { recursive: true });
  mkdirSync(src, { recursive: true });
  process.stderr.write(`making ${root} ...\n`);
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let k = 0; k < 256; k++) {
    const w = 178;
    const h = 218;
    const px = Buffer.alloc(w * h * 3);
    const c0 = [rnd() * 255, rnd() * 255, rnd() * 255];
    const fx = 0.01 + rnd() * 0.1;
    const fy = 0.01 + rnd() * 0.1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, c0[c] + 60 * Math.sin(fx * x * (c + 1) + fy * y) + (rnd() - 0.5) * 40));
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(src, `${k}.jpg`));
  }
  const names = [];
  const attrLines = [String(TOTAL), ATTRS.join(' ') + ' '];
  const part = [];
  const testFrom = CELEBA.train + CELEBA.val;
  const moved = CELEBA.test - nTest;
  for (let i = 1; i <= TOTAL; i++) {
    const name = String(i).padStart(6, '0') + '.jpg';
    names.push(name);
    linkSync(join(src, `${i % 256}.jpg`), join(imgs, name));
    const vals = ATTRS.map((_, a) => ((Math.imul(i, 2654435761) ^ Math.imul(a + 1, 40503)) >>> 0) % 5 < 2 ? ' 1' : '-1');
    attrLines.push(`${name} ${vals.join(' ')}`);
    const p = i <= CELEBA.train ? 0 : i <= testFrom ? 1 : i - testFrom <= moved ? 0 : 2;
    part.push(`${name} ${p}`);
  }
  writeFileSync(join(root, 'list_attr_celeba.txt'), attrLines.join('\r\n') + '\r\n');
  writeFileSync(join(root, 'list_eval_partition.txt'), part.join('\n') + '\n');
  return root;
}

/** Runs a command under /usr/bin/time; returns wall seconds, max RSS in MiB and stdout. */
function timed(cmd, args, env = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M %U %S', cmd, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr.slice(-3000)}`);
  const m = /@@([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall: Number(m[1]), rssMib: Number(m[2]) / 1024, cpu: Number(m[3]) + Number(m[4]), stdout: r.stdout, stderr: r.stderr, load: loadavg()[0] };
}

// ---- child: the lower bound's two parts: decoding's CPU time, and the model's time on one thread ------
if (values.child === 'bound') {
  const [root, weights] = [process.env.BENCH_ROOT, process.env.BENCH_WEIGHTS];
  const { openDataset, loadBatches } = await dist('data/index.js');
  const { createModel, setThreads, loadWeights } = await dist('model/index.js');
  const { readCheckpoint } = await dist('checkpoint.js');
  const { cpuBudget } = await dist('util/cpu-budget.js');
  setThreads(1);
  cpuBudget().setDecodeThreads(1);
  const ds = await openDataset({ dataset: 'celeba', root });
  const samples = ds.samples.test;
  // decoding's core-seconds: the process's CPU time over the loading loop (the decoding threads, on the
  // addon's pool or not, and the loader's JavaScript)
  const c0 = process.cpuUsage();
  const kept = [];
  for await (const b of loadBatches(samples, { resolution: R, batchSize: 200 })) if (kept.length < 3) kept.push(b);
  const c1 = process.cpuUsage(c0);
  const decode = (c1.user + c1.system) / 1e6;
  let t0;
  const model = createModel({ arch: 'resnet18', head: 'linear', imageSize: R });
  await loadWeights(model, await readCheckpoint(weights));
  t0 = performance.now();
  let n = 0;
  for (let i = 0; n < samples.length; i++) {
    const b = kept[i % kept.length];
    await model.forward({ images: b.images, shape: b.shape }, { train: false });
    n += b.shape[0];
  }
  const compute = ((performance.now() - t0) / 1000) * (samples.length / n);
  process.stdout.write(JSON.stringify({ decode, compute }) + '\n');
  process.exit(0);
}

// ---- child: the Node API's evaluate() twice in one process ------------------------------------------
if (values.child === 'api') {
  const { evaluateDetailed } = await dist('eval/evaluate.js');
  const input = { checkpoint: process.env.BENCH_WEIGHTS, dataset: 'celeba', root: process.env.BENCH_ROOT, split: 'test', resolution: R };
  const a = await evaluateDetailed(input);
  const b = await evaluateDetailed(input);
  process.stdout.write(JSON.stringify({ first: a.seconds, second: b.seconds }) + '\n');
  process.exit(0);
}

const root = await celebaFolder();
const weights = join(workDir, 'resnet18-2.pth');
if (!existsSync(weights)) {
  execFileSync(pythonBin(), ['-c', `import torch, torchvision\ntorch.manual_seed(0)\ntorch.save(torchvision.models.resnet18(num_classes=2).state_dict(), ${JSON.stringify(weights)})`]);
}
const cores = availableParallelism();
console.log(`eval of ${nTest} CelebA-sized test images (178x218 JPEG) at ${R} px, ResNet-18 (2 outputs), ${cores} cores, load average ${loadavg()[0].toFixed(1)}`);
const rows = [];
const show = (label, t) => {
  const py = t.py ? ` (data ${t.py.data.toFixed(1)} s, model ${t.py.compute.toFixed(1)} s)` : '';
  console.log(`  ${label.padEnd(66)} ${t.wall.toFixed(1).padStart(7)} s  ${t.cpu.toFixed(1).padStart(7)} CPU s  ${t.rssMib.toFixed(0).padStart(5)} MiB  load ${t.load.toFixed(1)}${py}`);
};
const row = (label, t) => {
  rows.push([label, t]);
  show(label, t);
  return t;
};
const spurmem = (extra = [], env = {}) =>
  timed(process.execPath, [join(repoDir, 'bin', 'spurmem.js'), 'eval', '--dataset', 'celeba', '--root', root, '--checkpoint', weights, '--split', 'test', '--resolution', String(R), '--json', ...extra], env);
// spurmem and the lower bound, measured in turn --repeat times (the medians are used: a shared machine's
// speed drifts over minutes); PyTorch's rows once each
const boundChild = () => {
  const t = timed(process.execPath, [join(benchDir, 'eval-e2e.mjs'), '--child', 'bound', '--resolution', String(R)], { BENCH_ROOT: root, BENCH_WEIGHTS: weights });
  return { ...JSON.parse(t.stdout.trim()), load: t.load };
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const repeats = Math.max(1, Number(values.repeat));
const oursRuns = [];
const boundRuns = [];
for (let r = 0; r < repeats; r++) {
  oursRuns.push(spurmem());
  show(`spurmem eval (default), run ${r + 1} of ${repeats}`, oursRuns.at(-1));
  boundRuns.push(boundChild());
  const b = boundRuns.at(-1);
  console.log(`  lower bound, run ${r + 1} of ${repeats}: (decode ${b.decode.toFixed(1)} + model ${b.compute.toFixed(1)} core-s) / ${cores} = ${((b.decode + b.compute) / cores).toFixed(1)} s (load ${b.load.toFixed(1)})`);
}
const pick = oursRuns.map((t) => t.wall);
const ours = row(`spurmem eval (default), median of ${repeats}`, oursRuns.find((t) => t.wall === median(pick)));
if (!values.quick) {
  row('spurmem eval --threads 1', spurmem(['--threads', '1']));
  row('spurmem eval, OpenMP threads spinning (OMP_WAIT_POLICY=ACTIVE)', spurmem([], { OMP_WAIT_POLICY: 'ACTIVE' }));
}
const torch = {};
if (!values['skip-torch']) {
  for (const [label, threads, workers] of [['PyTorch, original way (num_workers=0), 1 thread', 1, 0], ['PyTorch, original way (num_workers=0), 2 threads', 2, 0], ['PyTorch, DataLoader(num_workers=2), 2 threads', 2, 2]]) {
    const t = timed(pythonBin(), [join(benchDir, 'eval_e2e.py'), root, weights, R, threads, workers]);
    t.py = JSON.parse(t.stdout.trim().split('\n').pop());
    torch[`${threads}/${workers}`] = t;
    row(label, t);
  }
}
const bound = { decode: median(boundRuns.map((b) => b.decode)), compute: median(boundRuns.map((b) => b.compute)), load: median(boundRuns.map((b) => b.load)) };
const lower = (bound.decode + bound.compute) / cores;
const api = values.quick ? undefined : JSON.parse(timed(process.execPath, [join(benchDir, 'eval-e2e.mjs'), '--child', 'api', '--resolution', String(R)], { BENCH_ROOT: root, BENCH_WEIGHTS: weights }).stdout.trim());

console.log(`  lower bound (medians): (decode ${bound.decode.toFixed(1)} + model ${bound.compute.toFixed(1)} core-s) / ${cores} cores = ${lower.toFixed(1)} s (load ${bound.load.toFixed(1)})`);
console.log(`  spurmem / lower bound: ${(ours.wall / lower).toFixed(2)}`);
// each spurmem run against the lower bound measured right after it: the machine's drift over minutes cancels
const paired = oursRuns.map((t, i) => t.wall / ((boundRuns[i].decode + boundRuns[i].compute) / cores));
console.log(`  spurmem / lower bound, run by run: ${paired.map((x) => x.toFixed(2)).join(', ')} (median ${median(paired).toFixed(2)})`);
console.log(`  spurmem's CPU seconds / (decode + model core-seconds): ${(ours.cpu / (bound.decode + bound.compute)).toFixed(2)} (the pipeline's overhead, whatever the load)`);
if (torch['2/0']) console.log(`  PyTorch (2 threads, num_workers=0) / spurmem: ${(torch['2/0'].wall / ours.wall).toFixed(2)}x`);
if (torch['1/0']) console.log(`  PyTorch (1 thread, num_workers=0) / spurmem: ${(torch['1/0'].wall / ours.wall).toFixed(2)}x`);
if (torch['2/2']) console.log(`  PyTorch (DataLoader num_workers=2) / spurmem: ${(torch['2/2'].wall / ours.wall).toFixed(2)}x`);
if (torch['1/0']) console.log(`  CPU seconds, PyTorch (1 thread, num_workers=0) / spurmem: ${(torch['1/0'].cpu / ours.cpu).toFixed(2)}x`);
if (api) console.log(`  Node API evaluate() twice in one process: ${api.first.toFixed(1)} s, then ${api.second.toFixed(1)} s (the second decodes nothing)`);
