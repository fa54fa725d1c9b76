/** Runs test/fixtures/original_study.py (the original's study procedure in PyTorch) on images spurmem decoded. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addon } from '../../src/native.js';
import { loadBatches, openDataset } from '../../src/data/index.js';
import { runPython, testDir } from './python.js';

/** What original_study.py writes: per block the chosen channels (null when it could not rank), the repeats' group accuracies. */
export interface OriginalStudy {
  unmodified: (number | null)[];
  blocks: {
    source_group: number | null;
    channels: { name: string; index: number; value: number }[] | null;
    positive: number | null;
    repeats: (number | null)[][];
    first_weights: Record<string, number[]>;
  }[];
}

/** spurmem's decoded eval-transform images of a split of a folder dataset, written for the Python side. */
async function dumpSplit(dir: string, root: string, split: 'train' | 'val' | 'test', resolution: number): Promise<string> {
  const ds = await openDataset({ dataset: 'folder', root });
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const b of loadBatches(ds.samples[split], { resolution, batchSize: 64 })) {
    chunks.push(b.images.slice());
    n += b.shape[0];
  }
  const images = new Uint8Array(n * resolution * resolution * 3);
  let off = 0;
  for (const c of chunks) {
    images.set(c, off);
    off += c.length;
  }
  const path = join(dir, `${split}.pth`);
  await addon().writeCheckpoint(path, {
    images: { dtype: 'uint8', shape: [n, resolution, resolution, 3], data: images },
    groups: { dtype: 'int64', shape: [n], data: BigInt64Array.from(ds.samples[split], (s) => BigInt(s.group)) },
  });
  return path;
}

/**
 * The original procedure (ranking, modification, evaluation) on the split spurmem decoded, with the
 * checkpoint (an original-style {model_state_dict} of a resnet18 with the Linear + Softmax head).
 * `loss` (activated): probabilities (the original's), logits, or logits64 (float64).
 */
export async function originalStudy(o: {
  dir: string;
  root: string;
  checkpoint: string;
  split: 'train' | 'val' | 'test';
  resolution: number;
  ranking: string;
  mode: string;
  topK: number;
  std: number;
  seeds: number[][];
  loss?: 'probabilities' | 'logits' | 'logits64';
  tag?: string;
}): Promise<OriginalStudy> {
  const data = await addon().readCheckpoint(await dumpSplit(o.dir, o.root, o.split, o.resolution));
  const tag = o.tag ?? `${o.ranking}-${o.mode}-${o.loss ?? 'probabilities'}`;
  const input = join(o.dir, `in-${tag}.pth`);
  await addon().writeCheckpoint(input, {
    images: data.tensor(['images']),
    groups: data.tensor(['groups']),
    checkpoint: o.checkpoint,
    ranking: o.ranking,
    mode: o.mode,
    top_k: o.topK,
    std: { __float__: o.std },
    seeds: o.seeds,
    loss: o.loss ?? 'probabilities',
  });
  const output = join(o.dir, `out-${tag}.json`);
  runPython(join(testDir, 'fixtures', 'original_study.py'), [input, output]);
  return JSON.parse(readFileSync(output, 'utf8')) as OriginalStudy;
}
