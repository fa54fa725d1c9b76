/**
 * Models: torchvision ResNets and timm/DeiT Vision Transformers built natively with PyTorch's parameter
 * names, so original checkpoints load unchanged.
 */
import { availableParallelism } from 'node:os';
import { addon, type LoadReport, type NativeCheckpoint, type NativeModel, type NativeModelOptions } from './native.js';
import { stateDictPath } from './checkpoint.js';
import { SpurmemError, UsageError, messageOf } from './util/errors.js';

export const RESNETS = ['resnet18', 'resnet50'] as const;
export const VITS = ['deit_tiny', 'deit_small', 'deit_base', 'vit_large'] as const;
export const ARCHS = [...RESNETS, ...VITS] as const;
export type Arch = (typeof ARCHS)[number];

export function isVit(arch: string): boolean {
  return (VITS as readonly string[]).includes(arch);
}

/** Options of a model; see NativeModelOptions. `head: 'softmax'` is the original's Linear + Softmax. */
export interface ModelOptions extends NativeModelOptions {
  arch: Arch;
  /**
   * libtorch's CPU threads (intra-op parallelism) for this and every later native call; see setThreads.
   * Default: every available core, set when the first model is created.
   */
  threads?: number;
}

let threadsSet: number | undefined;

/**
 * Sets how many CPU threads libtorch uses for each operation (convolutions, matrix products), for every
 * native call from now on; the default is os.availableParallelism(), every core this process may use.
 * (libtorch's own default is the number of physical cores, often half of them; PyTorch's equivalent is
 * torch.set_num_threads.) Returns the count set.
 * @throws UsageError when n is not a positive integer.
 */
export function setThreads(n: number = availableParallelism()): number {
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--threads expects a positive integer, got '${n}'`);
  addon().setNumThreads(n);
  threadsSet = n;
  return n;
}

/** The thread count set by setThreads (or by creating a model), undefined before. */
export function threadCount(): number | undefined {
  return threadsSet;
}

/**
 * Builds a model on a device. The first model also sets libtorch's CPU thread count to every available
 * core unless `threads` (or an earlier setThreads call) says otherwise.
 * @throws UsageError for an unknown architecture or thread count; SpurmemError for a device that is not there
 *   ("this libtorch was built without CUDA", "no CUDA device N").
 */
export function createModel(o: ModelOptions): NativeModel {
  if (!(ARCHS as readonly string[]).includes(o.arch)) {
    throw new UsageError(`unknown architecture '${o.arch}' (expected one of ${ARCHS.join(', ')})`);
  }
  const { threads, ...native } = o;
  if (threads !== undefined) setThreads(threads);
  else if (threadsSet === undefined) setThreads();
  try {
    return new (addon().Model)(native);
  } catch (e) {
    throw new SpurmemError(messageOf(e));
  }
}

/**
 * Loads a checkpoint's state dict into a model: `model_state_dict` (original training checkpoints),
 * `model` (DeiT files) or the whole file (torchvision weights, plain state dicts).
 * With `strict`, missing or unexpected keys are errors; keys starting with a `skip` prefix are dropped on
 * purpose and reported. Shape mismatches are always errors. A ViT's `pos_embed` is resized bicubically
 * when the model's resolution differs (timm's resample_abs_pos_embed).
 * @throws SpurmemError naming the file and the keys.
 */
export async function loadWeights(
  model: NativeModel,
  ck: NativeCheckpoint,
  o: { strict?: boolean; skip?: string[]; path?: string[] } = {},
): Promise<LoadReport> {
  const path = o.path ?? stateDictPath(ck);
  try {
    return await model.loadStateDict({ checkpoint: ck, path, strict: o.strict ?? true, skip: o.skip ?? [] });
  } catch (e) {
    throw new SpurmemError(messageOf(e));
  }
}
