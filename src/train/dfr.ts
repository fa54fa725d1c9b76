/**
 * Deep Feature Reweighting (Kirichenko, Izmailov & Wilson, "Last Layer Re-Training is Sufficient for
 * Robustness to Spurious Correlations", ICLR 2023; the authors' code PolinaKirichenko/deep_feature_reweighting,
 * its DFR on the validation split): the last layer of an ERM model retrained on group-balanced data.
 *
 * 1. Embeddings: the penultimate layer (the head's input; eval mode, eval transform) of every image of
 *    the validation and test splits.
 * 2. Tuning C: the validation split is shuffled and halved; on the second half, group-balanced (all of
 *    the smallest group, as many drawn from each other group), standardised with that subset's mean and
 *    standard deviation, an L1 logistic regression is fitted for each C of {1, 0.7, 0.3, 0.1, 0.07, 0.03,
 *    0.01}; the C with the best worst-group accuracy on the first half wins (the larger C on ties).
 * 3. The final layer: the embeddings standardised with the whole validation split's statistics; `subsamples`
 *    group-balanced subsets of the whole validation split, one L1 logistic regression each at the chosen C;
 *    coefficients and intercepts averaged.
 * 4. The standardisation folded into the weights and the binary model written into the 2-class head
 *    (rows +-w/2, biases +-b/2, so that output difference = the logistic regression's decision function
 *    and the head's softmax = its probability); the model is saved as a checkpoint PyTorch and spurmem load.
 *
 * Writes a run folder: config.json, epoch_0_checkpoints.pth.tar (the reweighted model), metrics.jsonl
 * (epoch -1: the ERM model; epoch 0: DFR's), the summaries, and dfr.json (the tuning table, the chosen C,
 * the subsets, non-zero weights).
 */
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { countsTable, sharedImageCache, type ImageCache, openDataset, type Dataset } from '../data/index.js';
import type { Split } from '../data/types.js';
import { evaluateSplit } from '../eval/evaluate-split.js';
import { targetIndex, type GroupMetrics } from '../metrics/groups.js';
import { intervalOptions } from '../metrics/intervals.js';
import { stateDictPath } from '../checkpoint.js';
import { newCheckpointMeta } from '../checkpoint-meta.js';
import { createModel, loadWeights, setThreads, type Model } from '../model/index.js';
import { addon } from '../native.js';
import { BASE_KEYS, resolveBase } from '../base.js';
import { schemaFields } from '../options/derive.js';
import { INTERVAL_KEYS } from '../options/table.js';
import { SpurmemError, optionsError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/files.js';
import { Rng } from '../util/random.js';
import { brief, evaluateAll, recordInitial } from './evaluate-all.js';
import { fitL1LogReg, predictLogReg, type LogReg } from './logreg.js';
import type { RunHooks } from './run-start.js';
import { RunDir, versions } from './run-dir.js';

/** The grid of inverse regularisation strengths C tried (the reference's C_OPTIONS). */
export const DFR_C_GRID = [1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01] as const;

/** Options of `dfr()` / `spurmem dfr`: a base (run or checkpoint), the subsets, the seed, the folder. */
export const dfrSchema = z
  .object({
    ...schemaFields('finetune', [...BASE_KEYS, 'batchSize', 'device', 'threads', 'seed', 'force', 'skipBadImages', 'cacheMb', 'quiet', ...INTERVAL_KEYS]),
    ...schemaFields('dfr', ['subsamples', 'out']),
  })
  .strict();

/** Input of `dfr()`: `run` or `checkpoint` (with the dataset when the checkpoint does not record it) and the options of {@link dfrSchema}. */
export type DfrInput = z.input<typeof dfrSchema>;

/** What `dfr()` returns (`--json`). */
export interface DfrSummary {
  out: string;
  checkpoint: string;
  c: number;
  tuning: { c: number; val_worst_group_accuracy: number }[];
  start: { val: GroupMetrics; test: GroupMetrics };
  dfr: { val: GroupMetrics; test: GroupMetrics };
  seconds: number;
}

/** Embeddings [n, d] (row-major) of a split, with each sample's class and group. */
export interface Embeddings {
  x: Float32Array;
  n: number;
  d: number;
  y: number[];
  g: number[];
}

/**
 * The penultimate-layer embeddings of `splits`: a copy of the model whose head is a d x d identity
 * (d = the head's input size) gives the head's input as its output, in one eval-mode pass per split.
 * @throws SpurmemError when the checkpoint does not fit the model without its head
 */
export async function embeddings(
  model: Model,
  ck: Parameters<typeof loadWeights>[1],
  ds: Dataset,
  splits: readonly Split[],
  o: { resolution: number; resize?: 'pil' | 'sharp'; batchSize: number; cache?: ImageCache; skipBadImages?: boolean; lnEps: number },
): Promise<Record<string, Embeddings>> {
  const info = model.info();
  const headWeight = info.parameters.find((p) => p.name === headKey(model, 'weight'));
  if (!headWeight) throw new SpurmemError(`dfr: the model has no ${headKey(model, 'weight')}`);
  const d = headWeight.shape[1];
  const features = createModel({ arch: info.arch as Parameters<typeof createModel>[0]['arch'], head: 'linear', numClasses: d, device: info.device, imageSize: info.imageSize, lnEps: o.lnEps });
  const report = await loadWeights(features, ck, { strict: false, path: stateDictPath(ck), skip: [`${info.headName}.`] });
  const unfit = [...report.missing.filter((k) => !k.startsWith(`${info.headName}.`)), ...report.unexpected];
  if (unfit.length) throw new SpurmemError(`dfr: the checkpoint does not fit ${info.arch} outside its head: ${unfit.slice(0, 5).join(', ')}`);
  const eye = new Float32Array(d * d);
  for (let j = 0; j < d; j++) eye[j * d + j] = 1;
  features.setTensor(`${info.headName}.weight`, { dtype: 'float32', shape: [d, d], data: eye });
  features.setTensor(`${info.headName}.bias`, { dtype: 'float32', shape: [d], data: new Float32Array(d) });
  const out: Record<string, Embeddings> = {};
  for (const split of splits) {
    const r = await evaluateSplit(features, ds, split, { resolution: o.resolution, resize: o.resize, batchSize: o.batchSize, cache: o.cache, skipBadImages: o.skipBadImages, labelOrder: 'natural' });
    const samples = ds.samples[split];
    // images left out with --skip-bad-images have NaN rows: leave them out here too
    const keep = samples.map((_, i) => !Number.isNaN(r.outputs[i * d]));
    const n = keep.filter(Boolean).length;
    const x = new Float32Array(n * d);
    let k = 0;
    samples.forEach((_, i) => {
      if (keep[i]) x.set(r.outputs.subarray(i * d, (i + 1) * d), (k++) * d);
    });
    out[split] = { x, n, d, y: samples.filter((_, i) => keep[i]).map((s) => s.y), g: samples.filter((_, i) => keep[i]).map((s) => s.group) };
  }
  return out;
}

function headKey(model: Model, what: 'weight' | 'bias'): string {
  const info = model.info();
  return info.head === 'softmax' ? `${info.headName}.0.${what}` : `${info.headName}.${what}`;
}

/** Rows `rows` of `e`, as float64. */
function take(e: Embeddings, rows: readonly number[]): { x: Float64Array; y: number[]; g: number[] } {
  const x = new Float64Array(rows.length * e.d);
  rows.forEach((r, i) => {
    for (let j = 0; j < e.d; j++) x[i * e.d + j] = e.x[r * e.d + j];
  });
  return { x, y: rows.map((r) => e.y[r]), g: rows.map((r) => e.g[r]) };
}

/**
 * A group-balanced subset of `rows` (positions in `e`): each group's rows shuffled, then the first m of
 * each, m the smallest group's count among the groups present (the reference's balancing).
 */
export function balancedRows(g: readonly number[], rows: readonly number[], rng: Rng): number[] {
  const byGroup = new Map<number, number[]>();
  for (const r of rows) byGroup.set(g[r], [...(byGroup.get(g[r]) ?? []), r]);
  const groups = [...byGroup.keys()].sort((a, b) => a - b);
  const m = Math.min(...groups.map((k) => byGroup.get(k)!.length));
  return groups.flatMap((k) => rng.shuffle([...byGroup.get(k)!]).slice(0, m));
}

/** StandardScaler: per-feature mean and population standard deviation (1 where it is 0), of rows x [n, d]. */
export function scalerOf(x: Float64Array, n: number, d: number): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) scale[j] += (x[i * d + j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    const s = Math.sqrt(scale[j] / n);
    scale[j] = s > 0 ? s : 1;
  }
  return { mean, scale };
}

