#!/usr/bin/env node
// Prefix reuse: a study evaluates its repeats batch by batch, running the unchanged prefix of the network
// once per batch and each repeat only from the first block it touches. Two parts, one run:
//
//   A. ResNet-50 (2-class softmax head, seeded weights) on a Fashion-Waterbirds train split: 11 plain
//      evaluation passes over the split (decode cache warm), against a `largest` + `random_noise` study
//      (top-3, R = 10: 11 evaluations) whose channels lie in layer4.2.conv3 (goal: <= 0.5x the 11 passes),
//      and one whose channels lie in the stem's conv1 (goal: no more than the per-repeat procedure, timed
//      here too: edit, full pass, restore, for each repeat). The three chosen rows of the target tensor
//      are scaled up in the checkpoint so that `largest` picks them.
//   B. The original Largest grid (34 settings, examples/largest-grid.mjs) on a ResNet-18 trained here at
//      64 px (11 epochs, so that rewind 5 and 10 find their checkpoints): `spurmem sweep` (one process)
//      against the original's procedure in PyTorch (bench/original_largest.py, one process per setting:
//      weights reloaded for every repeat, every image decoded with PIL on every pass). Goal: >= 3x.
//
//   npm run build && node bench/prefix.mjs [--threads 2] [--part A|B] [--size 96] [--scale-a 0.02]
//                                          [--resolution-a 112] [--scale-b 0.03] [--resolution-b 64]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDir, demoJpegs, dist, python, repoDir, workDir } from './common.mjs';

const { values: a } = parseArgs({
  options: {
    threads: { type: 'string', default: String(availableParallelism()) },
    part: { type: 'string', default: 'AB' },
    size: { type: 'string', default: '96' },
    'scale-a': { type: 'string', default: '0.02' },
    'resolution-a': { type: 'string', default: '112' },
    'scale-b': { type: 'string', default: '0.03' },
    'resolution-b': { type: 'string', default: '64' },
  },
});
const threads = Number(a.threads);
const size = Number(a.size);
const { addon } = await dist('native.js');
const { createModel } = await dist('model/index.js');
const { prepareStudy, runStudySetting } = await dist('neurons/study.js');
const { evaluateSplit } = await dist('eval/evaluate-split.js');
const { evaluateOptions } = await dist('neurons/study/context.js');
addon().setNumThreads(threads);
mkdirSync(workDir, { recursive: true });
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const lines = [];
const say = (l) => {
  lines.push(l);
  console.log(l);
};

