/**
 * Loading a checkpoint's weights into a model, with hints that say why a state dict did not fit (the
 * architecture chosen and why, what the checkpoint records, its head, an ImageNet classifier).
 */
import type { LoadReport, NativeCheckpoint } from '../native.js';
import { stateDictPath } from '../checkpoint.js';
import { readCheckpointMeta } from '../checkpoint-meta.js';
import { SpurmemError, messageOf } from '../util/errors.js';
import { archFromName, detectArch } from './architectures.js';
import type { Model } from './model.js';

/**
 * Loads a checkpoint's state dict into a model: `model_state_dict` (original training checkpoints),
 * `model` (DeiT files) or the whole file (torchvision weights, plain state dicts).
 * With `strict`, missing or unexpected keys are errors; keys starting with a `skip` prefix are dropped on
 * purpose and reported. Shape mismatches are always errors. A ViT's `pos_embed` is resized bicubically
 * when the model's resolution differs (timm's resample_abs_pos_embed).
 * @throws SpurmemError naming the file and the keys.
 */
export async function loadWeights(
  model: Model,
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
export function loadHints(model: Model, ck: NativeCheckpoint, path: string[], archReason?: string): string {
  const meta = readCheckpointMeta(ck) as { arch?: string; head?: string };
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