function standardise(x: Float64Array, n: number, d: number, s: { mean: Float64Array; scale: Float64Array }): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - s.mean[j]) / s.scale[j];
  return out;
}

/** Worst-group accuracy of predictions over the groups present. */
function worstGroup(pred: Uint8Array, y: readonly number[], g: readonly number[]): number {
  const right = new Map<number, [number, number]>();
  y.forEach((yi, i) => {
    const [a, b] = right.get(g[i]) ?? [0, 0];
    right.set(g[i], [a + (pred[i] === yi ? 1 : 0), b + 1]);
  });
  return Math.min(...[...right.values()].map(([a, b]) => a / b));
}

/**
 * DFR on fixed validation embeddings (steps 2 and 3 of the module comment).
 * @returns the chosen C, the tuning table, the averaged model on raw (unstandardised) embeddings, the
 *   subsets' sizes
 */
export function dfrFit(val: Embeddings, o: { seed: number; subsamples: number; grid?: readonly number[] }): {
  c: number;
  tuning: { c: number; val_worst_group_accuracy: number }[];
  model: LogReg;
  subsetSize: number;
  nonzero: number;
  /** The rows of `val` used: the tuning fit (balanced) and check halves, and each final subset. */
  rows: { tuneFit: number[]; tuneCheck: number[]; subsets: number[][] };
} {
  const grid = o.grid ?? DFR_C_GRID;
  const { d } = val;
  const all = Array.from({ length: val.n }, (_, i) => i);
  // tuning: half for fitting (balanced), half for checking
  const order = new Rng(o.seed, 0xdf4, 0).shuffle([...all]);
  const half = Math.floor(val.n / 2);
  const check = order.slice(0, half);
  const fitRows = balancedRows(val.g, order.slice(half), new Rng(o.seed, 0xdf4, 1));
  const fit = take(val, fitRows);
  const sc = scalerOf(fit.x, fitRows.length, d);
  const xf = standardise(fit.x, fitRows.length, d, sc);
  const chk = take(val, check);
  const xc = standardise(chk.x, check.length, d, sc);
  const tuning = grid.map((c) => {
    const m = fitL1LogReg(xf, fit.y, fitRows.length, d, c);
    return { c, val_worst_group_accuracy: worstGroup(predictLogReg(m, xc, check.length, d), chk.y, chk.g) };
  });
  let best = tuning[0];
  for (const t of tuning) if (t.val_worst_group_accuracy > best.val_worst_group_accuracy) best = t;
  // the final layer: subsets of the whole validation split, standardised with its statistics
  const full = take(val, all);
  const scAll = scalerOf(full.x, val.n, d);
  const coef = new Float64Array(d);
  let intercept = 0;
  let subsetSize = 0;
  const subsets: number[][] = [];
  for (let s = 0; s < o.subsamples; s++) {
    const rows = balancedRows(val.g, all, new Rng(o.seed, 0xdf4, 2, s));
    subsets.push(rows);
    subsetSize = rows.length;
    const t = take(val, rows);
    const m = fitL1LogReg(standardise(t.x, rows.length, d, scAll), t.y, rows.length, d, best.c);
    for (let j = 0; j < d; j++) coef[j] += m.coef[j] / o.subsamples;
    intercept += m.intercept / o.subsamples;
  }
  // fold the standardisation in: w.(x - mu)/sigma + b = (w/sigma).x + (b - sum w mu/sigma)
  const raw = new Float64Array(d);
  let b = intercept;
  for (let j = 0; j < d; j++) {
    raw[j] = coef[j] / scAll.scale[j];
    b -= (coef[j] * scAll.mean[j]) / scAll.scale[j];
  }
  return { c: best.c, tuning, model: { coef: raw, intercept: b, passes: 0, converged: true }, subsetSize, nonzero: Array.from(coef).filter((v) => v !== 0).length, rows: { tuneFit: fitRows, tuneCheck: check, subsets } };
}

