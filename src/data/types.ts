/**
 * Dataset types shared by the readers, the loader, the metrics and the training loops.
 *
 * A group is g = 2·y + a (the original's `y * n_places + place` with two places), where y is the class
 * and a the spurious attribute ("place" in Waterbirds' metadata.csv, Male in CelebA).
 */

/** A dataset split; metadata.csv's `split` column holds its position (train 0, val 1, test 2). */
export type Split = 'train' | 'val' | 'test';

/** The splits in the order of their metadata.csv code: `SPLITS[code]`. */
export const SPLITS: readonly Split[] = Object.freeze(['train', 'val', 'test'] as const);

/** The dataset kinds `openDataset` reads. */
export type DatasetKind = 'waterbirds' | 'celeba' | 'folder';
/** The dataset kinds, as a list. */
export const DATASET_KINDS: readonly DatasetKind[] = Object.freeze(['waterbirds', 'celeba', 'folder'] as const);

/** One image with its labels. */
export interface Sample {
  /** Position within its split (0..n-1), in metadata order (the original's `id`). */
  index: number;
  /** 1-based line number of the row in the metadata file, for error messages. */
  line: number;
  /** Absolute path of the image. */
  file: string;
  /** Class (Waterbirds: 1 = waterbird; CelebA: the target attribute, Blond_Hair by default). */
  y: 0 | 1;
  /** Spurious attribute (Waterbirds: 1 = water background; CelebA: Male by default). */
  a: 0 | 1;
  /** Group id 2·y + a. */
  group: number;
  split: Split;
}

/** An image that was left out (missing, or not decodable) because the caller asked to skip bad images. */
export interface SkippedImage {
  file: string;
  line: number;
  split: Split;
  reason: string;
}

/** A dataset read by `openDataset`. */
export interface Dataset {
  kind: DatasetKind;
  /** Absolute path of the dataset folder. */
  root: string;
  /** The file the samples came from (metadata.csv, list_attr_celeba.txt, ...). */
  metadataFile: string;
  /** Four group names, indexed by group id (shared/DESIGN.md). */
  groupNames: string[];
  samples: Record<Split, Sample[]>;
  /** Samples per group in the train split, length 4 (the weights of the average accuracy). */
  trainGroupCounts: number[];
  /** Non-fatal findings, e.g. counts that differ from the published ones. */
  warnings: string[];
  /** Images skipped (missing files) with `skipBadImages`. */
  skipped: number;
  /** The skipped images, in metadata order. */
  skippedImages: SkippedImage[];
  /** The target and spurious attribute names (column or CelebA attribute). */
  target: string;
  attribute: string;
}
