/**
 * The spurmem Node API: `import { evaluate, train, jtt, dfr, study, finetunePrune, sweep, readCheckpoint } from 'spurmem'`.
 *
 * Every function takes one options object, validated by the same zod schema as the matching CLI command
 * (exported too, as `*Schema`), and resolves to the object that command prints with `--json`. Accuracies
 * are fractions in [0, 1]; times are seconds. Errors are `SpurmemError` (bad data or files: the message
 * names the file, line, key) or its subclass `UsageError` (bad options: the message names the option).
 *
 * ```js
 * import { train, sweep } from 'spurmem';
 * const run = await train({ dataset: 'waterbirds', root: 'data/waterbird_complete95_forest2water2', epochs: 40, device: 'cuda' });
 * const s = await sweep({ base: { run: run.out }, grid: { mode: ['zero'], top_k: [1, 2, 3] }, out: 'sweeps/zero' });
 * console.log(s.rows.filter((r) => r.group === 'worst_group'));
 * ```
 */

// ---- commands
export { evaluate, evaluateDetailed, evaluateSchema, evaluationResult, detectHead, type EvaluateInput, type EvaluationResult, type EvaluationDetails, type EvaluateHooks } from './eval/evaluate.js';
export { train, type TrainSummary } from './train/erm.js';
export { jtt, jttSchema, errorSet, type JttInput, type JttSummary, type ErrorSet } from './train/jtt.js';
export { dfr, dfrSchema, dfrFit, embeddings, DFR_C_GRID, type DfrInput, type DfrSummary, type Embeddings } from './train/dfr.js';
export { fitL1LogReg, predictLogReg, type LogReg } from './train/logreg.js';
export { GroupDro, groupDroStep, type GroupDroSaved, type GroupDroUpdate } from './train/groupdro.js';
export { subsampleGroups, upsampleErrorSet } from './train/sampling.js';
export { trainSchema, resolveTrainOptions, type TrainInput, type TrainConfig } from './train/options.js';
export type { RunHooks } from './train/run-start.js';
export { RunInterrupted } from './train/loop.js';
export {
  study,
  prepareStudy,
  runStudySetting,
  resolveStudySetting,
  originalFileName,
  originalText,
  studyBaseSchema,
  studySettingSchema,
  MODES,
  RANKINGS,
  type StudyInput,
  type StudyBaseInput,
  type StudySettingInput,
  type StudySetting,
  type ResolvedStudySetting,
  type StudyResult,
  type StudyBlock,
  type StudyContext,
  type Stat,
} from './neurons/study.js';
export { finetunePrune, finetuneSchema, PRUNE_CRITERIA, type FinetuneInput, type FinetuneConfig, type FinetuneSummary, type PruneCriterion } from './train/finetune-prune.js';
export {
  sweep,
  runSweepIndex,
  collectSweep,
  planSweep,
  sweepConfigSchema,
  sweepBaseSchema,
  gridSchema,
  parseSweepConfig,
  loadSweepConfigFile,
  expandSweep,
  sweepTable,
  sweepCsv,
  minorityGroups,
  settingKey,
  settingLabel,
  type SweepOptions,
  type SweepSummary,
  type SweepRow,
  type SweepPlan,
  type SweepConfig,
  type SweepConfigInput,
  type Setting,
  type SettingKey,
  type PlannedSetting,
  type SlurmSubmission,
  collectTrainingSweep,
  planTrainingSweep,
  trainingConfigSchema,
  expandTrainingSweep,
  selectEpoch,
  paperTable,
  sampleStd,
  type TrainingSweepConfigInput,
  type TrainingSweepConfig,
  type TrainingPlannedSetting,
  type TrainingSweepSummary,
  type TrainingSweepRow,
  type TrainingSweepPlan,
  type TableRow,
  type RunStatus,
} from './sweep/index.js';

// ---- checkpoints and models
export { readCheckpoint, inspectCheckpoint, stateDictPath, stateDictInfo, type StateDictInfo, type Inspection, type NativeCheckpoint, type CheckpointEntry } from './checkpoint.js';
export { Model, createModel, loadWeights, chooseArch, archFromName, ARCHS, RESNETS, VITS, type Arch, type ArchChoice, type ModelOptions } from './model/index.js';
export type { ModelInfo, ParamInfo, LoadReport, ModificationMode } from './native.js';

// ---- data and metrics
export {
  openDataset,
  countsTable,
  groupCounts,
  makeDemoDataset,
  demoCounts,
  checkDataset,
  ImageCache,
  loadBatches,
  evalTransform,
  trainTransform,
  decodeImage,
  pilTransformImages,
  RESIZE_METHODS,
  type ResizeMethod,
  type DecodedImage,
  type TransformPlan,
  PUBLISHED_COUNTS,
  WATERBIRDS_GROUP_NAMES,
  CELEBA_GROUP_NAMES,
  FASHION_MNIST_DIR,
  SPLITS,
  DATASET_KINDS,
  type Dataset,
  type DatasetKind,
  type Sample,
  type Split,
  type OpenDatasetOptions,
  type DemoOptions,
  type DemoResult,
  type CheckReport,
  type ImageBatch,
  type LoadBatchesOptions,
} from './data/index.js';
export { evaluateSplit, type EvaluateOptions } from './eval/evaluate-split.js';
export { groupMetrics, withIntervals, predictions, targetIndex, LABEL_ORDERS, type GroupMetrics, type GroupResult, type LabelOrder } from './metrics/groups.js';
export { countFlips, mcnemarExact, tInterval, holm, type Flips } from './metrics/paired.js';
export { wilsonInterval, clopperPearsonInterval, proportionInterval, bootstrapIntervals, ciKey, CI_METHODS, AGGREGATES, type Interval, type CiMethod, type Aggregate, type IntervalOptions } from './metrics/intervals.js';
export { blockPaired, studySamplesCsv, type BlockPaired, type PairedFields } from './neurons/study.js';
export { candidateParams, topChannels, type Channel, type Ranking } from './neurons/rank.js';

// ---- errors
export { SpurmemError, UsageError } from './util/errors.js';
