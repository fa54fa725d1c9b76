/**
 * Resolving what a command works on: a `spurmem train` run folder (`--run DIR`, epoch E) or any
 * checkpoint file (`--checkpoint FILE`), and the dataset and model settings that go with it. Settings
 * given explicitly win; then the run's config.json; then the checkpoint's `spurmem` metadata; then, for
 * arch, a top-level `arch` string (pytorch/examples) and the state dict's keys; for the head, the state
 * dict's keys; for the label order, the head (a plain Linear head means natural order, the original's
 * Linear + Softmax the original [y, 1-y] order); then the original code's defaults (resnet50, softmax
 * head, [y, 1-y] label order, 224 px).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readCheckpoint, stateDictPath, strippedNote } from './checkpoint.js';
import { readCheckpointMeta } from './checkpoint-meta.js';
import type { NativeCheckpoint } from './native.js';
import type { LabelOrder } from './metrics/groups.js';
import { chooseArch, detectResolution, type Arch } from './model/index.js';
import type { DatasetKind, Head } from './options/enums.js';
import type { OptionKey } from './options/table.js';
import type { ResizeMethod } from './data/images.js';
import { SpurmemError, UsageError } from './util/errors.js';

/**
 * The options of a base, shared by study, finetune-prune and sweep (their validation is the option
 * table's): a run folder or a checkpoint, and the dataset and model settings that override what the run
 * or checkpoint records.
 */
export const BASE_KEYS = [
  'run', 'checkpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize', 'vitLnEps',
] as const satisfies readonly OptionKey[];

export interface BaseInput {
  run?: string;
  checkpoint?: string;
  epoch?: number;
  dataset?: DatasetKind;
  root?: string;
  target?: string;
  attribute?: string;
  arch?: Arch;
  head?: Head;
  labelOrder?: LabelOrder;
  resolution?: number;
  resize?: ResizeMethod;
  vitLnEps?: number;
}

export interface ResolvedBase {
  /** The checkpoint, read once (the model's weights come from it). */
  checkpoint: NativeCheckpoint;
  checkpointPath: string;
  runDir: string | null;
  epoch: number | null;
  dataset: DatasetKind;
  root: string;
  target?: string;
  attribute?: string;
  arch: Arch;
  /** Why `arch` was chosen (see chooseArch); load errors name it. */
  archReason: string;
  head: Head;
  labelOrder: LabelOrder;
  /** Why `labelOrder` was chosen (given, recorded, or assumed from the head). */
  labelOrderReason: string;
  resolution: number;
  /** As given (default pil): the eval transform's resize, not read from the run or checkpoint. */
  resize: ResizeMethod;
  lnEps: number;
  /** Settings given explicitly that contradict what the run's config.json or the checkpoint records. */
  warnings: string[];
  /** What was assumed about the checkpoint (wrapper prefixes removed, label order from the head). */
  notes: string[];
}

/**
 * The head a checkpoint's state dict holds: `fc.0.*` / `head.0.*` = the original's Linear + Softmax,
 * `fc.*` / `head.*` = a plain Linear (torchvision, timm, group_DRO, DFR, JTT, SubpopBench); undefined
 * when it has neither.
 */
export function headInFile(ck: NativeCheckpoint): Head | undefined {
  const keys = ck.keys(stateDictPath(ck));
  if (keys.includes('fc.0.weight') || keys.includes('head.0.weight')) return 'softmax';
  if (keys.includes('fc.weight') || keys.includes('head.weight')) return 'linear';
  return undefined;
}

/**
 * The head a checkpoint was saved with: `fc.0.*` / `head.0.*` = the original's Linear + Softmax,
 * `fc.*` / `head.*` = a plain Linear (default: softmax).
 */
export function detectHead(ck: NativeCheckpoint): Head {
  return headInFile(ck) ?? 'softmax';
}

