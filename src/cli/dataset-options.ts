/**
 * Dataset options shared by the commands that read a dataset (eval, data check, and the training and
 * study commands): --dataset, --root, --target, --attribute, --skip-bad-images.
 */
import type { Command } from 'commander';
import { countsTable, openDataset } from '../data/dataset.js';
import type { Dataset, DatasetKind } from '../data/types.js';
import { addOptions } from '../options/derive.js';

export interface DatasetFlags {
  dataset: DatasetKind;
  root: string;
  target?: string;
  attribute?: string;
  skipBadImages?: boolean;
}

/** Adds --dataset, --root, --target, --attribute and (unless `skip` is false) --skip-bad-images. */
export function addDatasetOptions(cmd: Command, o: { skip?: boolean } = {}): Command {
  addOptions(cmd, 'eval', o.skip === false ? ['dataset', 'root', 'target', 'attribute'] : ['dataset', 'root', 'target', 'attribute', 'skipBadImages']);
  return cmd;
}

/**
 * Opens the dataset named by the flags and prints its counts table and warnings: the table to `out`
 * (stdout, or stderr when stdout carries JSON), warnings to stderr.
 */
export async function openFromFlags(f: DatasetFlags, o: { json?: boolean; quiet?: boolean } = {}): Promise<Dataset> {
  const ds = await openDataset({ dataset: f.dataset, root: f.root, target: f.target, attribute: f.attribute, skipBadImages: f.skipBadImages });
  if (!o.quiet) (o.json ? process.stderr : process.stdout).write(countsTable(ds) + '\n');
  for (const w of ds.warnings) process.stderr.write(`warning: ${w}\n`);
  return ds;
}
