import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { addon } from '../src/native.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { fixturesDir } from './helpers/python.js';
import { maxAbsDiff, numbers, read, relErr } from './helpers/native.js';

describe('ERM training steps match PyTorch', () => {
  for (const opt of ['sgd', 'adam'] as const) {
    it(`${opt}: three steps on uint8 batches give the same losses and weights (1e-4 relative)`, async () => {
      const ref = await addon().readCheckpoint(join(fixturesDir, 'train', 'steps.pth'));
      const images = ref.tensor(['images']);
      const targets = numbers(ref.tensor(['targets']));
      const weights = numbers(ref.tensor(['weights']));
      const m = createModel({ arch: 'resnet18', device: 'cpu' });
      await loadWeights(m, await read('resnet18.zip.pth'));
      m.setOptimizer(opt === 'sgd' ? { type: 'sgd', lr: 1e-2, momentum: 0.9, weightDecay: 1e-4 } : { type: 'adam', lr: 1e-3 });
      const [n, h, w] = images.shape;
      const per = h * w * 3;
      const losses: number[] = [];
      for (const [a, b] of [[0, 3], [3, 6], [0, 3]]) {
        const r = await m.trainStep(
          { images: (images.data as Uint8Array).subarray(a * per, b * per), shape: [b - a, h, w, 3] },
          { targets: Int32Array.from(targets.slice(a, b)), weights: Float32Array.from(weights.slice(a, b)) },
        );
        losses.push(r.loss);
      }
      expect(n).toBe(6);
      expect(maxAbsDiff(losses, numbers(ref.tensor([opt, 'losses'])))).toBeLessThan(1e-5);
      let worst = 0;
      for (const k of ref.keys([opt, 'after'])) {
        const got = numbers(m.tensor(k));
        const want = numbers(ref.tensor([opt, 'after', k]));
        const e = k.endsWith('num_batches_tracked') ? maxAbsDiff(got, want) : relErr(got, want);
        worst = Math.max(worst, e);
        expect(e, k).toBeLessThan(1e-4);
      }
      console.log(`${opt}: losses ${losses.map((l) => l.toFixed(6)).join(', ')}; worst relative weight error ${worst.toExponential(2)}`);
    });
  }
});