if (a.part.includes('A')) {
  const resolution = Number(a['resolution-a']);
  const root = await demoJpegs(size, size, Number(a['scale-a']));
  // two checkpoints of one seeded ResNet-50: rows 0-2 of the target tensor scaled so that `largest` takes them
  const ckpt = async (name, factor) => {
    const file = join(workDir, `prefix-r50-${name}.pth.tar`);
    const m = createModel({ arch: 'resnet50', seed: 0, imageSize: resolution });
    const t = m.tensor(name);
    const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
    const data = Float32Array.from(t.data);
    for (let i = 0; i < 3 * per; i++) data[i] *= factor;
    m.setTensor(name, { ...t, data });
    await m.save(file, { epoch: 0, loss: 0, optimizer: false });
    return file;
  };
  const base = (checkpoint) => ({ checkpoint, dataset: 'folder', root, arch: 'resnet50', resolution, threads, batchSize: 200 });
  const setting = { split: 'train', ranking: 'largest', mode: 'random_noise', std: 0.02, topK: 3, repeats: 10, quiet: true };

  const deep = await prepareStudy(base(await ckpt('layer4.2.conv3.weight', 10)));
  const n = deep.ds.samples.train.length;
  await evaluateSplit(deep.model, deep.ds, 'train', evaluateOptions(deep)); // decode once: the cache is warm from here on
  let t = performance.now();
  for (let i = 0; i < 11; i++) await evaluateSplit(deep.model, deep.ds, 'train', evaluateOptions(deep));
  const plain = (performance.now() - t) / 1000;
  t = performance.now();
  const rd = await runStudySetting(deep, { ...setting, out: join(workDir, 'prefix-study-deep') }, () => {});
  const deepS = (performance.now() - t) / 1000;

  const stem = await prepareStudy(base(await ckpt('conv1.weight', 30)));
  stem.cache = deep.cache;
  // the per-repeat procedure on the stem setting (edit with the study's seeds, a full pass, restore),
  // timed before and after the study to even out the machine's load
  const perRepeatOnce = async (channels, seeds) => {
    const t1 = performance.now();
    await evaluateSplit(stem.model, stem.ds, 'train', evaluateOptions(stem));
    const edits = channels.map((c) => ({ name: c.name, index: c.index }));
    await stem.model.withSnapshot([...new Set(edits.map((e) => e.name))], async (restore) => {
      for (const seed of seeds) {
        await stem.model.modifyChannels({ edits, mode: 'random_noise', std: 0.02, seed });
        await evaluateSplit(stem.model, stem.ds, 'train', evaluateOptions(stem));
        restore();
      }
    });
    return (performance.now() - t1) / 1000;
  };
  const probe = await prepareStudy(base(join(workDir, 'prefix-r50-conv1.weight.pth.tar')));
  probe.cache = deep.cache;
  const plan = await runStudySetting(probe, { ...setting, repeats: 1, out: join(workDir, 'prefix-study-probe') }, () => {});
  const { repeatSeed } = await dist('neurons/study.js');
  const seeds = Array.from({ length: 10 }, (_, r) => repeatSeed(0, 0, r));
  let perRepeat = await perRepeatOnce(plan.blocks[0].channels, seeds);
  t = performance.now();
  const rs = await runStudySetting(stem, { ...setting, out: join(workDir, 'prefix-study-stem') }, () => {});
  const stemS = (performance.now() - t) / 1000;
  perRepeat = (perRepeat + (await perRepeatOnce(rs.blocks[0].channels, rs.blocks[0].seeds))) / 2;
  const evalS = (r) => r.timing.data_seconds + r.timing.compute_seconds;
  const where = (r) => [...new Set(r.blocks[0].channels.map((c) => c.name))].join(', ');
  say(`A. ResNet-50 @ ${resolution}px, train split of ${n} ${size}x${size} JPEGs, batch 200, ${threads} thread(s), load average ${load()}:`);
  say(`  11 plain passes                          ${plain.toFixed(1).padStart(6)} s`);
  say(`  study, channels in ${where(rd).padEnd(22)} ${deepS.toFixed(1).padStart(6)} s   ratio ${(deepS / plain).toFixed(2)} of 11 passes (goal <= 0.50); its evaluations ${evalS(rd).toFixed(1)} s`);
  say(`  study, channels in ${where(rs).padEnd(22)} ${stemS.toFixed(1).padStart(6)} s   ratio ${(stemS / plain).toFixed(2)} of 11 passes; its evaluations ${evalS(rs).toFixed(1)} s`);
  say(`  per-repeat procedure, same stem setting  ${perRepeat.toFixed(1).padStart(6)} s   (11 passes: edit, full pass, restore; mean of a run before and after the study)`);
  say(`  stem study's evaluations / per-repeat procedure = ${(evalS(rs) / perRepeat).toFixed(2)} (goal <= 1.0; the rest of the study, ranking and result files, is unchanged code)`);
}

