/**
 * Just Train Twice (Liu et al., "Just Train Twice: Improving Group Robustness without Training Group
 * Information", ICML 2021; the authors' code anniesch/jtt): an identification model trained by ERM for T
 * epochs, its error set on the training split (the samples it misclassifies, eval transform, eval mode),
 * then a final model trained by ERM from the same start on the training split with every error-set sample
 * repeated so that it appears L times (upsampling by repetition, as the reference's upsampled dataset).
 *
 * Writes one folder: `stage1/` (the identification run), `error_set.json`, `stage2/` (the final run);
 * both stages are ordinary `spurmem train` run folders.
 */
import { join, resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { openDataset, ImageCache } from '../data/index.js';
import { evaluateSplit } from '../eval/evaluate-split.js';
import { targetIndex } from '../metrics/groups.js';
import { readCheckpoint, stateDictPath } from '../checkpoint.js';
import { createModel, loadWeights } from '../model/index.js';
import { runCheckpoint } from '../base.js';
import { schemaFields } from '../options/derive.js';
import { SpurmemError, UsageError, optionsError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/files.js';
import { trainWith, type TrainSummary } from './erm.js';
import { resolveTrainOptions, trainSchema, type TrainInput } from './options.js';
import type { RunHooks } from './run-start.js';
import { upsampleErrorSet } from './sampling.js';

/** JTT's own options and its folder (the two stages take `spurmem train`'s options). */
export const jttSchema = z.object(schemaFields('jtt', ['identificationEpochs', 'upweight', 'out'])).strict();

/** Input of `jtt()`: train()'s options (the final model's; `epochs` is the final model's) and JTT's. */
export type JttInput = Omit<TrainInput, 'algorithm' | 'droEta' | 'droAdjustment' | 'subsampleRedraw' | 'reweight' | 'out'> & z.input<typeof jttSchema>;

/** The error set as `error_set.json` records it. */
export interface ErrorSet {
  /** The identification checkpoint it comes from, and its epoch (0-based). */
  checkpoint: string;
  epoch: number;
  /** Positions in the training split (metadata order) of the misclassified samples. */
  positions: number[];
  /** Their image files. */
  files: string[];
  /** How many of each group (0..3) are in it, and of how many in the split. */
  by_group: number[];
  group_counts: number[];
  upweight: number;
}

/** What `jtt()` returns (`spurmem jtt --json`). */
export interface JttSummary {
  out: string;
  identification: TrainSummary;
  error_set: { file: string; size: number; by_group: number[] };
  final: TrainSummary;
  seconds: number;
}

/**
 * The positions of the training samples that a checkpoint misclassifies (eval transform, eval mode), with
 * its head and label order.
 */
export async function errorSet(
  checkpointPath: string,
  o: { ds: Awaited<ReturnType<typeof openDataset>>; arch: Parameters<typeof createModel>[0]['arch']; head: 'softmax' | 'linear'; labelOrder: 'original' | 'natural'; resolution: number; resize?: 'pil' | 'sharp'; device: string; batchSize: number; lnEps?: number; cache?: ImageCache; skipBadImages?: boolean },
): Promise<number[]> {
  const model = createModel({ arch: o.arch, head: o.head, device: o.device, imageSize: o.resolution, lnEps: o.lnEps ?? 1e-6 });
  const ck = await readCheckpoint(checkpointPath);
  await loadWeights(model, ck, { strict: true, path: stateDictPath(ck) });
  const ev = await evaluateSplit(model, o.ds, 'train', { resolution: o.resolution, resize: o.resize, batchSize: o.batchSize, cache: o.cache, labelOrder: o.labelOrder, skipBadImages: o.skipBadImages });
  const C = model.info().numClasses;
  const out: number[] = [];
  o.ds.samples.train.forEach((s, i) => {
    const row = ev.outputs.subarray(i * C, (i + 1) * C);
    if (Number.isNaN(row[0])) return; // an image left out with --skip-bad-images
    let best = 0;
    for (let c = 1; c < C; c++) if (row[c] > row[best]) best = c;
    if (best !== targetIndex(s.y, o.labelOrder)) out.push(i);
  });
  return out;
}

/**
 * Runs JTT and writes its folder (see the module comment). With `resume`, each stage continues from its
 * last complete epoch; a finished stage 1 is not trained again.
 * @throws UsageError for bad options; SpurmemError as train() does
 */
export async function jtt(input: JttInput, hooks: RunHooks = {}): Promise<JttSummary> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = Date.now();
  const { identificationEpochs, upweight, out: outGiven, ...rest } = input as JttInput & Record<string, unknown>;
  for (const k of ['algorithm', 'droEta', 'droAdjustment', 'subsampleRedraw', 'reweight']) {
    if (k in rest && rest[k] !== undefined) throw new UsageError(`jtt trains both stages by plain ERM: '${k}' is not one of its options`);
  }
  const j = jttSchema.safeParse({ identificationEpochs, upweight, out: outGiven });
  if (!j.success) throw optionsError(j.error.issues);
  let trainRest = rest as TrainInput;
  if (rest.resume && outGiven && existsSync(join(resolve(String(outGiven)), 'stage2', 'config.json'))) {
    // --resume --out DIR alone: the final run's config.json has the options
    const cfg = JSON.parse(readFileSync(join(resolve(String(outGiven)), 'stage2', 'config.json'), 'utf8')) as { options?: Record<string, unknown> };
    const { out: _o, resume: _r, force: _f, ...recorded } = cfg.options ?? {};
    trainRest = { ...recorded, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) } as TrainInput;
  }
  if (trainRest.dataset === undefined || trainRest.root === undefined) throw new UsageError(`${trainRest.dataset === undefined ? '--dataset' : '--root'} is needed`);
  const arch = trainSchema.shape.arch.parse(trainRest.arch);
  const out = resolve(String(outGiven ?? `experiments/${arch}_${trainRest.dataset}_jtt`));
  // every option is checked before stage 1 starts
  resolveTrainOptions({ ...trainRest, out: join(out, 'stage2') });
  const { identificationEpochs: T, upweight: L } = j.data;

  log(`jtt: stage 1, identification model (ERM, ${T} epochs) in ${join(out, 'stage1')}`);
  const stage1 = await trainWith({ ...trainRest, epochs: T, out: join(out, 'stage1') }, { log }, {});
  const cfg1 = resolveTrainOptions({ ...trainRest, epochs: T, out: join(out, 'stage1') });
  const ds = await openDataset({ dataset: cfg1.dataset, root: cfg1.root, target: cfg1.target, attribute: cfg1.attribute, skipBadImages: cfg1.skipBadImages });
  const ck = runCheckpoint(join(out, 'stage1'), T - 1);
  const positions = await errorSet(ck.path, {
    ds, arch: cfg1.arch, head: cfg1.head, labelOrder: cfg1.labelOrder, resolution: cfg1.resolution, resize: cfg1.resize, device: cfg1.device,
    batchSize: cfg1.evalBatchSize ?? cfg1.batchSize, lnEps: cfg1.vitLnEps, skipBadImages: cfg1.skipBadImages,
  });
  const train = ds.samples.train;
  const byGroup = [0, 0, 0, 0];
  for (const i of positions) byGroup[train[i].group] += 1;
  const groupCounts = [0, 0, 0, 0];
  for (const s of train) groupCounts[s.group] += 1;
  const record: ErrorSet = { checkpoint: ck.path, epoch: ck.epoch, positions, files: positions.map((i) => train[i].file), by_group: byGroup, group_counts: groupCounts, upweight: L };
  const errorFile = join(out, 'error_set.json');
  writeJsonAtomic(errorFile, record);
  log(`jtt: error set of ${positions.length} training samples (by group ${byGroup.join(', ')} of ${groupCounts.join(', ')}), each seen ${L} times by the final model`);
  if (positions.length === 0) throw new SpurmemError(`jtt: the identification model (${ck.path}) gets every training sample right; the error set is empty (use fewer --identification-epochs)`);

  log(`jtt: stage 2, final model in ${join(out, 'stage2')}`);
  const final = await trainWith({ ...trainRest, out: join(out, 'stage2') }, { log }, {
    trainSamples: upsampleErrorSet(train, positions, L),
    resolved: { jtt: { error_set: errorFile, size: positions.length, upweight: L, identification: join(out, 'stage1'), identification_epochs: T } },
  });
  return { out, identification: stage1, error_set: { file: errorFile, size: positions.length, by_group: byGroup }, final, seconds: (Date.now() - t0) / 1000 };
}
