/**
 * Running a study setting (original-behaviour §3.2-§3.4, §5; Q1, Q28): one unmodified evaluation, the
 * blocks of the ranking, then per block R repeats of: modify the selected weights, evaluate, restore the
 * touched tensors in place (no model copies); the result folder last. The channel rankings draw each
 * repeat's edit once, save the edited rows, and evaluate all repeats (of one setting or of many settings
 * of a sweep) in one pass over the split, batch by batch: the unchanged prefix of the network runs once
 * per batch and each repeat only from the first block it touches, or from the first block where its edit
 * departs from an earlier repeat's (sharedPrefixes).
 */
import { join, resolve } from 'node:path';
import type { Split } from '../../data/types.js';
import { evaluateVariants, type Variant } from '../../eval/evaluate-variants.js';
import { stateDictPath } from '../../checkpoint.js';
import type { GroupMetrics } from '../../metrics/groups.js';
import type { ModelInfo as NativeModelInfo, ModificationMode, NativeCheckpoint } from '../../native.js';
import { isRandomMode } from '../../options/enums.js';
import { accuracyLine } from '../../report/text.js';
import { SpurmemError, UsageError, flagName, optionsError } from '../../util/errors.js';
import { candidateParams } from '../rank.js';
import { addTiming, evaluateOn, evaluateOptions, prepareStudy, rewindSource, unmodifiedOf, type StudyContext } from './context.js';
import { planBlocks, type BlockPlan } from './plan.js';
import { sampleOutcomes } from '../../metrics/paired.js';
import { blockPaired, blockSamples, isDeterministic, type BlockSamples, type Outcomes } from './paired.js';
import { folderSuffix, originalFileName, summarizeBlock, writeStudyResult, type StudyBlock, type StudyResult } from './result.js';
import {
  isRewindMode, resolveStudySetting, settingApplies, settingProblem, studyBaseSchema, studyOutputSchema, type ResolvedStudySetting, type StudyBaseInput, type StudyInput,
  type StudySettingInput,
} from './settings.js';

