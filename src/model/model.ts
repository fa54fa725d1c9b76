/**
 * Models: torchvision ResNets and timm/DeiT Vision Transformers built natively with PyTorch's parameter
 * names, so original checkpoints load unchanged. The {@link Model} class owns the addon's handle.
 */
import {
  addon,
  type ActivatedLoss,
  type Batch,
  type ChannelRef,
  type LoadReport,
  type ModelInfo,
  type ModificationMode,
  type NativeCheckpoint,
  type NativeModelHandle,
  type NativeModelSpec,
  type OptimizerOptions,
  type TensorData,
} from '../native.js';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import { cpuBudget } from '../util/cpu-budget.js';
import { ARCHS, VITS, VIT_LN_EPS, archShape, isArch, isVit, type Arch } from './architectures.js';
import { ceilCount } from './counts.js';

/** Options of a model. `head: 'softmax'` is the original's Linear + Softmax. */
export interface ModelOptions {
  arch: Arch;
  /** Output classes (default 2). */
  numClasses?: number;
  /** 'softmax' (default, the original's Linear + Softmax, keys `<head>.0.*`) or 'linear'. */
  head?: 'softmax' | 'linear';
  /** ViTs: LayerNorm epsilon (default 1e-6, timm's; the original's checkpoints need 1e-5). */
  lnEps?: number;
  /** Input side in pixels (default 224); a ViT's is a multiple of its patch size. */
  imageSize?: number;
  /** ViTs only: number of blocks when not the architecture's own (reduced-depth models for tests). */
  depth?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: string;
  /** Seed of the initial weights (default: libtorch's generator as it stands). */
  seed?: number;
  /** Channels-last conv weights and inputs (default false). */
  channelsLast?: boolean;
  /** '' (default) or 'bf16' (autocast on CUDA). */
  amp?: '' | 'bf16';
  /**
   * libtorch's CPU threads (intra-op parallelism) for this and every later native call; see setThreads.
   * Default: every available core, set when the first model is created.
   */
  threads?: number;
}

let threadsSet: number | undefined;

/**
 * Sets how many CPU threads libtorch uses for each operation (convolutions, matrix products), for every
 * native call from now on (PyTorch's torch.set_num_threads). Without `n`, every core this process may
 * use (os.availableParallelism(), or a sweep worker's share; libtorch's own default is the physical cores, often half of them) to
 * start with, after which the process's CPU budget may choose half of them by trial
 * (src/util/cpu-budget.ts). Model calls on the CPU and image decoding share the cores through that
 * budget; `decodeThreads` caps the decoding threads at once (`--decode-threads`). Returns the count set now.
 * @throws UsageError when n is not a positive integer.
 */
export function setThreads(n?: number, o: { decodeThreads?: number } = {}): number {
  if (o.decodeThreads !== undefined) cpuBudget().setDecodeThreads(o.decodeThreads);
  const apply = (k: number) => {
    addon().setNumThreads(k);
    threadsSet = k;
  };
  if (n === undefined) {
    // not given: every core, of which the CPU budget's trial may leave some to decoding in evaluation passes
    cpuBudget().adaptTorchThreads(apply);
    return threadsSet ?? cpuBudget().cores;
  }
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--threads expects a positive integer, got '${n}'`);
  cpuBudget().setTorchThreads(n, apply);
  return n;
}

/** The thread count set by setThreads (or by creating a model), undefined before. */
export function threadCount(): number | undefined {
  return threadsSet;
}

/** The addon's message without anything libtorch may append (a C++ backtrace starts on its own line). */
function nativeText(e: unknown): string {
  return messageOf(e).split(/\nException raised from /)[0];
}

/** A native error as a SpurmemError naming the operation (`op`: "forward pass"; '' when the text names it). */
function nativeError(op: string, e: unknown): SpurmemError {
  if (e instanceof SpurmemError) return e;
  const text = nativeText(e);
  return new SpurmemError(op ? `${op}: ${text}` : text);
}

/** The fraction of a pool as a count of weights. @throws RangeError for a fraction outside [0, 1] (the caller names the operation). */
function countOf(fraction: number, n: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction must be within [0, 1], got ${fraction}`);
  return ceilCount(fraction, n);
}

