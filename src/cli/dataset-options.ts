/**
 * Dataset options shared by the commands that read a dataset (eval, data check, and the training and
 * study commands): --dataset, --root, --target, --attribute, --skip-bad-images.
 */
import { Command, Option } from 'commander';
import { countsTable, openDataset } from '../data/dataset.js';
import { DATASET_KINDS, type Dataset, type DatasetKind } from '../data/types.js';

export interface DatasetFlags {
  dataset: DatasetKind;
  root: string;
  target?: string;
  attribute?: string;
  skipBadImages?: boolean;
}

/** Adds --dataset, --root, --target, --attribute and (unless `skip` is false) --skip-bad-images. */
export function addDatasetOptions(cmd: Command, o: { skip?: boolean } = {}): Command {
  cmd
    .addOption(new Option('--dataset <kind>', 'waterbirds (waterbird_complete95_forest2water2), celeba, or folder (any Waterbirds-style metadata.csv)').choices([...DATASET_KINDS]).makeOptionMandatory())
    .requiredOption('--root <dir>', 'the dataset folder (CelebA: the folder that holds img_align_celeba/)')
    .option('--target <name>', 'class: a metadata.csv column (default y) or a CelebA attribute (default Blond_Hair)')
    .option('--attribute <name>', 'spurious attribute: a metadata.csv column (default place) or a CelebA attribute (default Male)');
  if (o.skip !== false) cmd.option('--skip-bad-images', 'skip and count missing or undecodable images instead of stopping');
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
