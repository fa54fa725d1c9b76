/**
 * Running a study setting (original-behaviour §3.2-§3.4, §5; Q1, Q28): one unmodified evaluation, the
 * blocks of the ranking, then per block R repeats of: modify the selected weights, evaluate, restore the
 * touched tensors in place (no model copies); the result folder last.
 */
import { join, resolve } from 'node:path';
import { stateDictPath } from '../../checkpoint.js';
import type { GroupMetrics } from '../../metrics/groups.js';
import type { ModificationMode, NativeCheckpoint } from '../../native.js';
import { accuracyLine } from '../../report/text.js';
import { SpurmemError, UsageError, flagName, optionsError } from '../../util/errors.js';
import { candidateParams } from '../rank.js';
import { addTiming, evaluateOn, prepareStudy, rewindSource, unmodifiedOf, type StudyContext } from './context.js';
import { planBlocks } from './plan.js';
import { sampleOutcomes } from '../../metrics/paired.js';
import { blockPaired, blockSamples, isDeterministic, type BlockSamples, type Outcomes } from './paired.js';
import { folderSuffix, originalFileName, summarizeBlock, writeStudyResult, type StudyBlock, type StudyResult } from './result.js';
import {
  isRewindMode, resolveStudySetting, settingApplies, settingProblem, studyBaseSchema, studyOutputSchema, type StudyBaseInput, type StudyInput, type StudySettingInput,
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

/**
 * Runs one setting on a prepared base and writes its result folder. result.json is written last, so
 * its presence marks a finished setting (what a restarted sweep skips).
 * @throws UsageError for options that do not fit (rewind without a source, threshold with layer_rewind).
 */
export async function runStudySetting(
  ctx: StudyContext,
  input: StudySettingInput & { out?: string; rewindCheckpoint?: string; quiet?: boolean; perSample?: boolean },
  log: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Promise<StudyResult> {
  const { out: outOpt, rewindCheckpoint, quiet, perSample: perSampleIn, ...rest } = input;
  const output = studyOutputSchema.safeParse({ out: outOpt, perSample: perSampleIn });
  if (!output.success) throw optionsError(output.error.issues);
  const perSample = output.data.perSample;
  // said once per base, before its first setting
  for (const w of ctx.warnings.splice(0)) log(`warning: ${w}`);
  for (const n of ctx.notes.splice(0)) log(`note: ${n}`);
  const s = resolveStudySetting(rest);
  const { repeats, distribution } = s;
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
  // per sample: right before and after, for the paired results, samples.csv and the flipped images
  const splitSamples = ctx.ds.samples[split];
  const outcomesOf = (outputs: Float32Array): Outcomes =>
    sampleOutcomes(outputs, info.numClasses, splitSamples, { labelOrder: ctx.labelOrder, softmaxHead: info.head === 'softmax' });
  const before = outcomesOf(base.outputs);
  const groupOf = splitSamples.map((x) => x.group);
  const deterministic = isDeterministic(s);
  const perBlockSamples: (BlockSamples | null)[] = [];

  // ---- repeats: modify, evaluate, restore in place
  const thresholdNames = candidateParams(info, 'threshold').map((p) => p.name);
  const blocks: StudyBlock[] = [];
  for (let bi = 0; bi < plans.length; bi++) {
    const plan = plans[bi];
    if (plan.skipped) {
      blocks.push(summarizeBlock(base.metrics, { source_group: plan.source, status: 'skipped', reason: plan.skipped, channels: [], seeds: [], repeats: [] }));
      perBlockSamples.push(null);
      continue;
    }
    const touched =
      s.ranking === 'threshold'
        ? s.faithfulThreshold
          ? info.parameters.map((p) => p.name)
          : thresholdNames
        : [...new Set(plan.channels.map((c) => c.name))];
    const repeatsOut: GroupMetrics[] = [];
    const repeatOutcomes: Outcomes[] = [];
    const seeds: number[] = [];
    let thresholdInfo: StudyBlock['threshold'];
    await model.withSnapshot(touched, async (restore) => {
      for (let r = 0; r < repeats; r++) {
        const seed = repeatSeed(s.seed, bi, r);
        seeds.push(seed);
        if (s.ranking === 'threshold') {
          const t = await model.modifyThreshold({
            names: thresholdNames,
            fraction: s.fraction,
            smallest: s.smallest,
            dropoutP: s.dropoutP,
            mode: s.mode as Exclude<ModificationMode, 'layer_rewind'>,
            std: s.std,
            seed,
            distribution,
            faithful: s.faithfulThreshold,
            source: src?.ck,
            sourcePath: srcPath,
          });
          thresholdInfo = t;
        } else {
          await model.modifyChannels({
            edits: plan.channels.map((c) => ({ name: c.name, index: c.index })),
            mode: s.mode,
            std: s.std,
            seed,
            source: src?.ck,
            sourcePath: srcPath,
          });
        }
        const ev = await evaluateOn(ctx, split);
        repeatsOut.push(ev.metrics);
        repeatOutcomes.push(outcomesOf(ev.outputs));
        addTiming(timing, ev);
        restore();
        if (!quiet) log(`${s.ranking}/${s.mode}${plan.source !== null ? ` group ${plan.source}` : ''} repeat ${r + 1}/${repeats}: ${accuracyLine(ev.metrics)}`);
      }
    });
    const paired = blockPaired(before, repeatOutcomes, groupOf, ctx.ds.groupNames.length, ctx.ds.trainGroupCounts, deterministic);
    blocks.push(summarizeBlock(base.metrics, { source_group: plan.source, status: 'ran', reason: null, channels: plan.channels, ...(thresholdInfo ? { threshold: thresholdInfo } : {}), seeds, repeats: repeatsOut }, paired));
    perBlockSamples.push(blockSamples(repeatOutcomes, plan.poorest ?? null));
  }

  // ---- outputs
  const fileName = originalFileName(s);
  // a study resized with sharp gets its own default folder: its numbers are not the PIL pipeline's
  const resizeSuffix = ctx.resize === 'sharp' ? '_resize-sharp' : '';
  const folder = resolve(outOpt ?? join(ctx.defaultOut, `${split}_${fileName.replace(/\.txt$/, '')}${folderSuffix(s)}${resizeSuffix}`));
  const result: StudyResult = {
    setting: s,
    checkpoint: ctx.checkpointPath,
    rewind_checkpoint: src?.path ?? null,
    split,
    resize: ctx.resize,
    unmodified: base.metrics,
    train_group_counts: [...ctx.ds.trainGroupCounts],
    blocks,
    file: join(folder, fileName),
    out: folder,
    seconds: (Date.now() - t0) / 1000,
    timing,
  };
  await writeStudyResult(result, {
    ds: ctx.ds, split, before, blocks: perBlockSamples, deterministic, activated: s.ranking === 'activated', sourceGroups: plans.map((p) => p.source), perSample,
  });
  return result;
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
