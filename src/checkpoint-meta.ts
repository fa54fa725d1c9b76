/**
 * The `spurmem` entry of a checkpoint: what spurmem's train and finetune-prune commands record beside
 * `model_state_dict` so that a checkpoint alone says how to rebuild its model (arch, head, label order,
 * resolution, LayerNorm eps) and how to resume its run (the scheduler's state). One reader for every
 * command that looks at it, and one builder for the epoch loop that writes it.
 */
import type { ModelInfo, NativeCheckpoint } from './native.js';

/** The model a checkpoint's weights belong to, as a run records it. */
export interface CheckpointModel {
  arch: string;
  head: string;
  labelOrder: string;
  /** Image side in pixels. */
  resolution: number;
  dataset: string;
  seed: number;
}

/**
 * What a checkpoint records under `spurmem` (arch, head, label_order, resolution, dataset, seed,
 * ln_eps, scheduler ...), or {} when it has no such entry (checkpoints of the original code, torchvision,
 * timm) or the entry is not an object. Never throws for a missing entry.
 */
export function readCheckpointMeta(ck: NativeCheckpoint): Record<string, unknown> {
  if (!ck.keys([]).includes('spurmem')) return {};
  const meta = ck.toObject(['spurmem']);
  return meta !== null && typeof meta === 'object' ? (meta as Record<string, unknown>) : {};
}

/**
 * The `spurmem` entry a checkpoint is written with: the model `m` (see {@link CheckpointModel}), the
 * model's LayerNorm eps and the scheduler's state (learning rate and best loss as Python floats, so that
 * PyTorch reads them back as floats). `scheduler` is the state that resuming hands back to the scheduler.
 */
export function newCheckpointMeta(m: CheckpointModel, scheduler: { lr: number; best?: number | null }, model: { info(): Pick<ModelInfo, 'lnEps'> }): Record<string, unknown> {
  const info = model.info();
  return {
    format: 'spurmem',
    arch: m.arch,
    head: m.head,
    label_order: m.labelOrder,
    resolution: m.resolution,
    dataset: m.dataset,
    seed: m.seed,
    ln_eps: { __float__: info.lnEps },
    scheduler: { ...scheduler, lr: { __float__: scheduler.lr }, ...(scheduler.best != null ? { best: { __float__: scheduler.best } } : {}) },
  };
}
