/**
 * Sweeps: grids of study settings on one base, or of training runs (train, finetune-prune), run in one
 * process, on worker processes or as a Slurm job array, with one result folder per setting and merged
 * tables and plots (training runs: paper tables over seeds).
 */
export {
  sweepConfigSchema,
  sweepBaseSchema,
  gridSchema,
  SETTING_KEYS,
  parseSweepConfig,
  loadSweepConfigFile,
  loadSweepConfigObject,
  expandSweep,
  normalizeSetting,
  settingKey,
  settingLabel,
  type SweepConfig,
  type SweepConfigInput,
  type Grid,
  type Setting,
  type SettingKey,
  type PlannedSetting,
  type LoadedSweepConfig,
} from './config.js';
export {
  collectSweep,
  sweepCsv,
  sweepTable,
  minorityGroups,
  pooledAccuracy,
  settingStatus,
  type SweepSummary,
  type SweepRow,
  type SweepPlan,
  type SettingStatus,
  type SlurmSubmission,
} from './report.js';
export { sweep, runSweepIndex, planSweep, type SweepOptions } from './run.js';
export { runPlannedSetting, runPlannedSettings, type SettingOutcome } from './run-setting.js';
export { arraySpec, sbatchScript, splitSbatchArgs } from './slurm.js';
export {
  TRAINING_COMMANDS,
  trainingConfigSchema,
  expandTrainingSweep,
  trainingSettingKey,
  trainingSettingLabel,
  type TrainingSweepConfig,
  type TrainingSweepConfigInput,
  type TrainingPlannedSetting,
  type TrainingSweepCommand,
} from './training-config.js';
export {
  collectTrainingSweep,
  isTrainingSweep,
  paperTable,
  runStatus,
  sampleStd,
  selectEpoch,
  tableCsv,
  tableMarkdown,
  tableTex,
  trainingSweepCsv,
  trainingSweepText,
  type RunStatus,
  type TableRow,
  type TrainingSweepPlan,
  type TrainingSweepRow,
  type TrainingSweepSummary,
} from './training-report.js';
export { planTrainingSweep, readTrainingConfigFile, runTrainingSetting, type TrainingOutcome } from './training-run.js';