/** Seed of repeat r of block b: a fixed mix of (seed, b, r), so every repeat has its own stream. */
export function repeatSeed(seed: number, block: number, repeat: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [block, repeat]) {
    h = Math.imul(h ^ (v + 0x7f4a7c15), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/** A repeat of a block as a variant: its seed, first touched stage, and the saved weights it swaps in and out. */
interface PreparedRepeat {
  seed: number;
  start: number;
  /** Snapshot of the block's touched weights as this repeat edits them (the random values drawn once). */
  edited: number;
  /** Snapshot of the same weights unedited. */
  original: number;
  /** What the edit is, to find repeats that are the same edit up to some stage (see sharedPrefixes). */
  edit: RepeatEdit;
}

/**
 * A repeat's edit as modifyChannels makes it: the channels in order with their stages, and what else
 * decides the values written (mode; for the random modes std and seed; for the rewind modes the source).
 */
interface RepeatEdit {
  key: string;
  channels: { name: string; index: number; stage: number }[];
}

/** One block of a prepared setting: its plan and, once evaluated, the metrics and outcomes of each repeat. */
interface PreparedBlock {
  plan: BlockPlan;
  seeds: number[];
  /** Channel rankings: one per repeat; empty for a skipped block and for `threshold` (run directly). */
  repeats: PreparedRepeat[];
  metrics: GroupMetrics[];
  outcomes: Outcomes[];
  threshold?: StudyBlock['threshold'];
}

/**
 * A setting made ready to evaluate (see {@link prepareStudySetting}): validated, its unmodified
 * evaluation and ranking done, and for the channel rankings the edited weights of every repeat saved
 * (the random values of a repeat drawn once, with the repeat's seed, exactly as a per-repeat edit would).
 */
export interface PreparedStudySetting {
  readonly ctx: StudyContext;
  readonly setting: ResolvedStudySetting;
  /** True for `threshold`: its repeats pick weights anywhere in the network and run one after another. */
  readonly direct: boolean;
  /** @internal */
  readonly state: PreparedState;
}

interface PreparedState {
  input: { out?: string; quiet?: boolean; perSample: boolean; rewindCheckpoint?: string };
  log: (line: string) => void;
  t0: number;
  info: NativeModelInfo;
  timing: StudyResult['timing'];
  base: { outputs: Float32Array; metrics: GroupMetrics };
  src: { ck: NativeCheckpoint; path: string } | null;
  srcPath?: string[];
  blocks: PreparedBlock[];
  snapshots: number[];
  evaluated: boolean;
}

/**
 * Validates a setting, evaluates the unmodified model on its split (once per base), ranks its blocks and,
 * for `largest` and `activated`, draws every repeat's edit once and saves the edited weights (only the
 * chosen channels; the whole tensors for layer_rewind). The model is left unedited.
 * @throws UsageError for options that do not fit (rewind without a source, threshold with layer_rewind);
 *   SpurmemError when the ranking fails
 */
export async function prepareStudySetting(
  ctx: StudyContext,
  input: StudySettingInput & { out?: string; rewindCheckpoint?: string; quiet?: boolean; perSample?: boolean },
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<PreparedStudySetting> {
  const { out: outOpt, rewindCheckpoint, quiet, perSample: perSampleIn, ...rest } = input;
  const output = studyOutputSchema.safeParse({ out: outOpt, perSample: perSampleIn });
  if (!output.success) throw optionsError(output.error.issues);
  const perSample = output.data.perSample;
  // said once per base, before its first setting
  for (const w of ctx.warnings.splice(0)) log(`warning: ${w}`);
  for (const n of ctx.notes.splice(0)) log(`note: ${n}`);
  const s = resolveStudySetting(rest);
  const { repeats } = s;
  const rewindFile = rewindCheckpoint ?? ctx.base.rewindCheckpoint;
  const problem = settingProblem(s, { rewindCheckpoint: rewindFile !== undefined });
  if (problem) throw new UsageError(problem);
  const ignored = Object.keys(rest).filter((k) => (rest as Record<string, unknown>)[k] !== undefined && !settingApplies(k, s, { rewindCheckpoint: rewindFile !== undefined }));
  if (ignored.length && !quiet) log(`warning: ${ignored.map(flagName).join(', ')} ${ignored.length > 1 ? 'do' : 'does'} not apply to --ranking ${s.ranking} --mode ${s.mode}: ignored`);
  const t0 = Date.now();
  const split = s.split;
  const model = ctx.model;
  const info = model.info();
  if (ctx.ds.samples[split].length === 0) throw new SpurmemError(`${ctx.ds.metadataFile}: the ${split} split is empty`);
  const timing = { data_seconds: 0, compute_seconds: 0, evaluations: 0 };
  const base = await unmodifiedOf(ctx, split, timing);
  const src = isRewindMode(s.mode) ? await rewindSource(ctx, s, { rewindCheckpoint }) : null;
  const srcPath = src ? stateDictPath(src.ck) : undefined;
  if (src && rewindFile && s.rewindEpochs === 0) {
    // name the result after the distance in epochs that the two checkpoints record, when they do
    const epochOf = (ck: NativeCheckpoint) => (ck.keys([]).includes('epoch') ? (ck.toObject(['epoch']) as unknown) : undefined);
    const a = epochOf(ctx.checkpoint);
    const b = epochOf(src.ck);
    if (typeof a === 'number' && typeof b === 'number' && a > b) s.rewindEpochs = a - b;
  }

  const plans = await planBlocks(ctx, s, info, base.outputs, { quiet, log });
  const direct = s.ranking === 'threshold';
  const snapshots: number[] = [];
  const blocks: PreparedBlock[] = [];
  const prepared: PreparedStudySetting = {
    ctx,
    setting: s,
    direct,
    state: { input: { out: outOpt, quiet, perSample, rewindCheckpoint }, log, t0, info, timing, base, src, srcPath, blocks, snapshots, evaluated: false },
  };
  try {
    for (let bi = 0; bi < plans.length; bi++) {
      const plan = plans[bi];
      const block: PreparedBlock = { plan, seeds: [], repeats: [], metrics: [], outcomes: [] };
      blocks.push(block);
      if (plan.skipped) continue;
      for (let r = 0; r < repeats; r++) block.seeds.push(repeatSeed(s.seed, bi, r));
      if (direct) continue;
      // the block's touched weights: its channels' rows, or whole tensors where the mode replaces them
      const edits = plan.channels.map((c) => ({ name: c.name, index: c.index }));
      const wholeTensors = s.mode === 'layer_rewind' || edits.some((e) => e.index < 0);
      const names = [...new Set(edits.map((e) => e.name))];
      const save = () => (wholeTensors ? model.snapshot(names) : model.snapshotChannels(edits));
      const start = Math.max(0, Math.min(...names.map((n) => model.stageOf(n))));
      const channels = edits.map((e) => ({ ...e, stage: Math.max(0, model.stageOf(e.name)) }));
      const source = src ? JSON.stringify([src.path, srcPath]) : '';
      const original = save();
      snapshots.push(original);
      for (const seed of block.seeds) {
        try {
          await model.modifyChannels({ edits, mode: s.mode, std: s.std, seed, source: src?.ck, sourcePath: srcPath });
          const edited = save();
          snapshots.push(edited);
          const key = JSON.stringify([s.mode, isRandomMode(s.mode) ? [s.std, seed] : null, source]);
          block.repeats.push({ seed, start, edited, original, edit: { key, channels } });
        } finally {
          model.restore(original);
        }
      }
    }
  } catch (e) {
    releaseStudySetting(prepared);
    throw e;
  }
  return prepared;
}

/** Releases the saved weights of a prepared setting (done by finishStudySetting; needed only when a setting is dropped before). */
export function releaseStudySetting(p: PreparedStudySetting): void {
  for (const id of p.state.snapshots.splice(0)) p.ctx.model.releaseSnapshot(id);
}

/**
 * Evaluates prepared settings of one base: the channel rankings of each split in a single pass over its
 * batches (evaluateVariants: per batch the unchanged prefix once, then every repeat of every block of
 * every setting from its first touched stage), `threshold` settings repeat by repeat. Each setting's
 * timing gets its share of the pass (by its number of repeats).
 * @throws SpurmemError when an evaluation fails (the model is left unedited)
 */
export async function evaluateStudySettings(ctx: StudyContext, prepared: PreparedStudySetting[]): Promise<void> {
  const model = ctx.model;
  const bySplit = new Map<Split, PreparedStudySetting[]>();
  for (const p of prepared) {
    if (p.state.evaluated) continue;
    if (p.direct) {
      await evaluateDirect(p);
      continue;
    }
    const list = bySplit.get(p.setting.split) ?? [];
    list.push(p);
    bySplit.set(p.setting.split, list);
  }
  for (const [split, list] of bySplit) {
    const variants: Variant[] = [];
    const owners: { p: PreparedStudySetting; block: PreparedBlock }[] = [];
    for (const p of list) {
      for (const block of p.state.blocks) {
        for (const r of block.repeats) {
          variants.push({ start: r.start, enter: () => model.restore(r.edited), leave: () => model.restore(r.original) });
          owners.push({ p, block });
        }
      }
    }
    const edits = list.flatMap((p) => p.state.blocks.flatMap((b) => b.repeats.map((r) => r.edit)));
    sharedPrefixes(edits, variants, model.stages());
    const ev = await evaluateVariants(model, ctx.ds, split, variants, evaluateOptions(ctx));
    const n = Math.max(1, variants.length);
    ev.results.forEach((res, v) => {
      const { p, block } = owners[v];
      block.metrics.push(res.metrics);
      block.outcomes.push(outcomesOf(p, res.outputs));
    });
    for (const p of list) {
      const mine = p.state.blocks.reduce((a, b) => a + b.repeats.length, 0);
      p.state.timing.data_seconds += (ev.dataSeconds * mine) / n;
      p.state.timing.compute_seconds += (ev.computeSeconds * mine) / n;
      p.state.timing.evaluations += mine;
      p.state.evaluated = true;
    }
  }
}

/**
 * Marks the variants whose weights equal an earlier variant's on every stage before some stage (see
 * Variant.shares), from their edits: modifyChannels writes the channels in order with one generator
 * seeded by the repeat's seed, so two edits with the same key and the same first channels write those
 * channels alike, and differ only from the earliest stage of a channel after their common start (of
 * either edit; the number of stages when both lists are the same: the same edit). Each variant takes
 * the earlier variant without `shares` that it agrees with longest, when that is past its own start.
 */
function sharedPrefixes(edits: RepeatEdit[], variants: Variant[], stages: number): void {
  const byKey = new Map<string, number[]>();
  edits.forEach((e, v) => {
    const candidates = byKey.get(e.key) ?? [];
    let best = { variant: -1, from: 0 };
    for (const u of candidates) {
      const a = edits[u].channels;
      const b = e.channels;
      let n = 0;
      while (n < a.length && n < b.length && a[n].name === b[n].name && a[n].index === b[n].index) n++;
      const from = Math.min(stages, ...a.slice(n).map((c) => c.stage), ...b.slice(n).map((c) => c.stage));
      if (from > best.from) best = { variant: u, from };
    }
    if (best.variant >= 0 && best.from > variants[v].start) variants[v].shares = best;
    else {
      candidates.push(v);
      byKey.set(e.key, candidates);
    }
  });
}

function outcomesOf(p: PreparedStudySetting, outputs: Float32Array): Outcomes {
  const { ctx, setting: s, state } = p;
  return sampleOutcomes(outputs, state.info.numClasses, ctx.ds.samples[s.split], { labelOrder: ctx.labelOrder, softmaxHead: state.info.head === 'softmax' });
}

/** `threshold`: per repeat, select and modify the weights (native), evaluate the split, restore. */
async function evaluateDirect(p: PreparedStudySetting): Promise<void> {
  const { ctx, setting: s, state } = p;
  const model = ctx.model;
  const thresholdNames = candidateParams(state.info, 'threshold').map((x) => x.name);
  const touched = s.faithfulThreshold ? state.info.parameters.map((x) => x.name) : thresholdNames;
  for (const block of state.blocks) {
    if (block.plan.skipped) continue;
    await model.withSnapshot(touched, async (restore) => {
      for (const seed of block.seeds) {
        block.threshold = await model.modifyThreshold({
          names: thresholdNames,
          fraction: s.fraction,
          smallest: s.smallest,
          dropoutP: s.dropoutP,
          mode: s.mode as Exclude<ModificationMode, 'layer_rewind'>,
          std: s.std,
          seed,
          distribution: s.distribution,
          faithful: s.faithfulThreshold,
          source: state.src?.ck,
          sourcePath: state.srcPath,
        });
        const ev = await evaluateOn(ctx, s.split);
        block.metrics.push(ev.metrics);
        block.outcomes.push(outcomesOf(p, ev.outputs));
        addTiming(state.timing, ev);
        restore();
      }
    });
  }
  state.evaluated = true;
}

/**
 * Summarises an evaluated setting and writes its result folder (result.json last, so its presence marks a
 * finished setting: what a restarted sweep skips); releases its saved weights.
 * @throws SpurmemError when the setting was not evaluated, or a file cannot be written
 */
export async function finishStudySetting(p: PreparedStudySetting): Promise<StudyResult> {
  const { ctx, setting: s, state } = p;
  try {
    if (!state.evaluated) throw new SpurmemError('finishStudySetting: the setting has not been evaluated (evaluateStudySettings)');
    const split = s.split;
    const { base, input, log } = state;
    const splitSamples = ctx.ds.samples[split];
    const before = outcomesOf(p, base.outputs);
    const groupOf = splitSamples.map((x) => x.group);
    const deterministic = isDeterministic(s);
    const blocks: StudyBlock[] = [];
    const perBlockSamples: (BlockSamples | null)[] = [];
    for (const b of state.blocks) {
      const plan = b.plan;
      if (plan.skipped) {
        blocks.push(summarizeBlock(base.metrics, { source_group: plan.source, status: 'skipped', reason: plan.skipped, channels: [], seeds: [], repeats: [] }));
        perBlockSamples.push(null);
        continue;
      }
      if (!input.quiet) {
        b.metrics.forEach((m, r) => log(`${s.ranking}/${s.mode}${plan.source !== null ? ` group ${plan.source}` : ''} repeat ${r + 1}/${s.repeats}: ${accuracyLine(m)}`));
      }
      const paired = blockPaired(before, b.outcomes, groupOf, ctx.ds.groupNames.length, ctx.ds.trainGroupCounts, deterministic);
      blocks.push(
        summarizeBlock(
          base.metrics,
          { source_group: plan.source, status: 'ran', reason: null, channels: plan.channels, ...(b.threshold ? { threshold: b.threshold } : {}), seeds: b.seeds, repeats: b.metrics },
          paired,
        ),
      );
      perBlockSamples.push(blockSamples(b.outcomes, plan.poorest ?? null));
    }

    // ---- outputs
    const fileName = originalFileName(s);
    // a study resized with sharp gets its own default folder: its numbers are not the PIL pipeline's
    const resizeSuffix = ctx.resize === 'sharp' ? '_resize-sharp' : '';
    const folder = resolve(input.out ?? join(ctx.defaultOut, `${split}_${fileName.replace(/\.txt$/, '')}${folderSuffix(s)}${resizeSuffix}`));
    const result: StudyResult = {
      setting: s,
      checkpoint: ctx.checkpointPath,
      rewind_checkpoint: state.src?.path ?? null,
      split,
      resize: ctx.resize,
      unmodified: base.metrics,
      train_group_counts: [...ctx.ds.trainGroupCounts],
      blocks,
      file: join(folder, fileName),
      out: folder,
      seconds: (Date.now() - state.t0) / 1000,
      timing: state.timing,
    };
    await writeStudyResult(result, {
      ds: ctx.ds, split, before, blocks: perBlockSamples, deterministic, activated: s.ranking === 'activated', sourceGroups: state.blocks.map((b) => b.plan.source), perSample: input.perSample,
    });
    return result;
  } finally {
    releaseStudySetting(p);
  }
}

/**
 * Runs one setting on a prepared base and writes its result folder: prepareStudySetting, then
 * evaluateStudySettings (all repeats of all blocks in one pass over the split, each from the first
 * stage it touches), then finishStudySetting. result.json is written last, so its presence marks a
 * finished setting (what a restarted sweep skips).
 * @throws UsageError for options that do not fit (rewind without a source, threshold with layer_rewind).
 */
export async function runStudySetting(
  ctx: StudyContext,
  input: StudySettingInput & { out?: string; rewindCheckpoint?: string; quiet?: boolean; perSample?: boolean },
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<StudyResult> {
  const p = await prepareStudySetting(ctx, input, log);
  try {
    await evaluateStudySettings(ctx, [p]);
  } catch (e) {
    releaseStudySetting(p);
    throw e;
  }
  return finishStudySetting(p);
}

/**
 * Prepares a base and runs one setting (what `spurmem study` does). Progress and warnings go to `log`
 * (a function, or `{ log }` as train() takes it; default: stderr).
 * @throws UsageError for options that do not fit; SpurmemError for unreadable files and data.
 */
export async function study(input: StudyInput, hooks?: ((line: string) => void) | { log?: (line: string) => void }): Promise<StudyResult> {
  const log = typeof hooks === 'function' ? hooks : hooks?.log;
  const baseKeys = Object.keys(studyBaseSchema.shape);
  const baseIn: Record<string, unknown> = {};
  const settingIn: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue;
    if (baseKeys.includes(k) && k !== 'rewindCheckpoint') baseIn[k] = v;
    else settingIn[k] = v;
  }
  const ctx = await prepareStudy(baseIn as StudyBaseInput);
  return runStudySetting(ctx, { ...(settingIn as StudySettingInput), rewindCheckpoint: input.rewindCheckpoint }, log);
}