/**
 * A model in native memory on a device (see {@link createModel}). Batches are uint8 RGB [n, h, w, 3] or
 * float32 [n, 3, h, w]; outputs are float32 [n, numClasses] row-major. Long calls return Promises and run
 * off the event loop. Every native error is thrown (or rejected) as a SpurmemError whose message names
 * the operation ("forward pass: ...") and carries no C++ backtrace.
 */
export class Model {
  readonly #h: NativeModelHandle;
  #sizes: Map<string, number> | undefined;
  #onCpu: boolean | undefined;
  #stages: number | undefined;
  #stageOf: Map<string, number> | undefined;

  /** Wraps an addon handle; use {@link createModel}. */
  constructor(handle: NativeModelHandle) {
    this.#h = handle;
  }

  #sync<T>(op: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw nativeError(op, e);
    }
  }

  /** Runs a native call within the process's CPU budget: libtorch's threads on the CPU, none on a GPU. */
  async #async<T>(op: string, f: () => Promise<T>, kind: { evalForward?: boolean; images?: number } = {}): Promise<T> {
    this.#onCpu ??= this.info().device === 'cpu';
    const budget = cpuBudget();
    try {
      if (!this.#onCpu) return await budget.compute(0, f);
      return await budget.compute(budget.threadsFor(kind.evalForward ?? false), f, { apply: true, images: kind.images ?? 0 });
    } catch (e) {
      throw nativeError(op, e);
    }
  }

  /** Number of weights of the named parameters (unknown names count 0; native code names them). */
  #poolSize(names: string[]): number {
    if (!this.#sizes) {
      this.#sizes = new Map(this.info().parameters.map((p) => [p.name, p.shape.reduce((a, b) => a * b, 1)]));
    }
    return names.reduce((n, name) => n + (this.#sizes!.get(name) ?? 0), 0);
  }

  /** Architecture, family, device, head, classes, input size, parameters and buffers (registration order). */
  info(): ModelInfo {
    return this.#sync('model info', () => this.#h.info());
  }

  /**
   * Copies the dict at `path` of a checkpoint into the model (PyTorch's load_state_dict): with `strict`
   * (default true) missing or unexpected keys are errors; keys starting with a `skip` prefix are dropped
   * on purpose; a ViT's `pos_embed` of another grid is resized (`interpolatePosEmbed`, default true).
   * @throws SpurmemError "<file>: error(s) in loading the state dict into <arch>: ..." (PyTorch's wording).
   */
  loadStateDict(o: { checkpoint: NativeCheckpoint; path?: string[]; strict?: boolean; skip?: string[]; interpolatePosEmbed?: boolean }): Promise<LoadReport> {
    return this.#async('', () =>
      this.#h.loadStateDict({ checkpoint: o.checkpoint, path: o.path ?? [], strict: o.strict ?? true, skip: o.skip ?? [], interpolatePosEmbed: o.interpolatePosEmbed ?? true }),
    );
  }

  /** Number of stages a forward pass runs (ModelInfo.stages: stem, each residual block, head). */
  stages(): number {
    this.#stages ??= this.info().stages;
    return this.#stages;
  }

  /** The stage that owns a parameter or buffer (ModelInfo.stages); -1 for a name the model does not have. */
  stageOf(name: string): number {
    if (!this.#stageOf) {
      const i = this.info();
      this.#stageOf = new Map([...i.parameters, ...i.buffers].map((p) => [p.name, p.stage ?? -1]));
    }
    return this.#stageOf.get(name) ?? -1;
  }

  /**
   * Runs stages [from, to) of the network (ModelInfo.stages; default: all of them) in one native call.
   * From stage 0 it reads `batch`; from a later stage `batch` is null and the input is the one kept for that
   * stage by an earlier call with `keep`. `keep` lists stages (within [from, to], `to` meaning this call's
   * output) whose inputs stay in native memory, replacing those kept before: one batch of activations per
   * stage listed, until releaseActivations() or the next call with `keep`.
   * `train` (BatchNorm batch statistics, default false), `masked` (finetune-prune masks, default false).
   * @returns the output of stage to - 1 flattened: [n * numClasses] when `to` is the last stage; an
   *   activation ([n, C, H, W] or [n, tokens, width], row-major) otherwise, or an empty array when `keep` is
   *   given (the kept inputs are what such a call is for)
   * @throws SpurmemError "forward pass: ..." for a bad range, a batch given from a later stage, or no kept
   *   input at `from`
   */
  forward(batch: Batch | null, o: { train?: boolean; masked?: boolean; from?: number; to?: number; keep?: number[] } = {}): Promise<Float32Array> {
    const train = o.train ?? false;
    return this.#async(
      'forward pass',
      async () => this.#h.forward(batch, { train, masked: o.masked ?? false, from: o.from ?? 0, to: o.to ?? this.stages(), keep: o.keep ?? [] }),
      { evalForward: !train, images: !train && batch ? batch.shape[0] : 0 },
    );
  }

  /** Drops the stage inputs kept by forward({ keep }). */
  releaseActivations(): void {
    this.#sync('releasing activations', () => this.#h.releaseActivations());
  }

  /**
   * One optimizer step of loss = mean_i(w_i * CE(output_i, target_i)) (CE on the head's output: the
   * original's double softmax with the softmax head). `outputs` is absent when the loss was not finite
   * (no step was taken).
   */
  trainStep(batch: Batch, o: { targets: Int32Array; weights?: Float32Array }): Promise<{ loss: number; outputs?: Float32Array }> {
    return this.#async('training step', () => this.#h.trainStep(batch, o));
  }

  /**
   * One backward pass of the batch-mean cross-entropy (`loss` 'probabilities', the default: on the head's
   * output, the original's; 'logits': on the head's Linear output, scaled by 2^scaleLog2 against float32
   * underflow, so norms and grads are 2^scaleLog2 times the true ones). norms: per parameter (`names`,
   * default all), the L2 norm of each output channel's gradient; grads with `raw`.
   */
  gradients(batch: Batch, o: { targets: Int32Array; names?: string[]; train?: boolean; raw?: boolean; loss?: ActivatedLoss }): Promise<{ loss: number; scaleLog2: number; norms: Record<string, Float32Array>; grads?: Record<string, TensorData> }> {
    return this.#async('gradients', () =>
      this.#h.gradients(batch, { targets: o.targets, names: o.names ?? [], train: o.train ?? false, raw: o.raw ?? false, loss: o.loss ?? 'probabilities' }),
    );
  }

  /** A new optimizer over every parameter; unset values are torch.optim's defaults (betas 0.9/0.999, eps 1e-8, no decay, no momentum). */
  setOptimizer(o: OptimizerOptions): void {
    this.#sync('optimizer', () =>
      this.#h.setOptimizer({
        type: o.type,
        lr: o.lr,
        betas: o.betas ?? [0.9, 0.999],
        eps: o.eps ?? 1e-8,
        weightDecay: o.weightDecay ?? 0,
        momentum: o.momentum ?? 0,
        dampening: o.dampening ?? 0,
        nesterov: o.nesterov ?? false,
      }),
    );
  }

  setLearningRate(lr: number): void {
    this.#sync('learning rate', () => this.#h.setLearningRate(lr));
  }

  /** Restores an optimizer state dict (torch.optim's layout) from a checkpoint; returns its learning rate. */
  loadOptimizerState(o: { checkpoint: NativeCheckpoint; path: string[] }): number {
    return this.#sync('optimizer state', () => this.#h.loadOptimizerState(o));
  }

  /** Per parameter, the L2 norm of each output channel (row) of the weight. */
  channelNorms(names: string[]): Record<string, Float32Array> {
    return this.#sync('channel norms', () => this.#h.channelNorms(names));
  }

  /** A state-dict entry (parameter or buffer) with its values. */
  tensor(name: string): TensorData {
    return this.#sync('reading a tensor', () => this.#h.tensor(name));
  }

  setTensor(name: string, t: TensorData): void {
    this.#sync('writing a tensor', () => this.#h.setTensor(name, t));
  }

  /** Copies of the named tensors (parameters or buffers); restore(id) writes them back in place. */
  snapshot(names: string[]): number {
    return this.#sync('snapshot', () => this.#h.snapshot(names));
  }

  /**
   * Copies of single output channels (rows) of parameters, written back in place by restore(id): the
   * memory of the rows only.
   * @throws SpurmemError for an unknown parameter or a channel index out of range
   */
  snapshotChannels(channels: ChannelRef[]): number {
    return this.#sync('snapshot', () => this.#h.snapshotChannels(channels));
  }

  restore(id: number): void {
    this.#sync('restoring a snapshot', () => this.#h.restore(id));
  }

  releaseSnapshot(id: number): void {
    this.#sync('releasing a snapshot', () => this.#h.releaseSnapshot(id));
  }

  /**
   * Snapshots the named tensors, runs `fn` (which may call `restore()` between repeats), then restores
   * them and releases the snapshot, also when fn throws (the modify-evaluate-restore of Part I).
   */
  async withSnapshot<T>(names: string[], fn: (restore: () => void) => Promise<T>): Promise<T> {
    const id = this.snapshot(names);
    try {
      return await fn(() => this.restore(id));
    } finally {
      try {
        this.restore(id);
      } finally {
        this.releaseSnapshot(id);
      }
    }
  }

  /**
   * The original's modify_weights, edit by edit: zero, random_init (N(0, std²)), random_noise (+ N(0, std²)),
   * rewind (the channel from `source` at `sourcePath`), layer_rewind (the whole tensor). Random values come
   * from one CPU generator seeded with `seed` (default 0); `std` defaults to 0.
   */
  modifyChannels(o: { edits: ChannelRef[]; mode: ModificationMode; std?: number; seed?: number; source?: NativeCheckpoint; sourcePath?: string[] }): Promise<void> {
    return this.#async('modifying channels', () => this.#h.modifyChannels({ ...o, std: o.std ?? 0, seed: o.seed ?? 0 }));
  }

  /**
   * Edits the weights the threshold ranking selects (original-behaviour §4.3): k = ceil(fraction · N) of the
   * N pooled weights of `names` by |w| (largest unless `smallest`), exactly k with ties to the lower index;
   * `faithful` reproduces the original (threshold at sorted position N-k, applied to every parameter).
   * @throws SpurmemError for a fraction outside [0, 1].
   */
  modifyThreshold(o: { names: string[]; fraction: number; smallest?: boolean; dropoutP?: number; mode: Exclude<ModificationMode, 'layer_rewind'>; std?: number; seed?: number; distribution?: 'normal' | 'uniform'; faithful?: boolean; source?: NativeCheckpoint; sourcePath?: string[] }): Promise<{ k: number; threshold: number; selected: Record<string, number> }> {
    return this.#async('threshold edit', async () => {
      const { fraction, ...rest } = o;
      return this.#h.modifyThreshold({
        ...rest,
        k: countOf(fraction, this.#poolSize(o.names)),
        smallest: o.smallest ?? false,
        dropoutP: o.dropoutP ?? 0,
        std: o.std ?? 0,
        seed: o.seed ?? 0,
        distribution: o.distribution ?? 'normal',
        faithful: o.faithful ?? false,
      });
    });
  }

  /**
   * Masks k = ceil(fraction · N) of the pooled weights of `names` by magnitude (the smallest unless
   * `largest`, as the original's Mask.magnitude_pruning), AND-ed with existing masks.
   */
  maskMagnitude(o: { names: string[]; fraction: number; largest?: boolean }): Promise<{ k: number }> {
    return this.#async('magnitude mask', async () =>
      this.#h.maskMagnitude({ names: o.names, k: countOf(o.fraction, this.#poolSize(o.names)), largest: o.largest ?? false }),
    );
  }

  /** Zeroes whole output channels of the masks (AND). */
  maskChannels(o: { channels: ChannelRef[] }): void {
    this.#sync('channel mask', () => this.#h.maskChannels(o));
  }

  clearMasks(): void {
    this.#sync('clearing masks', () => this.#h.clearMasks());
  }

  /** Per masked parameter, the share of its weights that is masked. */
  maskStats(): Record<string, number> {
    return this.#sync('mask statistics', () => this.#h.maskStats());
  }

  /**
   * The original's Part II step: L = NTXent(f1, f2) + NTXent(f1', sg(f2)) + ceWeight · CE(f1', y), f1 the
   * dense output, f2 the masked one; one optimizer step when L is finite.
   */
  finetuneStep(batch: Batch, o: { targets: Int32Array; temperature: number; ceWeight: number; bnUpdate: 'all' | 'dense-only' }): Promise<{ total: number; ntxent: number; ce: number }> {
    return this.#async('finetune step', () => this.#h.finetuneStep(batch, o));
  }

  /**
   * Writes {epoch, model_state_dict, optimizer_state_dict (with `optimizer`, default true), loss[, spurmem:
   * extra]} in PyTorch's zip layout, atomically (temporary file + rename).
   */
  save(path: string, o: { epoch: number; loss: number; optimizer?: boolean; extra?: Record<string, unknown> }): Promise<void> {
    return this.#async(`saving ${path}`, () => this.#h.save(path, { ...o, optimizer: o.optimizer ?? true }));
  }
}