/**
 * The label order to read a model's outputs in, and why. A given order wins, then a recorded one
 * (`recorded.order`, found in `recorded.source`); otherwise the head decides: only the original code's
 * Linear + Softmax head implies its [y, 1-y] order ('original'); a plain Linear head, as every other
 * code base writes, means output c = class c ('natural').
 * @param head the head the model is built with
 * @param fileHead the head the checkpoint's keys show ({@link headInFile})
 */
export function chooseLabelOrder(
  given: LabelOrder | undefined,
  recorded: { order: unknown; source: string } | undefined,
  head: Head,
  fileHead: Head | undefined,
): { labelOrder: LabelOrder; reason: string; assumed: boolean } {
  if (given) return { labelOrder: given, reason: 'given with --label-order', assumed: false };
  if (recorded && (recorded.order === 'original' || recorded.order === 'natural')) {
    return { labelOrder: recorded.order, reason: `recorded in ${recorded.source}`, assumed: false };
  }
  if (head === 'linear') {
    return { labelOrder: 'natural', reason: 'assumed: nothing records one, and a plain Linear head means output c = class c', assumed: true };
  }
  if (fileHead === 'softmax') {
    return { labelOrder: 'original', reason: "assumed: nothing records one, and the original code's Linear + Softmax head was trained on [y, 1-y] targets", assumed: true };
  }
  return { labelOrder: 'original', reason: "assumed: nothing records one or shows the head; the original code's [y, 1-y] order", assumed: true };
}

