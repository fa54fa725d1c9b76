/**
 * Reading and writing PyTorch `.pth` checkpoints (zip layout of torch >= 1.6 and the legacy layout of
 * torch < 1.6) without executing anything in them. See native/checkpoint/ for the restricted unpickler.
 */
import { addon, type CheckpointEntry, type NativeCheckpoint, type ReadOptions } from './native.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SpurmemError, UsageError, messageOf } from './util/errors.js';

export type { CheckpointEntry, NativeCheckpoint, ReadOptions } from './native.js';

/**
 * Reads a checkpoint file. Tensors stay in native memory; use `entries()`, `tensor(path)` and
 * `toObject(path)` to look inside. In the zip layout every entry's CRC-32 is checked, unless
 * `checkStorageCrc: false` leaves out the tensor data (as torch.load, which checks none).
 * @throws SpurmemError naming the file and what was wrong (missing, truncated, corrupt, a refused
 *   pickle global such as `os.system`); UsageError for a run folder (naming `--run` and its checkpoints).
 */
export async function readCheckpoint(path: string, o: ReadOptions = {}): Promise<NativeCheckpoint> {
  const runHint = runFolderHint(path);
  if (runHint) throw new UsageError(runHint);
  try {
    return await addon().readCheckpoint(path, o);
  } catch (e) {
    throw new SpurmemError(messageOf(e));
  }
}

/** What `spurmem inspect --json` prints. */
export interface Inspection {
  format: 'zip' | 'legacy';
  entries: { key: string; path: string[]; dtype?: string; shape?: number[]; value?: unknown }[];
  tensors: number;
  elements: number;
}

/** Summarises a checkpoint: every tensor's key path, dtype and shape, and every other value. */
export function inspectCheckpoint(ck: NativeCheckpoint): Inspection {
  const raw: CheckpointEntry[] = ck.entries();
  let tensors = 0;
  let elements = 0;
  const entries = raw.map((e) => {
    if (e.kind === 'tensor') {
      tensors += 1;
      elements += (e.shape ?? []).reduce((a, b) => a * b, 1);
      return { key: e.key, path: e.path, dtype: e.dtype, shape: e.shape };
    }
    // Python bytes: their length and first bytes in hex, not a list of numbers
    if (e.kind === 'bytes' && e.value instanceof Uint8Array) {
      const b = e.value;
      return { key: e.key, path: e.path, value: `<${b.length} bytes: ${Buffer.from(b.subarray(0, 32)).toString('hex')}${b.length > 32 ? '...' : ''}>` };
    }
    return { key: e.key, path: e.path, value: e.value };
  });
  return { format: ck.format, entries, tensors, elements };
}

/** Where a checkpoint's state dict is, and what was done to its keys (see {@link stateDictInfo}). */
export interface StateDictInfo {
  /** Key path of the state dict ([] = the root). */
  path: string[];
  /** Prefixes every key carried and that were removed, outermost first (e.g. ['module.']). */
  stripped: string[];
}

/** Containers that hold a state dict in the layouts spurmem reads, in the order they are tried. */
export const STATE_DICT_KEYS = ['model_state_dict', 'model', 'state_dict', 'net'] as const;

/**
 * Prefixes that wrappers put before every key of a model's state dict: `module.` (nn.DataParallel,
 * DistributedDataParallel) and `_orig_mod.` (torch.compile).
 */
export const WRAPPER_PREFIXES = ['module.', '_orig_mod.'] as const;

const infos = new WeakMap<NativeCheckpoint, StateDictInfo>();

function holdsTensor(ck: NativeCheckpoint, path: string[]): boolean {
  return ck.keys(path).some((k) => {
    const v = ck.toObject([...path, k]);
    return v !== null && typeof v === 'object' && 'dtype' in v && 'shape' in v;
  });
}

/**
 * The state dict of a checkpoint: the first of `model_state_dict` (the original's training checkpoints),
 * `model` (DeiT files), `state_dict` (pytorch/examples, timm, Lightning) and `net` that is a dict holding
 * a tensor, else the root (torchvision files, plain state dicts). When every key of it carries a
 * wrapper's prefix ({@link WRAPPER_PREFIXES}, also nested, e.g. `_orig_mod.module.`), the prefix is
 * removed from the checkpoint in memory, once (later calls return the same answer), so that every
 * reader of the state dict sees the model's own names; `stripped` says what was removed.
 */
export function stateDictInfo(ck: NativeCheckpoint): StateDictInfo {
  const known = infos.get(ck);
  if (known) return known;
  const keys = ck.keys([]);
  const path: string[] = [];
  for (const k of STATE_DICT_KEYS) {
    if (keys.includes(k) && holdsTensor(ck, [k])) {
      path.push(k);
      break;
    }
  }
  const stripped: string[] = [];
  for (let again = true; again; ) {
    again = false;
    for (const p of WRAPPER_PREFIXES) {
      if (ck.stripKeyPrefix(path, p) > 0) {
        stripped.push(p);
        again = true;
      }
    }
  }
  const info = { path, stripped };
  infos.set(ck, info);
  return info;
}

/** The key path of a checkpoint's state dict; see {@link stateDictInfo} (which this calls). */
export function stateDictPath(ck: NativeCheckpoint): string[] {
  return stateDictInfo(ck).path;
}

/** A note saying which wrapper prefixes were removed from a state dict's keys, or undefined. */
export function strippedNote(ck: NativeCheckpoint): string | undefined {
  const { path, stripped } = stateDictInfo(ck);
  if (stripped.length === 0) return undefined;
  const where = path.length ? `'${path.join('.')}'` : 'the state dict';
  const what = stripped.map((p) => `'${p}'${p === 'module.' ? ' (nn.DataParallel / DistributedDataParallel)' : ' (torch.compile)'}`).join(' and ');
  return `${ck.path}: every key of ${where} starts with ${what}; read without it`;
}

/**
 * For a path that is a spurmem run folder rather than a checkpoint file: a message that names one of its
 * checkpoints and `--run DIR`; undefined otherwise.
 */
export function runFolderHint(path: string): string | undefined {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    return undefined;
  }
  if (!dir) return undefined;
  const epochs = readdirSync(path)
    .map((f) => /^epoch_(\d+)_checkpoints\.pth\.tar$/.exec(f)?.[1])
    .filter((e): e is string => e !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  if (epochs.length === 0 && !existsSync(join(path, 'config.json'))) return undefined;
  const last = epochs[epochs.length - 1];
  return (
    `${path} is a spurmem run folder, not a checkpoint file: pass --run ${path} (study, finetune-prune; its last epoch, or --epoch E)` +
    (last !== undefined ? ` or one of its checkpoints, e.g. --checkpoint ${join(path, `epoch_${last}_checkpoints.pth.tar`)}` : '')
  );
}