/** The addon's build values for an architecture and the options (every value given; see NativeModelSpec). */
function nativeSpec(o: ModelOptions): NativeModelSpec {
  const shape = archShape(o.arch);
  const common = {
    arch: o.arch,
    numClasses: o.numClasses ?? 2,
    head: o.head ?? 'softmax',
    lnEps: o.lnEps ?? VIT_LN_EPS,
    imageSize: o.imageSize ?? 224,
    device: o.device ?? 'cpu',
    channelsLast: o.channelsLast ?? false,
    amp: o.amp ?? '',
    ...(o.seed === undefined ? {} : { seed: o.seed }),
  } as const;
  if (shape.family === 'resnet') return { ...common, family: 'resnet', block: shape.block, layers: [...shape.layers] };
  return { ...common, family: 'vit', width: shape.width, depth: o.depth ?? shape.depth, heads: shape.heads, patchSize: shape.patchSize };
}

/**
 * Builds a model on a device. ViTs take `lnEps` (default 1e-6, the original's checkpoints need 1e-5),
 * `imageSize` (a multiple of 16, default 224; the position embedding has (imageSize/16)^2 + 1 tokens) and
 * `depth` (number of blocks, default the architecture's own). The first model also sets libtorch's CPU
 * thread count to every available core unless `threads` (or an earlier setThreads call) says otherwise.
 * @throws UsageError for an unknown architecture, a bad lnEps / imageSize / depth or thread count;
 *   SpurmemError "building <arch>: ..." for a device that is not there ("this libtorch was built without CUDA",
 *   "no CUDA device N").
 */
