/**
 * The one table of architectures: per architecture its family (torchvision ResNet or timm/DeiT ViT) and
 * shape; per family its head module and which parameters are neurons. Everything that asks "is it a
 * ViT", "how many blocks", "which parameters does a ranking look at" reads it here; the native addon gets
 * plain values (family, block, layers, width, depth, heads, patch size) and keeps no table of names.
 */
import type { NativeCheckpoint } from '../native.js';

/** A torchvision ResNet (models/resnet.py): block type and the number of blocks in layer1..layer4. */
export interface ResNetShape {
  family: 'resnet';
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
}

/** A timm/DeiT VisionTransformer (vision_transformer.py): embedding width, blocks, heads, patch side. */
export interface VitShape {
  family: 'vit';
  width: number;
  depth: number;
  heads: number;
  patchSize: number;
}

/** One architecture's shape. */
export type ArchShape = ResNetShape | VitShape;

/** Every architecture spurmem builds, with its shape (source: torchvision resnet.py, timm deit.py / vision_transformer.py). */
export const ARCHITECTURES = {
  resnet18: { family: 'resnet', block: 'basic', layers: [2, 2, 2, 2] },
  resnet50: { family: 'resnet', block: 'bottleneck', layers: [3, 4, 6, 3] },
  deit_tiny: { family: 'vit', width: 192, depth: 12, heads: 3, patchSize: 16 },
  deit_small: { family: 'vit', width: 384, depth: 12, heads: 6, patchSize: 16 },
  deit_base: { family: 'vit', width: 768, depth: 12, heads: 12, patchSize: 16 },
  vit_large: { family: 'vit', width: 1024, depth: 24, heads: 16, patchSize: 16 },
} as const satisfies Record<string, ArchShape>;

/** One of {@link ARCHS}. */
export type Arch = keyof typeof ARCHITECTURES;
/** A model family. */
export type Family = ArchShape['family'];

const archsOf = (family: Family): Arch[] => (Object.keys(ARCHITECTURES) as Arch[]).filter((a) => ARCHITECTURES[a].family === family);

/** torchvision ResNets (parameter names as torchvision's). */
export const RESNETS = archsOf('resnet') as readonly ('resnet18' | 'resnet50')[];
/** timm/DeiT Vision Transformers (parameter names as timm's). */
export const VITS = archsOf('vit') as readonly ('deit_tiny' | 'deit_small' | 'deit_base' | 'vit_large')[];
/** Every architecture `createModel` builds. */
export const ARCHS = [...RESNETS, ...VITS] as readonly Arch[];

/** Whether `arch` is an architecture spurmem builds. */
export function isArch(arch: string): arch is Arch {
  return Object.prototype.hasOwnProperty.call(ARCHITECTURES, arch);
}

/** The shape of an architecture. @throws Error for a name that is not in the table. */
export function archShape(arch: string): ArchShape {
  if (!isArch(arch)) throw new Error(`unknown architecture '${arch}' (expected one of ${ARCHS.join(', ')})`);
  return ARCHITECTURES[arch];
}

/** Whether `arch` is a Vision Transformer (false for names not in the table). */
export function isVit(arch: string): boolean {
  return isArch(arch) && ARCHITECTURES[arch].family === 'vit';
}

/** LayerNorm epsilon of timm/DeiT ViTs, spurmem's default. */
export const VIT_LN_EPS = 1e-6;
/** LayerNorm epsilon the original code built its ViTs with (PyTorch's default); use it for its checkpoints. */
export const ORIGINAL_VIT_LN_EPS = 1e-5;

/** A parameter as the neuron sets see it: its PyTorch name and shape. */
export interface ParamShape {
  name: string;
  shape: number[];
}

/** What a family names its head module, and which of its parameters are neurons. */
export interface FamilyTraits {
  /** The head module: `fc` (torchvision) or `head` (timm); its Linear is `<headName>.0` with the softmax head. */
  headName: string;
  /**
   * The neurons (parameters whose output channels or rows the paper edits): every conv weight of a ResNet
   * (the original's PrunedConv2d set, 53 for ResNet-50; what `activated` and `threshold` rank and
   * finetune-prune masks); blocks.<i>.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2} weights of a ViT.
   */
  isNeuron(p: ParamShape): boolean;
  /**
   * The neurons the `largest` ranking walks: ResNet parameters whose name contains none of `bn`,
   * `downsample`, `fc` (the main conv weights, 49 for ResNet-50, downsample convs excluded as in the
   * original); a ViT's neurons.
   */
  isMainNeuron(p: ParamShape): boolean;
}

const VIT_LINEAR = /\.(attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.weight$/;

/** Per family: head name and neurons (original-behaviour §4). */
export const FAMILIES: Record<Family, FamilyTraits> = {
  resnet: {
    headName: 'fc',
    isNeuron: (p) => p.shape.length === 4,
    isMainNeuron: (p) => p.shape.length === 4 && !/bn|downsample|fc/.test(p.name),
  },
  vit: {
    headName: 'head',
    isNeuron: (p) => VIT_LINEAR.test(p.name),
    isMainNeuron: (p) => VIT_LINEAR.test(p.name),
  },
};

/** The traits of an architecture's family. */
export function familyOf(arch: string): FamilyTraits {
  return FAMILIES[archShape(arch).family];
}

/** The state-dict keys of an architecture's head Linear: `<head>.0.*` with the softmax head (the original's), `<head>.*` without. */
export function headKeys(arch: string, head: 'softmax' | 'linear'): { weight: string; bias: string } {
  const prefix = head === 'softmax' ? `${familyOf(arch).headName}.0` : familyOf(arch).headName;
  return { weight: `${prefix}.weight`, bias: `${prefix}.bias` };
}

/**
 * The architecture a state dict's keys and shapes belong to, or undefined: torchvision ResNets by block
 * type (conv3 = Bottleneck) and the number of blocks in layer3 (2 basic: resnet18; 6 bottleneck:
 * resnet50); timm ViTs by the width of `cls_token` (192/384/768/1024: deit_tiny/small/base, vit_large).
 */
export function detectArch(ck: NativeCheckpoint, path: string[]): Arch | undefined {
  const keys = ck.keys(path);
  if (keys.includes('layer1.0.conv1.weight')) {
    const blocks = new Set(keys.filter((k) => k.startsWith('layer3.')).map((k) => k.split('.')[1])).size;
    const block = keys.includes('layer1.0.conv3.weight') ? 'bottleneck' : 'basic';
    return RESNETS.find((a) => {
      const s = ARCHITECTURES[a];
      return s.block === block && s.layers[2] === blocks;
    });
  }
  if (keys.includes('cls_token')) {
    const shape = (ck.toObject([...path, 'cls_token']) as { shape?: number[] }).shape ?? [];
    return VITS.find((a) => ARCHITECTURES[a].width === shape[shape.length - 1]);
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
  if (isArch(n)) return n;
  const timm = /^(deit_tiny|deit_small|deit_base|vit_large)_patch(\d+)_\d+(_in21k)?$/.exec(n);
  if (!timm || (timm[3] && timm[1] !== 'vit_large')) return undefined;
  const arch = timm[1] as Arch;
  return Number(timm[2]) === (ARCHITECTURES[arch] as VitShape).patchSize ? arch : undefined;
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
  if (rec && typeof rec.arch === 'string' && isArch(rec.arch)) {
    return { arch: rec.arch, reason: `recorded in ${rec.source}` };
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
  const patch = Math.min(...VITS.map((a) => ARCHITECTURES[a].patchSize));
  return g > 0 && g * g + 1 === shape[1] ? patch * g : undefined;
}
