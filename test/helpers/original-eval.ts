/**
 * PyTorch, following the original's evaluation procedure (test/fixtures/original_eval.py), on the uint8
 * images spurmem decoded: the reference numbers of the eval parity tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadBatches, type Dataset } from '../../src/data/index.js';
import { tempDir } from './datasets.js';
import { runPython, testDir } from './python.js';

/** What original_eval.py prints: per-group counts and accuracies, the summaries and the raw outputs. */
export interface OriginalEval {
  groups: { id: number; count: number; accuracy: number | null }[];
  average_accuracy: number;
  worst_group_accuracy: number;
  mean_accuracy: number;
  outputs: number[];
}

/**
 * Evaluates `checkpoint` on the test split of `ds` at `resolution` px as the original does (its head and label
 * order), with its batches of `batchSize` images.
 */
export async function originalEval(
  ds: Dataset,
  o: { checkpoint: string; head: string; labelOrder: string; resolution: number; batchSize: number },
): Promise<OriginalEval> {
  const dir = tempDir();
  const samples = ds.samples.test;
  const parts: Uint8Array[] = [];
  for await (const b of loadBatches(samples, { resolution: o.resolution, batchSize: 64 })) parts.push(b.images);
  writeFileSync(join(dir, 'inputs.u8'), Buffer.concat(parts));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({
    n: samples.length, resolution: o.resolution, y: samples.map((s) => s.y), group: samples.map((s) => s.group), place: samples.map((s) => s.a),
    train_group_counts: ds.trainGroupCounts, batch_size: o.batchSize, checkpoint: o.checkpoint, head: o.head, label_order: o.labelOrder,
  }));
  return JSON.parse(runPython(join(testDir, 'fixtures', 'original_eval.py'), [dir])) as OriginalEval;
}
