/**
 * The critical-neuron study of the paper's Part I (`spurmem study`): the original
 * Study{ChannelwiseLargest,ChannelwiseMostActivated,LargestNeuronByThreshold}Experiments.py scripts
 * (original-behaviour §3.2-§3.4, §4, §5), runnable, on one split for both the unmodified and the
 * modified model (Q1, Q28), with the averaging the original left to the user done.
 *
 * A study = one unmodified evaluation, a ranking (which channels / weights), then for each block (one,
 * or one per source group for `activated`) R repeats of: modify the selected weights, evaluate, restore
 * the touched tensors in place (no model copies). The channel rankings draw each repeat's edit once and
 * evaluate all repeats in one pass over the split, the unchanged prefix of the network once per batch
 * (eval/evaluate-variants.ts). The parts: study/settings.ts (options, defaults, refused settings),
 * study/context.ts (a loaded base), study/plan.ts (ranking -> blocks), study/run.ts (prepare, evaluate,
 * finish), study/result.ts (result types, statistics, files), study/paired.ts
 * (flips, paired tests, samples.csv and the contact sheet of the flipped images).
 */
export {
  ACTIVATED_LOSSES, MODES, RANKINGS, isRandomMode, isRewindMode, resolveStudySetting, settingApplies, settingProblem, studyBaseSchema, studyOutputSchema, studySettingSchema,
  type ResolvedStudySetting, type StudyBaseInput, type StudyInput, type StudySetting, type StudySettingInput,
} from './study/settings.js';
export { prepareStudy, type StudyContext } from './study/context.js';
export { planBlocks, type BlockPlan } from './study/plan.js';
export {
  evaluateStudySettings, finishStudySetting, prepareStudySetting, releaseStudySetting, repeatSeed, runStudySetting, study, type PreparedStudySetting,
} from './study/run.js';
export { folderSuffix, originalFileName, originalText, resultCsv, writeStudyResult, type Stat, type StudyBlock, type StudyResult } from './study/result.js';
export {
  CONTACT_SHEET_MAX, blockPaired, isDeterministic, studySamplesCsv, type BlockPaired, type Flips, type PairedFields, type PooledRow,
} from './study/paired.js';