/** Epochs that have a checkpoint in a run folder, ascending. */
export function runEpochs(dir: string): number[] {
  if (!existsSync(dir)) throw new SpurmemError(`${dir}: no such run folder`);
  return readdirSync(dir)
    .map((f) => /^epoch_(\d+)_checkpoints\.pth\.tar$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * The checkpoint of epoch `epoch` (default: the last) of a run folder, and the epochs the folder has.
 * @throws SpurmemError when the folder has no epoch checkpoint, or none for `epoch`
 */
export function runCheckpoint(dir: string, epoch?: number): { epoch: number; path: string; epochs: number[] } {
  const epochs = runEpochs(dir);
  if (epochs.length === 0) throw new SpurmemError(`${dir}: no epoch_<e>_checkpoints.pth.tar`);
  const e = epoch ?? epochs[epochs.length - 1];
  if (!epochs.includes(e)) throw new SpurmemError(`${dir}: no checkpoint for epoch ${e} (have ${epochs.join(', ')})`);
  return { epoch: e, path: join(dir, `epoch_${e}_checkpoints.pth.tar`), epochs };
}

/** Settings a run or checkpoint records: the option, its key in the checkpoint's `spurmem` entry, its flag. */
const RECORDED_SETTINGS = [
  ['arch', 'arch', '--arch'],
  ['head', 'head', '--head'],
  ['resolution', 'resolution', '--resolution'],
  ['labelOrder', 'label_order', '--label-order'],
  ['target', 'target', '--target'],
  ['attribute', 'attribute', '--attribute'],
] as const;

/**
 * Warnings for settings given explicitly that contradict what `source` (a run's config.json or a
 * checkpoint) records; `recorded(option, metaKey)` gives the recorded value or undefined.
 */
export function recordedContradictions(
  given: Partial<Record<(typeof RECORDED_SETTINGS)[number][0], unknown>>,
  recorded: (option: string, metaKey: string) => unknown,
  source: string,
): string[] {
  const warnings: string[] = [];
  for (const [k, mk, flag] of RECORDED_SETTINGS) {
    const r = recorded(k, mk);
    if (given[k] !== undefined && r !== undefined && given[k] !== r) {
      warnings.push(`${flag} ${String(given[k])} differs from what ${source} records (${String(r)}); the results will not match the trained model's`);
    }
  }
  return warnings;
}

/**
 * Resolves a base.
 * @throws UsageError when neither or both of run/checkpoint are given, or the dataset is unknown;
 *   SpurmemError when the run folder has no such epoch.
 */
export async function resolveBase(input: BaseInput): Promise<ResolvedBase> {
  if (!input.run === !input.checkpoint) throw new UsageError('give exactly one of --run DIR and --checkpoint FILE');
  if (input.checkpoint && input.epoch !== undefined) throw new UsageError('--epoch picks a checkpoint of a --run folder; with --checkpoint FILE the file is the epoch');
  let cfg: Partial<Record<string, unknown>> = {};
  let checkpointPath: string;
  let epoch: number | null = null;
  let runDir: string | null = null;
  if (input.run) {
    runDir = resolve(input.run);
    const cfgPath = join(runDir, 'config.json');
    if (!existsSync(cfgPath)) throw new SpurmemError(`${runDir}: no config.json (not a spurmem run folder)`);
    cfg = (JSON.parse(readFileSync(cfgPath, 'utf8')) as { options?: Record<string, unknown> }).options ?? {};
    ({ epoch, path: checkpointPath } = runCheckpoint(runDir, input.epoch));
  } else {
    checkpointPath = resolve(input.checkpoint!);
  }
  const ck = await readCheckpoint(checkpointPath);
  const meta = readCheckpointMeta(ck);
  const sd = stateDictPath(ck);
  const notes: string[] = [];
  const stripped = strippedNote(ck);
  if (stripped) notes.push(stripped);
  const pick = <T>(k: string, metaKey: string, dflt: T): T => (input as Record<string, unknown>)[k] as T ?? (cfg[k] as T) ?? (meta[metaKey] as T) ?? dflt;
  const dataset = pick<ResolvedBase['dataset'] | undefined>('dataset', 'dataset', undefined);
  let root = pick<string | undefined>('root', '', undefined);
  if (!dataset || !root) throw new UsageError('--dataset and --root are needed (with --run they are read from the run folder)');
  if (input.root === undefined && runDir) {
    if (!existsSync(resolve(root))) {
      throw new SpurmemError(`${join(runDir, 'config.json')} names the dataset folder ${root}, which is not there (from ${process.cwd()}); pass --root DIR`);
    }
  }
  root = resolve(root);
  const warnings = recordedContradictions(input, (k, mk) => cfg[k] ?? meta[mk], runDir ? join(runDir, 'config.json') : checkpointPath);
  const recordedIn = (k: string, mk: string) =>
    cfg[k] !== undefined ? { value: cfg[k], source: join(runDir ?? '', 'config.json') } : meta[mk] !== undefined ? { value: meta[mk], source: `${checkpointPath} (spurmem.${mk})` } : undefined;
  const recArch = recordedIn('arch', 'arch');
  const archChoice = chooseArch(ck, sd, { given: input.arch, recorded: recArch && { arch: recArch.value, source: recArch.source } });
  const head = pick<Head | undefined>('head', 'head', undefined) ?? detectHead(ck);
  const recOrder = recordedIn('labelOrder', 'label_order');
  const order = chooseLabelOrder(input.labelOrder, recOrder && { order: recOrder.value, source: recOrder.source }, head, headInFile(ck));
  if (order.assumed) notes.push(`${order.labelOrder} label order ${order.reason}; --label-order sets it`);
  return {
    warnings,
    notes,
    checkpoint: ck,
    checkpointPath,
    runDir,
    epoch,
    dataset,
    root,
    target: pick<string | undefined>('target', '', undefined),
    attribute: pick<string | undefined>('attribute', '', undefined),
    arch: archChoice.arch,
    archReason: archChoice.reason,
    head,
    labelOrder: order.labelOrder,
    labelOrderReason: order.reason,
    resolution: pick<number | undefined>('resolution', 'resolution', undefined) ?? detectResolution(ck, sd) ?? 224,
    resize: input.resize ?? 'pil',
    lnEps: pick<number>('vitLnEps', 'ln_eps', 1e-6),
  };
}
