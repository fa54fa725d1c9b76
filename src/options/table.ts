/**
 * The option table: every option of every command declared once, with its camelCase key (the Node API's
 * name; the flag is its kebab-case, the sweep key its snake_case), the validation of one value (zod),
 * the command-line argument and parser, and per command its help text and default. The commander
 * options, the API schemas, the sweep keys, when a study setting applies and the sweep's value texts are
 * derived from it (src/options/derive.ts, src/options/sweep-keys.ts, src/options/setting-names.ts).
 * The commands: train, finetune-prune, eval (and data check), study, demo, data make-demo and sweep. The
 * options are declared by group in src/options/table/: base.ts (what a command works on, the dataset,
 * the model, where it runs), study.ts (a study's settings), train.ts (training, finetune-prune, the run
 * folder), commands.ts (what only demo, data make-demo and sweep take); the shape of an entry is
 * src/options/spec.ts.
 */
import { BASE_OPTIONS } from './table/base.js';
import { COMMAND_OPTIONS } from './table/commands.js';
import { SETTING_OPTIONS } from './table/study.js';
import { TRAINING_OPTIONS } from './table/train.js';

export { DEVICE_PATTERN, type CliKind, type OptionSpec, type Scope, type SettingShape, type Use } from './spec.js';

/** Every option, keyed by its camelCase name (declared by command group in src/options/table/). */
export const OPTIONS = { ...BASE_OPTIONS, ...SETTING_OPTIONS, ...TRAINING_OPTIONS, ...COMMAND_OPTIONS } as const;

/** A key of the option table. */
export type OptionKey = keyof typeof OPTIONS;

/** The study's base options (a sweep file's `base` keys, in their order). */
export const STUDY_BASE_KEYS = [
  'run', 'checkpoint', 'rewindCheckpoint', 'epoch', 'dataset', 'root', 'target', 'attribute', 'arch', 'head', 'labelOrder', 'resolution', 'resize',
  'vitLnEps', 'batchSize', 'device', 'threads', 'decodeThreads', 'skipBadImages', 'cacheMb', 'ci', 'ciLevel', 'bootstrap',
] as const satisfies readonly OptionKey[];

/** The options of one study setting, in canonical order (the order of setting names and sweep CSV columns). */
export const STUDY_SETTING_KEYS = [
  'split', 'ranking', 'mode', 'topK', 'fraction', 'smallest', 'dropoutP', 'faithfulThreshold', 'std', 'distribution', 'rewindEpochs', 'repeats',
  'poorestLimit', 'activatedLoss', 'seed',
] as const satisfies readonly OptionKey[];

/** The interval options: per-group method, level, bootstrap draws (eval, study, train, finetune-prune). */
export const INTERVAL_KEYS = ['ci', 'ciLevel', 'bootstrap'] as const satisfies readonly OptionKey[];

/** The run-folder options of `train` and `finetune-prune`. */
export const RUN_FOLDER_KEYS = ['out', 'resume', 'force', 'skipBadImages', 'cacheMb', 'keepCheckpoints', 'quiet'] as const satisfies readonly OptionKey[];

/** The options of `spurmem demo`, in the order of its --help. */
export const DEMO_KEYS = ['out', 'quick', 'arch', 'device', 'threads', 'seed'] as const satisfies readonly OptionKey[];

/** The options of `spurmem data make-demo`, in the order of its --help. */
export const MAKE_DEMO_KEYS = [
  'out', 'scale', 'size', 'seed', 'fashionMnist', 'classes0', 'classes1', 'itemSize', 'itemOpacity', 'force',
] as const satisfies readonly OptionKey[];

/** The options of `spurmem sweep` (its own; the sweep file holds the study's), in the order of its --help. */
export const SWEEP_KEYS = [
  'out', 'workers', 'devices', 'slurm', 'sbatchArgs', 'index', 'device', 'threads', 'force',
] as const satisfies readonly OptionKey[];

/** The options of `spurmem sweep table` (a training sweep's tables, redrawn), in the order of its --help. */
export const SWEEP_TABLE_KEYS = ['groupBy', 'select', 'epochSelect'] as const satisfies readonly OptionKey[];
