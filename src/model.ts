/**
 * Models: torchvision ResNets and timm/DeiT Vision Transformers built natively with PyTorch's parameter
 * names, so original checkpoints load unchanged.
 */
import { availableParallelism } from 'node:os';
import { addon, type LoadReport, type NativeCheckpoint, type NativeModel, type NativeModelOptions } from './native.js';
import { stateDictPath } from './checkpoint.js';
import { SpurmemError, UsageError, messageOf } from './util/errors.js';

/** torchvision ResNets (parameter names as torchvision's). */
export const RESNETS = ['resnet18', 'resnet50'] as const;
/** timm/DeiT Vision Transformers (parameter names as timm's). */
export const VITS = ['deit_tiny', 'deit_small', 'deit_base', 'vit_large'] as const;
/** Every architecture `createModel` builds. */
export const ARCHS = [...RESNETS, ...VITS] as const;
/** One of {@link ARCHS}. */
export type Arch = (typeof ARCHS)[number];

export function isVit(arch: string): boolean {
  return (VITS as readonly string[]).includes(arch);
}

/** LayerNorm epsilon of timm/DeiT ViTs, spurmem's default. */
export const VIT_LN_EPS = 1e-6;
/** LayerNorm epsilon the original code built its ViTs with (PyTorch's default); use it for its checkpoints. */
export const ORIGINAL_VIT_LN_EPS = 1e-5;

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
 * Builds a model on a device. ViTs take `lnEps` (default 1e-6, the original's checkpoints need 1e-5),
 * `imageSize` (a multiple of 16, default 224; the position embedding has (imageSize/16)^2 + 1 tokens) and
 * `depth` (number of blocks, default the architecture's own). The first model also sets libtorch's CPU
 * thread count to every available core unless `threads` (or an earlier setThreads call) says otherwise.
 * @throws UsageError for an unknown architecture, a bad lnEps / imageSize / depth or thread count;
 *   SpurmemError for a device that is not there ("this libtorch was built without CUDA", "no CUDA device N").
 */
export function createModel(o: ModelOptions): NativeModel {
  if (!(ARCHS as readonly string[]).includes(o.arch)) {
    throw new UsageError(`unknown architecture '${o.arch}' (expected one of ${ARCHS.join(', ')})`);
  }
  if (o.lnEps !== undefined && !(Number.isFinite(o.lnEps) && o.lnEps > 0)) {
    throw new UsageError(`LayerNorm eps must be a positive number, got ${o.lnEps}`);
  }
  if (o.depth !== undefined) {
    if (!isVit(o.arch)) throw new UsageError(`depth can only be set for a ViT (${VITS.join(', ')}), not for ${o.arch}`);
    if (!Number.isInteger(o.depth) || o.depth < 1) throw new UsageError(`depth must be a positive integer, got ${o.depth}`);
  }
  if (isVit(o.arch) && o.imageSize !== undefined && !(Number.isInteger(o.imageSize) && o.imageSize >= 16 && o.imageSize % 16 === 0)) {
    throw new UsageError(`a ViT's resolution must be a positive multiple of 16 (patch size), got ${o.imageSize}`);
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
 * The architecture a state dict's keys and shapes belong to, or undefined: torchvision ResNets by block
 * type (conv3 = Bottleneck) and the number of blocks in layer3 (2 basic: resnet18; 6 bottleneck:
 * resnet50); timm ViTs by the width of `cls_token` (192/384/768/1024: deit_tiny/small/base,
 * vit_large).
 */
export function detectArch(ck: NativeCheckpoint, path: string[]): Arch | undefined {
  const keys = ck.keys(path);
  if (keys.includes('layer1.0.conv1.weight')) {
    const blocks = new Set(keys.filter((k) => k.startsWith('layer3.')).map((k) => k.split('.')[1])).size;
    const bottleneck = keys.includes('layer1.0.conv3.weight');
    if (!bottleneck) return blocks === 2 ? 'resnet18' : undefined;
    return blocks === 6 ? 'resnet50' : undefined;
  }
  if (keys.includes('cls_token')) {
    const shape = (ck.toObject([...path, 'cls_token']) as { shape?: number[] }).shape ?? [];
    const byWidth: Record<number, Arch> = { 192: 'deit_tiny', 384: 'deit_small', 768: 'deit_base', 1024: 'vit_large' };
    return byWidth[shape[shape.length - 1]];
  }
  return undefined;
}

/**
 * The spurmem architecture an architecture name recorded in a checkpoint means, or undefined: spurmem's
 * own names and torchvision's (`resnet18`, `resnet50`, as pytorch/examples' ImageNet script records in
 * `arch`), and timm's `deit_{tiny,small,base}_patch16_<R>` and `vit_large_patch16_<R>[_in21k]`.
 * Case is ignored.
 */
export function archFromName(name: string): Arch | undefined {
  const n = name.trim().toLowerCase();
  if ((ARCHS as readonly string[]).includes(n)) return n as Arch;
  const timm = /^(deit_tiny|deit_small|deit_base|vit_large)_patch16_\d+(_in21k)?$/.exec(n);
  if (timm && !(timm[2] && timm[1] !== 'vit_large')) return timm[1] as Arch;
  return undefined;
}

/** An architecture and why it was chosen (for messages). */
export interface ArchChoice {
  arch: Arch;
  /** e.g. "given with --arch", "the checkpoint records arch 'resnet18'". */
  reason: string;
}

/**
 * The architecture to build for a checkpoint, and why: `given` (an explicit --arch) wins; then what a
 * spurmem run or checkpoint records (`recorded`, with the words naming where); then a top-level `arch`
 * string that names an architecture spurmem builds (see {@link archFromName}); then the state dict's keys
 * and shapes ({@link detectArch}); then resnet50, the original code's default.
 */
export function chooseArch(
  ck: NativeCheckpoint,
  path: string[],
  o: { given?: Arch; recorded?: { arch: unknown; source: string } } = {},
): ArchChoice {
  if (o.given) return { arch: o.given, reason: 'given with --arch' };
  const rec = o.recorded;
  if (rec && typeof rec.arch === 'string' && (ARCHS as readonly string[]).includes(rec.arch)) {
    return { arch: rec.arch as Arch, reason: `recorded in ${rec.source}` };
  }
  let named: string | undefined;
  if (ck.keys([]).includes('arch')) {
    const v = ck.toObject(['arch']);
    if (typeof v === 'string') {
      const a = archFromName(v);
      if (a) return { arch: a, reason: `the checkpoint records arch '${v}'` };
      named = v;
    }
  }
  const unknown = named === undefined ? '' : `the checkpoint records arch '${named}', which spurmem does not build; `;
  const detected = detectArch(ck, path);
  if (detected) return { arch: detected, reason: `${unknown}its state dict's keys and shapes are those of ${detected}` };
  return { arch: 'resnet50', reason: `${unknown}the original code's default (no architecture recorded, and the keys match none spurmem builds)` };
}

/**
 * The input size a ViT state dict was trained at, from its position embedding: `pos_embed` [1, 1 + g², D]
 * with 16-pixel patches gives R = 16·g. Undefined for other models (a ResNet's weights do not say).
 */
export function detectResolution(ck: NativeCheckpoint, path: string[]): number | undefined {
  if (!ck.keys(path).includes('pos_embed')) return undefined;
  const shape = (ck.toObject([...path, 'pos_embed']) as { shape?: number[] }).shape ?? [];
  const g = Math.round(Math.sqrt((shape[1] ?? 0) - 1));
  return g > 0 && g * g + 1 === shape[1] ? 16 * g : undefined;
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
  o: { strict?: boolean; skip?: string[]; path?: string[]; archReason?: string } = {},
): Promise<LoadReport> {
  const found = stateDictPath(ck);
  const path = o.path ?? found;
  try {
    return await model.loadStateDict({ checkpoint: ck, path, strict: o.strict ?? true, skip: o.skip ?? [] });
  } catch (e) {
    throw new SpurmemError(messageOf(e) + loadHints(model, ck, path, o.archReason));
  }
}

/**
 * Hints for a state dict that did not load: why the architecture was chosen (`archReason`, from
 * {@link chooseArch}), what the checkpoint records (spurmem checkpoints, a top-level `arch`), the
 * architecture and head its keys belong to, an ImageNet head. '' or ` (hint; hint)`.
 */
export function loadHints(model: NativeModel, ck: NativeCheckpoint, path: string[], archReason?: string): string {
  const meta = ck.keys([]).includes('spurmem') ? (ck.toObject(['spurmem']) as { arch?: string; head?: string }) : {};
  const info = model.info();
  const hints: string[] = [];
  if (archReason) hints.push(`${info.arch} was tried because ${archReason === 'given with --arch' ? 'it was given with --arch' : archReason}`);
  if (meta.arch && meta.arch !== info.arch) hints.push(`the checkpoint records --arch ${meta.arch}`);
  const named = !meta.arch && ck.keys([]).includes('arch') ? ck.toObject(['arch']) : undefined;
  if (typeof named === 'string' && archFromName(named) && archFromName(named) !== info.arch && !archReason?.includes(`'${named}'`)) {
    hints.push(`the checkpoint records arch '${named}'`);
  }
  if (meta.head && meta.head !== info.head) hints.push(`it records --head ${meta.head}`);
  const keys = ck.keys(path);
  const fileHead = keys.includes(`${info.headName}.0.weight`) ? 'softmax' : keys.includes(`${info.headName}.weight`) ? 'linear' : undefined;
  if (!meta.head && fileHead && fileHead !== info.head) hints.push(`its head keys are those of --head ${fileHead}`);
  if (!meta.arch) {
    const arch = detectArch(ck, path);
    if (arch && arch !== info.arch) hints.push(`its keys and shapes are those of --arch ${arch}`);
  }
  const headKey = fileHead === 'softmax' ? `${info.headName}.0.weight` : fileHead === 'linear' ? `${info.headName}.weight` : undefined;
  const classes = headKey ? ((ck.toObject([...path, headKey]) as { shape?: number[] }).shape ?? [])[0] : undefined;
  if (classes !== undefined && classes !== info.numClasses && classes >= 100) {
    hints.push(`its head has ${classes} classes: an ImageNet classifier, which --pretrained FILE loads into all but the head`);
  }
  return hints.length ? ` (${hints.join('; ')})` : '';
}