export function createModel(o: ModelOptions): Model {
  if (!isArch(o.arch)) {
    throw new UsageError(`unknown architecture '${o.arch}' (expected one of ${ARCHS.join(', ')})`);
  }
  if (o.lnEps !== undefined && !(Number.isFinite(o.lnEps) && o.lnEps > 0)) {
    throw new UsageError(`LayerNorm eps must be a positive number, got ${o.lnEps}`);
  }
  if (o.depth !== undefined) {
    if (!isVit(o.arch)) throw new UsageError(`depth can only be set for a ViT (${VITS.join(', ')}), not for ${o.arch}`);
    if (!Number.isInteger(o.depth) || o.depth < 1) throw new UsageError(`depth must be a positive integer, got ${o.depth}`);
  }
  const shape = archShape(o.arch);
  if (shape.family === 'vit' && o.imageSize !== undefined && !(Number.isInteger(o.imageSize) && o.imageSize >= shape.patchSize && o.imageSize % shape.patchSize === 0)) {
    throw new UsageError(`a ViT's resolution must be a positive multiple of ${shape.patchSize} (patch size), got ${o.imageSize}`);
  }
  if (o.threads !== undefined) setThreads(o.threads);
  else if (threadsSet === undefined) setThreads();
  try {
    return new Model(new (addon().Model)(nativeSpec(o)));
  } catch (e) {
    throw nativeError(`building ${o.arch}`, e);
  }
}
