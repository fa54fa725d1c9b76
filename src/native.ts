/**
 * The only module that loads spurmem's native addon (through node-gyp-build) and gives it types.
 *
 * The addon (native/, C++17 + libtorch) owns tensors, models, `.pth` reading and writing, forward and
 * backward passes, optimiser steps and weight edits. Everything here is one call per batch or per whole
 * operation; long work returns a Promise and runs on a worker thread.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** PyTorch dtype names as spurmem reports them. */
export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** A tensor's metadata. */
export interface TensorMeta { dtype: DType; shape: number[] }
/** A tensor with its values in row-major order (float16/bfloat16 widened to float32, bool as uint8). */
export interface TensorData extends TensorMeta {
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
}

/** One leaf of a checkpoint: a tensor (dtype, shape) or a plain value. */
export interface CheckpointEntry {
  /** The key path joined with '.' (`model_state_dict.layer1.0.conv1.weight`), as `spurmem inspect` prints it. */
  key: string;
  /** The same path as keys (`['model_state_dict', 'layer1.0.conv1.weight']`), for tensor()/toObject(). */
  path: string[];
  kind: 'tensor' | 'int' | 'float' | 'str' | 'bytes' | 'bool' | 'None';
  dtype?: DType;
  shape?: number[];
  value?: unknown;
}

/** Options of readCheckpoint. */
export interface ReadOptions {
  /**
   * Check the CRC-32 of the tensor data's zip entries (default true; the pickle's entry is always
   * checked). torch.load checks none; leaving them out saves one pass over the data.
   */
  checkStorageCrc?: boolean;
}

/** A decoded `.pth` file held in native memory (see native/checkpoint_handle.h). */
/**
 * A checkpoint read by readCheckpoint. A key path is an array of keys (`['model_state_dict',
 * 'layer1.0.conv1.weight']`; list indices as text) or the dotted text that entries() gives as `key`
 * (at each dict the longest key the text starts with is taken, since state-dict keys hold dots).
 * Methods throw an Error naming the file and the key that is not there.
 */
export interface NativeCheckpoint {
  readonly format: 'zip' | 'legacy';
  readonly path: string;
  /** Every leaf (tensor or value), in file order. */
  entries(): CheckpointEntry[];
  /** The subtree at `path` (default: everything) as plain JS; tensors as {dtype, shape} (and `data` with `withData`). */
  toObject(path?: string[] | string, withData?: boolean): unknown;
  /** The tensor at `path`: dtype, shape and a copy of its elements. */
  tensor(path: string[] | string): TensorData;
  /** The keys of the dict at `path` (default: the top level), in order. */
  keys(path?: string[] | string): string[];
  /**
   * When every key of the dict at `path` starts with `prefix`, renames them without it, in place, and
   * returns how many; otherwise changes nothing and returns 0 (see src/checkpoint.ts stateDictPath).
   */
  stripKeyPrefix(path: string[] | string, prefix: string): number;
}

/** A batch: uint8 RGB images [n, h, w, 3] (normalised on the device) or a float32 tensor [n, 3, h, w]. */
export type Batch =
  | { images: Uint8Array; shape: [number, number, number, 3] }
  | { tensor: Float32Array; shape: [number, 3, number, number] };

/** What a state-dict load did: keys loaded, missing, unexpected, skipped on purpose, filled, resized (pos_embed). */
export interface LoadReport {
  loaded: string[];
  missing: string[];
  unexpected: string[];
  skipped: string[];
  filled: string[];
  resized: string[];
}

/** A parameter or buffer: its PyTorch name, dtype and shape; `maskable` for finetune-prune. */
export interface ParamInfo extends TensorMeta {
  name: string;
  maskable?: boolean;
  /** The stage of the network that owns it (see ModelInfo.stages); -1 for none. */
  stage?: number;
}

