/** A small real base for the sweep tests: Fashion-Waterbirds at a small scale and a resnet18 trained on it. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { makeDemoDataset } from '../../src/data/fashion-waterbirds.js';
import { train } from '../../src/train/erm.js';
import { tempDir } from './datasets.js';
import { repoDir } from './python.js';

/** Brings dist/ up to date: worker processes and Slurm tasks run the compiled CLI. */
export function buildDist(): void {
  execFileSync('bash', [join(repoDir, 'scripts', 'setup.sh'), '--build'], { cwd: repoDir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * A demo dataset (scale 0.02: 96 training images, 40 x 40 px) and a `spurmem train` run folder with 3
 * epochs of resnet18 at 32 px (epochs 0-2, so rewinds of 1 or 2 epochs have a source).
 */
export async function trainedRun(): Promise<{ dir: string; root: string; run: string }> {
  const dir = tempDir('spurmem-sweep-');
  const root = join(dir, 'data');
  await makeDemoDataset({ out: root, scale: 0.02, width: 40, height: 40, seed: 1 });
  const run = join(dir, 'run');
  await train(
    { dataset: 'folder', root, arch: 'resnet18', resolution: 32, epochs: 3, batchSize: 32, lr: 1e-3, out: run, threads: 1, evalInitial: false },
    { log: () => undefined },
  );
  return { dir, root, run };
}