if (a.part.includes('B')) {
  const resolution = Number(a['resolution-b']);
  const scale = a['scale-b'];
  const root = await demoJpegs(size, size, Number(scale));
  const { train } = await dist('train/erm.js');
  const run = join(workDir, `prefix-grid-run-${scale}-${size}-${resolution}`);
  if (!existsSync(join(run, 'epoch_10_checkpoints.pth.tar'))) {
    rmSync(run, { recursive: true, force: true });
    process.stderr.write(`training ${run} (11 epochs) ...\n`);
    await train({ dataset: 'folder', root, arch: 'resnet18', resolution, epochs: 11, batchSize: 32, optimizer: 'adam', lr: 1e-3, threads, out: run, evalInitial: false }, { log: () => {} });
  }
  // the grid of examples/largest-grid.mjs
  const settings = [];
  for (const top_k of [1, 2, 3]) for (const std of [0.02, 0.15, 0.1]) settings.push({ mode: 'random_init', top_k, std, repeats: 10 });
  for (const top_k of [1, 2, 3]) for (const std of [0.02, 0.01, 0.005]) settings.push({ mode: 'random_noise', top_k, std, repeats: 10 });
  for (let top_k = 1; top_k <= 10; top_k++) settings.push({ mode: 'zero', top_k, std: 0, repeats: 1 });
  for (const top_k of [1, 2, 3]) for (const back of [5, 10]) settings.push({ mode: 'rewind', top_k, std: 0, repeats: 1, back });
  const config = {
    base: { run, threads, batch_size: 200 },
    grid: { ranking: 'largest', split: 'train', mode: 'random_init', top_k: [1, 2, 3], std: [0.02, 0.15, 0.1], repeats: 10, seed: 0 },
    include: [
      { mode: 'random_noise', std: [0.02, 0.01, 0.005] },
      { mode: 'zero', top_k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      { mode: 'rewind', rewind_epochs: [5, 10] },
    ],
    out: join(workDir, 'prefix-grid-sweep'),
  };
  const cfgFile = join(workDir, 'prefix-grid.json');
  writeFileSync(cfgFile, JSON.stringify(config, null, 2));
  const timed = (cmd, args, label) => {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    if (r.status !== 0) throw new Error(`${label} failed (${r.status}): ${r.stderr}`);
    return { s: (performance.now() - t0) / 1000, stdout: r.stdout };
  };
  rmSync(config.out, { recursive: true, force: true });
  const A = timed(process.execPath, [join(repoDir, 'bin', 'spurmem.js'), 'sweep', cfgFile, '--json'], 'spurmem sweep');
  const summary = JSON.parse(A.stdout);
  if (summary.finished !== 34) throw new Error(`the sweep finished ${summary.finished} of 34 settings`);
  process.stderr.write(`spurmem sweep: ${A.s.toFixed(1)} s; now the original's procedure, 34 processes ...\n`);
  let C = 0;
  let Cinner = 0;
  const originals = [];
  for (const s of settings) {
    const o = {
      checkpoint: join(run, 'epoch_10_checkpoints.pth.tar'), root, arch: 'resnet18', resolution, split: 'train', mode: s.mode, top_k: s.top_k, std: s.std, repeats: s.repeats, threads, seed: 0,
      ...(s.back ? { rewind_checkpoint: join(run, `epoch_${10 - s.back}_checkpoints.pth.tar`) } : {}),
    };
    const r = timed(python(), [join(benchDir, 'original_largest.py'), JSON.stringify(o)], 'original_largest.py');
    C += r.s;
    process.stderr.write(`  original ${originals.length + 1}/34 ${s.mode} top-${s.top_k}: ${r.s.toFixed(1)} s (total ${C.toFixed(1)} s)\n`);
    const out = JSON.parse(r.stdout.trim().split('\n').pop());
    Cinner += out.seconds;
    originals.push(out);
  }
  // checks: the same channels as PyTorch's ranking, and the same unmodified accuracies (within decoding differences)
  let sameChannels = true;
  let unmodifiedDiff = 0;
  const rows = summary.settings;
  for (const [i, s] of settings.entries()) {
    const row = rows.find((x) => x.setting.mode === s.mode && x.setting.top_k === s.top_k && (s.back ? x.setting.rewind_epochs === s.back : s.mode === 'zero' || x.setting.std === s.std));
    const res = JSON.parse(readFileSync(join(row.folder, 'result.json'), 'utf8'));
    if (JSON.stringify(res.blocks[0].channels.map((c) => [c.name, c.index])) !== JSON.stringify(originals[i].channels.map((c) => [c[0], c[1]]))) sameChannels = false;
    res.unmodified.groups.forEach((g, k) => {
      if (g.accuracy !== null && originals[i].unmodified[k] !== null) unmodifiedDiff = Math.max(unmodifiedDiff, Math.abs(g.accuracy - originals[i].unmodified[k]));
    });
  }
  const first = JSON.parse(readFileSync(join(rows[0].folder, 'result.json'), 'utf8'));
  const n = first.unmodified.groups.reduce((x, g) => x + g.count, 0);
  const evals = settings.reduce((x, s) => x + s.repeats + 1, 0);
  say(`B. the original Largest grid (34 settings, ${evals} evaluations as the original counts them), resnet18 @ ${resolution}px trained 11 epochs, ${n} train-split ${size}x${size} JPEGs, ${threads} thread(s), load average ${load()}:`);
  say(`  spurmem sweep (one process)                      ${A.s.toFixed(1).padStart(7)} s   channels in ${[...new Set(first.blocks[0].channels.map((c) => c.name))].join(', ')}`);
  say(`  original procedure in PyTorch (34 processes)     ${C.toFixed(1).padStart(7)} s   (${Cinner.toFixed(1)} s after imports)`);
  say(`  ratio original / spurmem = ${(C / A.s).toFixed(2)} (goal >= 3); ${(Cinner / A.s).toFixed(2)} without Python start-up and imports`);
  say(`  checks: same channels as PyTorch: ${sameChannels ? 'yes' : 'NO'}; largest difference of an unmodified group accuracy (sharp/PIL decoding): ${(100 * unmodifiedDiff).toFixed(2)} points`);
}
writeFileSync(join(workDir, 'prefix-last.txt'), lines.join('\n') + '\n');