/** A model's architecture, family, device, head, class count, input size and parameters (in registration order). */
export interface ModelInfo {
  arch: string;
  /** The architecture's family (src/model/architectures.ts). */
  family: 'resnet' | 'vit';
  device: string;
  head: 'softmax' | 'linear';
  headName: string;
  numClasses: number;
  lnEps: number;
  imageSize: number;
  /** ViTs only: the number of blocks. */
  depth?: number;
  /**
   * Stages a forward pass runs in order: 0 the stem (ResNet conv1-bn1-ReLU-max-pool; ViT patch embedding,
   * class token and position embedding), 1..n the residual blocks (layer1.0 ... layer4.last; blocks.0 ...),
   * n + 1 the head (ResNet average pool + fc; ViT norm + head): n + 2 in all.
   */
  stages: number;
  parameters: ParamInfo[];
  buffers: ParamInfo[];
}

/**
 * What the addon builds: plain values resolved by TypeScript from the architecture table (native code
 * keeps no table of names; `arch` is a label for its messages). Every field is given except `seed` (no
 * seed: libtorch's global generator as it stands).
 */
export interface NativeModelSpec {
  arch: string;
  family: 'resnet' | 'vit';
  numClasses: number;
  head: 'softmax' | 'linear';
  lnEps: number;
  imageSize: number;
  device: string;
  channelsLast: boolean;
  amp: '' | 'bf16';
  seed?: number;
  /** ResNet: block type and blocks per layer. */
  block?: 'basic' | 'bottleneck';
  layers?: number[];
  /** ViT: width, blocks, heads, patch side. */
  width?: number;
  depth?: number;
  heads?: number;
  patchSize?: number;
}