/**
 * Writes a binary linear model (decision function w.x + b > 0: class 1) into a 2-class head: the row of
 * class 1 (in the model's label order) gets w/2 and b/2, the other -w/2 and -b/2.
 */
export function writeHead(model: Model, m: LogReg, labelOrder: 'original' | 'natural'): void {
  const d = m.coef.length;
  const w = new Float32Array(2 * d);
  const bias = new Float32Array(2);
  const one = targetIndex(1, labelOrder);
  for (let j = 0; j < d; j++) {
    w[one * d + j] = m.coef[j] / 2;
    w[(1 - one) * d + j] = -m.coef[j] / 2;
  }
  bias[one] = m.intercept / 2;
  bias[1 - one] = -m.intercept / 2;
  model.setTensor(headKey(model, 'weight'), { dtype: 'float32', shape: [2, d], data: w });
  model.setTensor(headKey(model, 'bias'), { dtype: 'float32', shape: [2], data: bias });
}

/**
 * Runs DFR on a run's or a checkpoint's model and writes its run folder (see the module comment).
 * @throws UsageError for bad options; SpurmemError for bad data, a model without a 2-class head, or a
 *   validation split that lacks a class
 */
export async function dfr(input: DfrInput, hooks: RunHooks = {}): Promise<DfrSummary> {
  const log = hooks.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const parsed = dfrSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const cfg = parsed.data;
  const t0 = Date.now();
  const threads = setThreads(cfg.threads);
  addon().checkDevice(cfg.device);
  const base = await resolveBase(cfg);
  const stem = basename(base.checkpointPath).replace(/\.pth(\.tar)?$/, '');
  const out = resolve(cfg.out ?? (base.runDir ? join(base.runDir, 'dfr', `epoch${base.epoch}_seed${cfg.seed}`) : join('experiments', 'dfr', `${stem}_seed${cfg.seed}`)));
  const run = new RunDir(out);
  const options: Record<string, unknown> = { ...cfg, out, run: base.runDir ?? undefined, checkpoint: base.checkpointPath, dataset: base.dataset, root: base.root, arch: base.arch, head: base.head, labelOrder: base.labelOrder, resolution: base.resolution };
  run.prepare(options, { resume: false, force: cfg.force, mayChange: [], command: 'dfr' });
  const ds = await openDataset({ dataset: base.dataset, root: base.root, target: base.target, attribute: base.attribute, skipBadImages: cfg.skipBadImages });
  if (!cfg.quiet) log(countsTable(ds));
  for (const w of [...base.warnings, ...ds.warnings]) log(`warning: ${w}`);
  for (const n of base.notes) log(`note: ${n}`);
  run.writeConfig({ command: 'dfr', options, resolved: { threads, root: ds.root, group_names: ds.groupNames }, versions: versions(), device: cfg.device, created: new Date().toISOString() });
  const model = createModel({ arch: base.arch, head: base.head, device: cfg.device, imageSize: base.resolution, lnEps: base.lnEps });
  await loadWeights(model, base.checkpoint, { strict: true, path: stateDictPath(base.checkpoint), archReason: base.archReason });
  if (model.info().numClasses !== 2) throw new SpurmemError(`dfr: the model has ${model.info().numClasses} outputs; DFR's logistic regression is binary`);
  const cache = sharedImageCache(cfg.cacheMb * 1024 * 1024);
  const evalOpts = { resolution: base.resolution, resize: base.resize, batchSize: cfg.batchSize, cache, labelOrder: base.labelOrder, skipBadImages: cfg.skipBadImages, intervals: intervalOptions(cfg) };
  await recordInitial(model, ds, run, { ...evalOpts, label: 'ERM' }, log);
  const te = Date.now();
  const emb = await embeddings(model, base.checkpoint, ds, ['val'], { resolution: base.resolution, resize: base.resize, batchSize: cfg.batchSize, cache, skipBadImages: cfg.skipBadImages, lnEps: base.lnEps });
  const val = emb.val;
  if (new Set(val.y).size < 2) throw new SpurmemError('dfr: the validation split holds one class only; the logistic regression needs both');
  const fit = dfrFit(val, { seed: cfg.seed, subsamples: cfg.subsamples });
  log(`dfr: C tuned on half of the validation split: ${fit.tuning.map((t) => `C ${t.c} wga ${t.val_worst_group_accuracy.toFixed(3)}`).join(', ')} -> C ${fit.c}`);
  log(`dfr: ${cfg.subsamples} group-balanced subsets of ${fit.subsetSize} validation images, ${fit.nonzero} of ${val.d} weights non-zero`);
  writeHead(model, fit.model, base.labelOrder);
  const seconds = (Date.now() - te) / 1000;
  const m = await evaluateAll(model, ds, { ...evalOpts, label: 'DFR' });
  const checkpoint = run.checkpoint(0);
  const recorded = { arch: base.arch, head: base.head, labelOrder: base.labelOrder, resolution: base.resolution, dataset: base.dataset, seed: cfg.seed };
  await model.save(checkpoint, { epoch: 0, loss: 0, optimizer: false, extra: { ...newCheckpointMeta(recorded, { lr: 0 }, model), dfr: { c: fit.c, subsamples: cfg.subsamples, source: base.checkpointPath } } });
  run.append({ epoch: 0, loss: null, lr: null, seconds, eval_seconds: m.seconds, train: m.train, val: m.val, test: m.test });
  await run.writeSummaries();
  writeJsonAtomic(run.path('dfr.json'), { c: fit.c, c_grid: DFR_C_GRID, tuning: fit.tuning, subsamples: cfg.subsamples, subset_size: fit.subsetSize, features: val.d, nonzero: fit.nonzero, source: base.checkpointPath });
  log(`DFR model: train ${brief(m.train)} | val ${brief(m.val)} | test ${brief(m.test)}`);
  const first = run.records().find((r) => r.epoch === -1)!;
  return { out: run.dir, checkpoint, c: fit.c, tuning: fit.tuning, start: { val: first.val, test: first.test }, dfr: { val: m.val, test: m.test }, seconds: (Date.now() - t0) / 1000 };
}
