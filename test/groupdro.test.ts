import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createModel } from '../src/model/index.js';
import { GroupDro, groupDroStep, perSampleCrossEntropy, type GroupDroSaved } from '../src/train/groupdro.js';
import { train } from '../src/train/erm.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { readCheckpointMeta } from '../src/checkpoint-meta.js';
import { smallDemo } from './helpers/demo-data.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers/datasets.js';
import { maxAbsDiff, numbers, relErr } from './helpers/native.js';
import { runPython, testDir } from './helpers/python.js';

interface RefStep {
  loss: number;
  q: number[];
  group_loss: number[];
  per_sample: number[];
  grads?: Record<string, number[]>;
}

describe('GroupDRO matches a PyTorch port of Algorithm 1 (Sagawa et al. 2020)', () => {
  for (const adjustment of [0, 2]) {
    it(`two steps (a batch without group 3, then a full batch), adjustment ${adjustment}: loss, group weights, gradients and BatchNorm statistics`, async () => {
      const dir = tempDir('spurmem-groupdro-');
      const R = 32;
      const batches = [
        { targets: [0, 1, 1, 0, 1, 0, 0, 1], groups: [0, 2, 2, 1, 2, 0, 0, 2] },
        { targets: [1, 0, 1, 0, 1, 1, 0, 0, 1, 0], groups: [3, 0, 2, 1, 3, 2, 0, 1, 2, 0] },
      ];
      const rng = new Rng(11);
      const total = batches.reduce((a, b) => a + b.targets.length, 0);
      const images = Uint8Array.from({ length: total * R * R * 3 }, () => rng.int(0, 256));
      const model = createModel({ arch: 'resnet18', head: 'linear', device: 'cpu', seed: 5, imageSize: R, threads: 1 });
      const ckpt = join(dir, 'start.pth');
      await model.save(ckpt, { epoch: 0, loss: 0, optimizer: false });
      // small steps: the second step's losses then test the carried q, not float32 noise of the first step's weights
      const lrs = [1e-3, 1e-3];
      // gradients compared on the first, a middle and the last layers (all of resnet18's would be 11M numbers of JSON)
      const names = ['conv1.weight', 'bn1.weight', 'layer2.0.downsample.0.weight', 'layer4.1.conv2.weight', 'layer4.1.bn2.bias', 'fc.weight', 'fc.bias'];
      model.setOptimizer({ type: 'sgd', lr: lrs[0] });
      const trainCounts = [300, 20, 15, 280];
      const eta = 0.5; // large enough that q moves visibly in two steps
      writeFileSync(join(dir, 'images.u8'), images);
      writeFileSync(
        join(dir, 'meta.json'),
        JSON.stringify({ checkpoint: ckpt, arch: 'resnet18', head: 'linear', resolution: R, eta, adjustment, train_counts: trainCounts, lrs, grad_names: names, batches: batches.map((b) => ({ n: b.targets.length, ...b })) }),
      );
      const ref = JSON.parse(runPython(join(testDir, 'fixtures', 'baselines_reference.py'), ['groupdro', dir])) as { steps: RefStep[]; after: Record<string, number[]> };

      const dro = new GroupDro(trainCounts, eta, adjustment);
      const n0 = batches[0].targets.length;
      const per = R * R * 3;
      const batchAt = (a: number, n: number) => ({ images: images.subarray(a * per, (a + n) * per), shape: [n, R, R, 3] as [number, number, number, 3], samples: [] });
      // the gradients of step 0, read back as (before - after) / lr with lr 1 (a small lr would lose digits to
      // the weights); then the weights, BatchNorm statistics and q are put back for the steps compared below
      {
        const all = [...model.info().parameters, ...model.info().buffers].map((p) => p.name);
        const probe = new GroupDro(trainCounts, eta, adjustment);
        await model.withSnapshot(all, async () => {
          const before = Object.fromEntries(names.map((k) => [k, numbers(model.tensor(k))]));
          model.setLearningRate(1);
          await groupDroStep(model, probe, batchAt(0, n0), Int32Array.from(batches[0].targets), Int32Array.from(batches[0].groups));
          let worst = 0;
          let worstName = '';
          for (const k of names) {
            const grad = numbers(model.tensor(k)).map((v, i) => before[k][i] - v);
            const e = relErr(grad, ref.steps[0].grads![k]);
            if (e > worst) [worst, worstName] = [e, k];
          }
          console.log(`adjustment ${adjustment}: largest relative gradient difference of step 0: ${worst.toExponential(2)} (${worstName})`);
          // float32 backward passes of two libtorch builds: about 1e-6 of the largest gradient, not more
          expect(worst).toBeLessThan(2e-6);
        });
      }
      const pure = new GroupDro(trainCounts, eta, adjustment);
      let at = 0;
      for (const [bi, b] of batches.entries()) {
        const n = b.targets.length;
        model.setLearningRate(lrs[bi]);
        const { loss, update } = await groupDroStep(model, dro, batchAt(at, n), Int32Array.from(b.targets), Int32Array.from(b.groups));
        at += n;
        const want = ref.steps[bi];
        // the update itself, on PyTorch's per-sample losses: the same arithmetic (float64 here, float32 there)
        const exact = pure.update(want.per_sample, b.groups);
        expect(Math.abs(exact.loss - want.loss), `loss of step ${bi} from PyTorch's losses`).toBeLessThan(1e-6);
        expect(maxAbsDiff(exact.q, want.q), `q after step ${bi} from PyTorch's losses`).toBeLessThan(1e-6);
        expect(maxAbsDiff(exact.groupLoss, want.group_loss), `group losses of step ${bi} from PyTorch's losses`).toBeLessThan(1e-6);
        // the whole step on our forward pass: float32 forward passes of two libtorch builds differ by about 1e-6
        const tol = bi === 0 ? 1e-6 : 1e-5;
        expect(maxAbsDiff(update.q, want.q), `q after step ${bi}`).toBeLessThan(tol);
        expect(Math.abs(loss - want.loss), `loss of step ${bi}`).toBeLessThan(tol);
        expect(maxAbsDiff(update.groupLoss, want.group_loss), `group losses of step ${bi}`).toBeLessThan(tol);
      }
      // BatchNorm's running statistics moved once per batch, as in the reference
      let worstBuffer = 0;
      for (const b of model.info().buffers) worstBuffer = Math.max(worstBuffer, maxAbsDiff(numbers(model.tensor(b.name)), ref.after[b.name]));
      expect(worstBuffer).toBeLessThan(1e-5);
      // and the weights after both steps
      for (const k of names) expect(relErr(numbers(model.tensor(k)), ref.after[k]), k).toBeLessThan(1e-5);
      // the group weights went to the groups with the larger losses: not uniform any more
      expect(Math.max(...dro.q) - Math.min(...dro.q)).toBeGreaterThan(1e-3);
    });
  }

  it('train --algorithm groupdro: a run resumed after epoch 0 ends with the group weights and model of an uninterrupted run', async () => {
    const root = await smallDemo();
    const base = tempDir('spurmem-groupdro-resume-');
    const opts = {
      dataset: 'folder' as const, root, arch: 'resnet18' as const, resolution: 32, batchSize: 64, optimizer: 'adam' as const, lr: 1e-3, scheduler: 'none' as const,
      augment: false, head: 'linear' as const, labelOrder: 'natural' as const, algorithm: 'groupdro' as const, droEta: 0.2, droAdjustment: 1, evalInitial: false,
      ci: 'none' as const, bootstrap: 0, threads: 1, quiet: true,
    };
    const quiet = { log: () => {} };
    await train({ ...opts, epochs: 2, out: join(base, 'straight') }, quiet);
    await train({ ...opts, epochs: 1, out: join(base, 'resumed') }, quiet);
    const logs: string[] = [];
    await train({ ...opts, epochs: 2, out: join(base, 'resumed'), resume: true }, { log: (l) => logs.push(l) });
    expect(logs.join('\n')).toMatch(/groupdro: resuming the group weights/);
    const read = async (dir: string) => readCheckpoint(join(base, dir, 'epoch_1_checkpoints.pth.tar'));
    const [a, b] = [await read('straight'), await read('resumed')];
    const qa = (readCheckpointMeta(a).groupdro as GroupDroSaved).q;
    const qb = (readCheckpointMeta(b).groupdro as GroupDroSaved).q;
    expect(qa.length).toBe(4);
    expect(Math.max(...qa) - Math.min(...qa)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(qb, qa)).toBeLessThan(1e-9);
    expect(maxAbsDiff(numbers(b.tensor(['model_state_dict', 'fc.weight'])), numbers(a.tensor(['model_state_dict', 'fc.weight'])))).toBeLessThan(1e-6);
  });

  it('restores saved group weights, and refuses ones of the wrong length', () => {
    const a = new GroupDro([5, 5, 5, 5], 0.01, 0);
    a.update([1, 2, 3, 4], [0, 1, 2, 3]);
    const b = new GroupDro([5, 5, 5, 5], 0.01, 0, a.saved());
    expect(Array.from(b.q)).toEqual(Array.from(a.q));
    expect(() => new GroupDro([5, 5, 5, 5], 0.01, 0, { ...a.saved(), q: [1, 2] })).toThrow(/groupdro.q/);
  });

  it('per-sample cross-entropy is -log_softmax at the target', () => {
    const l = perSampleCrossEntropy(Float32Array.from([2, 0, 0, 3]), Int32Array.from([0, 0]), 2);
    expect(l[0]).toBeCloseTo(Math.log(1 + Math.exp(-2)), 12);
    expect(l[1]).toBeCloseTo(3 + Math.log(1 + Math.exp(-3)), 6);
  });
});
