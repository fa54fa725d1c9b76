/**
 * Loading pretrained backbones and training checkpoints into a 2-class model, the way the original code
 * does for each family (reference §2.1, §2.2, §3.1), except that nothing is dropped silently: every key
 * left out of the model is listed in the report, and everything else loads strictly.
 *
 * | file                                   | layout                                   | what is dropped          |
 * |----------------------------------------|------------------------------------------|--------------------------|
 * | training checkpoint (original, spurmem) | `{model_state_dict, ...}`               | nothing (strict)         |
 * | torchvision ResNet ImageNet weights    | plain state dict, 1000-class `fc`        | `fc.*`                   |
 * | DeiT (deit_*_patch16_224-*.pth)        | `{model: state dict}`, 1000-class `head` | `head.*`                 |
 * | ViT in21k (jx_vit_large_*_in21k-*.pth) | plain state dict, 21843-class `head`,    | `head.*`, `pre_logits.*` |
 * |                                        | `pre_logits.fc`                          |                          |
 *
 * The original loads DeiT/in21k files with `strict=False` (so `pre_logits.*` vanish without a word) and
 * then replaces the head by Linear(D, 2) + Softmax; here the backbone must match exactly, the dropped
 * keys are reported as `skipped`, and the new head's entries, left at their initialisation, as `fresh`.
 */
import { readCheckpoint, stateDictInfo } from './checkpoint.js';
import { readCheckpointMeta } from './checkpoint-meta.js';
import { isVit, loadHints, type Model } from './model/index.js';
import type { LoadReport, NativeCheckpoint } from './native.js';
import { SpurmemError, messageOf } from './util/errors.js';

/** How a weights file was read. */
export type WeightsKind = 'checkpoint' | 'torchvision' | 'deit' | 'in21k' | 'timm';

/** What loadPretrained did: LoadReport (loaded, missing, unexpected, skipped, filled, resized) plus: */
export interface PretrainedReport extends LoadReport {
  /** The file, as given. */
  file: string;
  /** The layout recognised (see the module's table). */
  kind: WeightsKind;
  /** Key path of the state dict inside the file ([] = the root). */
  path: string[];
  /** Wrapper prefixes every key carried, removed before loading (`module.` of DataParallel, `_orig_mod.` of torch.compile). */
  stripped: string[];
  /** Model entries that the file did not provide on purpose (the new 2-way head), left at their init. */
  fresh: string[];
  /** LayerNorm eps recorded in a spurmem checkpoint (`spurmem.ln_eps`), when there is one. */
  lnEps?: number;
}

/** Key prefixes of a pretrained file that never go into the 2-class model, by family. */
export function pretrainedSkips(arch: string): string[] {
  return isVit(arch) ? ['head.', 'pre_logits.'] : ['fc.'];
}

/** Reads `ck.spurmem.ln_eps` (written by spurmem's train command), if present. */
export function checkpointLnEps(ck: NativeCheckpoint): number | undefined {
  const v = readCheckpointMeta(ck).ln_eps;
  return typeof v === 'number' ? v : undefined;
}

/**
 * Loads a weights file into a model built for 2 classes (any head).
 *
 * - A training checkpoint (`model_state_dict`, as the original's ERM/Part II scripts and spurmem write
 *   them) loads strictly, head included. If it records `spurmem.ln_eps` and the model is a ViT with
 *   another LayerNorm eps, that is an error (the numbers would silently differ).
 * - Any other file is a pretrained backbone: its state dict (under `model` for DeiT files, else the root
 *   or `state_dict`) loads strictly except for the classifier keys (`fc.*` for ResNets; `head.*` and
 *   `pre_logits.*` for ViTs), which are skipped and reported; the model's own head stays as initialised.
 * A ViT's `pos_embed` is resampled (bicubic, antialiased, as timm's resample_abs_pos_embed) when the
 * model's resolution differs from the file's; the report lists it under `resized`.
 *
 * @param model a model from createModel (its arch decides the family)
 * @param file a path to a `.pth` file, or a checkpoint already read
 * @throws SpurmemError naming the file and the keys (missing, unexpected, size mismatch, eps mismatch)
 */
export async function loadPretrained(model: Model, file: string | NativeCheckpoint): Promise<PretrainedReport> {
  const ck = typeof file === 'string' ? await readCheckpoint(file) : file;
  const info = model.info();
  const rootKeys = ck.keys([]);
  const { path, stripped } = stateDictInfo(ck);
  const isCheckpoint = rootKeys.includes('model_state_dict') && path[0] === 'model_state_dict';
  const isTensor = (k: string) => {
    const v = ck.toObject([...path, k]);
    return v !== null && typeof v === 'object' && 'dtype' in v && 'shape' in v;
  };
  if (!ck.keys(path).some(isTensor)) {
    throw new SpurmemError(`${ck.path}: no state dict found (expected a dict of tensors at the root, or under 'model_state_dict', 'model', 'state_dict' or 'net')`);
  }
  let kind: WeightsKind;
  if (isCheckpoint) kind = 'checkpoint';
  else if (!isVit(info.arch)) kind = 'torchvision';
  else if (path[0] === 'model') kind = 'deit';
  else if (ck.keys(path).some((k) => k.startsWith('pre_logits.'))) kind = 'in21k';
  else kind = 'timm';

  const lnEps = checkpointLnEps(ck);
  if (isCheckpoint && isVit(info.arch) && lnEps !== undefined && Math.abs(lnEps - info.lnEps) > 1e-12 * Math.max(lnEps, info.lnEps)) {
    throw new SpurmemError(
      `${ck.path}: this checkpoint was trained with LayerNorm eps ${lnEps}, the model is built with ${info.lnEps}; ` +
        `build it with lnEps ${lnEps} (--vit-ln-eps ${lnEps})`,
    );
  }

  const skip = isCheckpoint ? [] : pretrainedSkips(info.arch);
  let rep: LoadReport;
  try {
    rep = await model.loadStateDict({ checkpoint: ck, path, strict: true, skip });
  } catch (e) {
    throw new SpurmemError(messageOf(e) + loadHints(model, ck, path));
  }
  const entries = [...info.parameters, ...info.buffers].map((p) => p.name);
  const fresh = entries.filter((n) => skip.some((s) => n.startsWith(s)));
  const out: PretrainedReport = { ...rep, file: ck.path, kind, path, stripped, fresh };
  if (lnEps !== undefined) out.lnEps = lnEps;
  return out;
}

/** One line for logs: "loaded 150 tensors from X (deit); skipped head.weight, head.bias; new head.0.weight, head.0.bias". */
export function describePretrained(r: PretrainedReport): string {
  const parts = [`loaded ${r.loaded.length} tensors from ${r.file} (${r.kind})`];
  if (r.stripped.length) parts.push(`key prefix ${r.stripped.map((p) => `'${p}'`).join(' and ')} removed`);
  if (r.skipped.length) parts.push(`skipped ${r.skipped.join(', ')}`);
  if (r.fresh.length) parts.push(`new ${r.fresh.join(', ')}`);
  if (r.resized.length) parts.push(`resized ${r.resized.join(', ')}`);
  return parts.join('; ');
}