export interface OptimizerOptions {
  type: 'adam' | 'sgd';
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** Channel modifications done natively (original-behaviour §5). */
export type ModificationMode = 'zero' | 'random_init' | 'random_noise' | 'rewind' | 'layer_rewind';
/** The loss whose gradient ranks `activated` channels: cross-entropy on the head's output (the original's) or on its logits. */
export type ActivatedLoss = 'probabilities' | 'logits';

/** A channel of a parameter (index -1: the whole tensor, for edits). */
export interface ChannelRef { name: string; index: number }

/** The rewind source of an edit: a checkpoint and the key path of its state dict. */
interface RewindFrom { source?: NativeCheckpoint; sourcePath?: string[] }

/**
 * The addon's model handle (native/model_handle.h). Only src/model/model.ts holds one: its Model class
 * completes every option (native code keeps no defaults), counts how many weights a fraction means and
 * turns native errors into SpurmemErrors. Errors thrown here are plain Errors with the addon's text.
 */
export interface NativeModelHandle {
  info(): ModelInfo;
  loadStateDict(o: { checkpoint: NativeCheckpoint; path: string[]; strict: boolean; skip: string[]; interpolatePosEmbed: boolean }): Promise<LoadReport>;
  forward(batch: Batch | null, o: { train: boolean; masked: boolean; from: number; to: number; keep: number[] }): Promise<Float32Array>;
  releaseActivations(): void;
  trainStep(batch: Batch, o: { targets: Int32Array; weights?: Float32Array }): Promise<{ loss: number; outputs?: Float32Array }>;
  gradients(batch: Batch, o: { targets: Int32Array; names: string[]; train: boolean; raw: boolean; loss: ActivatedLoss }): Promise<{ loss: number; scaleLog2: number; norms: Record<string, Float32Array>; grads?: Record<string, TensorData> }>;
  setOptimizer(o: Required<OptimizerOptions>): void;
  setLearningRate(lr: number): void;
  loadOptimizerState(o: { checkpoint: NativeCheckpoint; path: string[] }): number;
  channelNorms(names: string[]): Record<string, Float32Array>;
  tensor(name: string): TensorData;
  setTensor(name: string, t: TensorData): void;
  snapshot(names: string[]): number;
  snapshotChannels(channels: ChannelRef[]): number;
  restore(id: number): void;
  releaseSnapshot(id: number): void;
  modifyChannels(o: { edits: ChannelRef[]; mode: ModificationMode; std: number; seed: number } & RewindFrom): Promise<void>;
  modifyThreshold(o: { names: string[]; k: number; smallest: boolean; dropoutP: number; mode: Exclude<ModificationMode, 'layer_rewind'>; std: number; seed: number; distribution: 'normal' | 'uniform'; faithful: boolean } & RewindFrom): Promise<{ k: number; threshold: number; selected: Record<string, number> }>;
  maskMagnitude(o: { names: string[]; k: number; largest: boolean }): Promise<{ k: number }>;
  maskChannels(o: { channels: ChannelRef[] }): void;
  clearMasks(): void;
  maskStats(): Record<string, number>;
  finetuneStep(batch: Batch, o: { targets: Int32Array; temperature: number; ceWeight: number; bnUpdate: 'all' | 'dense-only' }): Promise<{ total: number; ntxent: number; ce: number }>;
  save(path: string, o: { epoch: number; loss: number; optimizer: boolean; extra?: Record<string, unknown> }): Promise<void>;
}

/** How decoded samples become RGB: PIL's convert('RGB') for the mode PIL opens the file in (native/image/pil_resample.h). */
export type PilToRgb = 'grey' | 'rgb' | 'cmyk' | 'grey16-clip' | 'grey16-high' | 'rgb16-high';

/** One image of {@link Addon.pilTransform}; rectangles are [left, top, width, height] in pixels. */
export interface PilTransformImage {
  /** Interleaved samples, width * height * channels of them (Uint16Array for 16-bit conversions). */
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  channels: number;
  toRgb: PilToRgb;
  /** Crop of the decoded image that is resized (PIL's img.crop(box)). */
  box: [number, number, number, number];
  /** Size [width, height] the crop is resized to (PIL's resize, BILINEAR). */
  size: [number, number];
  /** Part of the resized image that is written (a centre crop, or all of it). */
  window: [number, number, number, number];
  /** Mirror the window left-right (PIL's FLIP_LEFT_RIGHT after the resize). */
  flip: boolean;
}

/** One file of {@link Addon.decodeTransformFiles}; rectangles are [left, top, width, height] in pixels. */
export interface DecodeTransformFile {
  /** The file to read (and the name errors use). */
  file: string;
  /** The file's bytes when they were read already (the file is not read again). */
  bytes?: Uint8Array;
  /** Crop of the decoded image that is resized; absent: the whole image. */
  box?: [number, number, number, number];
  /** Size [width, height] the crop is resized to (PIL's resize, BILINEAR). */
  size: [number, number];
  /** Part of the resized image that is written. */
  window: [number, number, number, number];
  /** Mirror the window left-right. */
  flip: boolean;
}

export interface Addon {
  Model: new (o: NativeModelSpec) => NativeModelHandle;
  Checkpoint: unknown;
  readCheckpoint(path: string, o?: ReadOptions): Promise<NativeCheckpoint>;
  writeCheckpoint(path: string, value: unknown): Promise<void>;
  versions(): { libtorch: string; cuda: boolean; cudaDevices: number; threads: number };
  /** libtorch's intra-op CPU threads for the calling thread and every later native call (worker threads too). */
  setNumThreads(n: number): void;
  checkDevice(device: string): void;
  /** TF32 in cuDNN convolutions and cuBLAS (PyTorch's defaults: convolutions on, matmul off). */
  setTf32(enabled: boolean): void;
  ntXent(o: { a: Float32Array; b: Float32Array; rows: number; cols: number; temperature: number }): number;
  /**
   * The CPU tensor-memory cache (native/cpu_cache.h): freed blocks of 64 KiB..1 GiB are kept for the next
   * allocation of the same size, up to `limitBytes` (default 1 GiB, env SPURMEM_CPU_CACHE_MB; 0 = off).
   * With an argument, sets the limit first (lowering it frees cached blocks).
   */
  cpuCache(limitBytes?: number): { limitBytes: number; cachedBytes: number; liveBytes: number; hits: number; misses: number };
  /**
   * PIL's convert('RGB'), crop, bilinear resize (ImagingResample, fixed point) and window crop of each image,
   * bit for bit, on a worker thread; the windows' RGB bytes (HWC) are written one after another into `out`,
   * which must hold exactly their sum. Rejects with a RangeError naming the image for a box or window outside
   * its image.
   */
  pilTransform(o: { images: PilTransformImage[]; out: Uint8Array }): Promise<void>;
  /** Whether the addon was built with libjpeg (the native JPEG decoder of decodeTransformFiles). */
  nativeJpeg: boolean;
  /**
   * Reads, decodes (JPEG through libjpeg, as PIL does: RGB or greyscale, any subsampling, progressive) and
   * transforms (as pilTransform) every file on `threads` threads of its own, on a worker thread. Per file:
   * 0 done (its window's bytes are in `out`, one window after another), 1 not a file this decoder handles
   * (not a JPEG, CMYK/YCCK; nothing written), or why it failed ("cannot decode image (...)", without the
   * file's name). Always 1 without libjpeg.
   */
  decodeTransformFiles(o: { files: DecodeTransformFile[]; out: Uint8Array; threads: number }): Promise<(0 | 1 | string)[]>;
  /**
   * decodeTransformFiles on the process's decoding pool (native/image/task_pool.h): `threads` threads at idle
   * scheduling priority decode while the model runs (in the gaps it leaves on the cores), and as many at
   * normal priority while the foreground is open ({@link Addon.setDecodeForeground}). Batches are served
   * first come, first served. `cpuSeconds`: the CPU time (all threads) the files took.
   */
  decodeTransformFilesPooled(o: { files: DecodeTransformFile[]; out: Uint8Array; threads: number }): Promise<{ status: (0 | 1 | string)[]; cpuSeconds: number }>;
  /** Opens (true) or closes the decoding pool's normal-priority threads (open: no model call runs on the CPU). */
  setDecodeForeground(open: boolean): void;
  /** Whether the decoding pool has idle-priority threads (libjpeg, and an OS with an idle scheduling policy: Linux). */
  decodeInBackground: boolean;
  /**
   * For each of `count` absolute paths (joined with '\0'), 1 when its folder lists it as something other
   * than a folder (a file, or a link), else 0 (native/data/file_index.h); an empty path names no file.
   * Each folder is read once, on a worker thread (or taken from `listing`); one that cannot be read holds
   * nothing.
   */
  presentFiles(paths: string, count: number, listing?: FolderListing): Promise<Uint8Array>;
  /** Reads folders ahead (on a worker thread) for a later presentFiles, which then reads them not again. */
  listFolders(o: { dirs: string[] }): Promise<FolderListing>;
  /**
   * The group-stratified bootstrap's draws (native/metrics/bootstrap.h): per replicate (outer) and group
   * (inner), how many of count[g] draws with replacement hit one of the group's correct[g] correct samples,
   * drawn as src/metrics/intervals.ts's loop draws them from the sfc32 `state` (src/util/random.ts).
   * Returns draws x groups values, replicate-major. Throws a RangeError for bad counts.
   */
  bootstrapCorrect(o: { state: Uint32Array; count: Int32Array; correct: Int32Array; draws: number }): Int32Array;
}

/** Folders read by listFolders, held by the addon (opaque here). */
export type FolderListing = { readonly __folderListing: unique symbol };

/** The package's root folder (holds package.json and build/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'spurmem') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('spurmem: cannot find the package folder');
    dir = up;
  }
}

let cached: Addon | undefined;

/**
 * Loads the addon once. Throws an Error that says how to build it when it is missing.
 */
export function addon(): Addon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  // libtorch built with OpenMP (Debian's is) keeps its threads spinning after each operation unless told to
  // sleep; they would take the cores from the image decoder that runs between the model's calls. libgomp
  // reads this when it is loaded, with the addon, so it is set here, before loading (a user's value stays).
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  try {
    const load = require('node-gyp-build') as (dir: string) => Addon;
    cached = load(root);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // the offline bundle (npm run bundle) has a build-addon script and no npm
    const how = existsSync(join(root, 'build-addon'))
      ? `Build it with \`LIBTORCH=<libtorch or pip torch folder> ${join(root, 'build-addon')}\` (cmake and a C++17 compiler).`
      : 'Build it with `npm run setup` (or `npm run build:native` once libtorch is installed).';
    throw new Error(`spurmem's native addon could not be loaded (${msg.split('\n')[0]}). ${how}`);
  }
  return cached;
}
