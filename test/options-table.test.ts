import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import type { z } from 'zod';
import { dataCommand } from '../src/cli/data.js';
import { demoCommand } from '../src/cli/demo.js';
import { evalCommand } from '../src/cli/eval.js';
import { demoSchema } from '../src/demo/run.js';
import { finetunePruneCommand } from '../src/cli/finetune-prune.js';
import { studyCommand } from '../src/cli/study.js';
import { sweepCommand } from '../src/cli/sweep.js';
import { trainCommand } from '../src/cli/train.js';
import { jttCommand, STAGE_FLAGS, STAGE_RUN_FLAGS } from '../src/cli/jtt.js';
import { dfrCommand, DFR_FINETUNE_FLAGS } from '../src/cli/dfr.js';
import { jttSchema } from '../src/train/jtt.js';
import { dfrSchema } from '../src/train/dfr.js';
import { evaluateSchema } from '../src/eval/evaluate.js';
import { folderSuffix, resolveStudySetting, studyBaseSchema, studyOutputSchema, studySettingSchema } from '../src/neurons/study.js';
import { schemaFields, scopeKeys, settingApplies } from '../src/options/derive.js';
import { SETTING_KEYS, SWEEP_BASE_VALUES } from '../src/options/sweep-keys.js';
import { OPTIONS, type OptionKey, type OptionSpec, type Scope } from '../src/options/table.js';
import { expandSweep, gridSchema, normalizeSetting, parseSweepConfig, settingKey, sweepBaseSchema } from '../src/sweep/config.js';
import { finetuneSchema } from '../src/train/finetune-prune.js';
import { trainSchema } from '../src/train/options.js';
import { toSnake } from '../src/util/case.js';

const makeDemoCommand = (): Command => dataCommand().commands.find((c) => c.name() === 'make-demo')!;
const sweepTableCommand = (): Command => sweepCommand().commands.find((c) => c.name() === 'table')!;
const COMMANDS: Record<Scope, () => Command> = {
  train: trainCommand, finetune: finetunePruneCommand, eval: evalCommand, study: studyCommand, demo: demoCommand, makeDemo: makeDemoCommand, sweep: sweepCommand, sweepTable: sweepTableCommand,
  jtt: jttCommand, dfr: dfrCommand,
};
/** Options a command takes as another command declares them (jtt: train's, for both stages; dfr: finetune-prune's base). */
const BORROWED: Partial<Record<Scope, { scope: Scope; keys: readonly OptionKey[] }>> = {
  jtt: { scope: 'train', keys: [...STAGE_FLAGS, ...STAGE_RUN_FLAGS] },
  dfr: { scope: 'finetune', keys: DFR_FINETUNE_FLAGS },
};
/** The API schema of each command; make-demo and sweep have none (their flags are checked against the table's values). */
const SCHEMAS: Record<Scope, Record<string, z.ZodType>> = {
  train: trainSchema.shape,
  finetune: finetuneSchema.shape,
  eval: evaluateSchema.shape,
  // study() takes the result folder `out` and `perSample` beside its base and setting
  study: { ...studyBaseSchema.shape, ...studySettingSchema.shape, ...studyOutputSchema.shape },
  demo: demoSchema.shape,
  makeDemo: schemaFields('makeDemo', scopeKeys('makeDemo')),
  sweep: schemaFields('sweep', scopeKeys('sweep')),
  jtt: { ...trainSchema.shape, ...jttSchema.shape },
  dfr: dfrSchema.shape,
  // the configuration's group_by, select and epoch_select
  sweepTable: schemaFields('sweepTable', scopeKeys('sweepTable')),
};
/** Flags a command has that are not options of its API (how the command prints; sweep --list: what it would run). */
const CLI_ONLY: Record<Scope, string[]> = {
  train: ['json'], finetune: ['json'], eval: ['json', 'quiet'], study: ['json', 'quiet'], demo: [], makeDemo: ['json'], sweep: ['list', 'json'], sweepTable: ['json'], jtt: ['json'], dfr: ['json'],
};
/** A good and a bad value of the options that have their own command-line parser. */
const PARSED: Record<string, { good: string; bad: { cli: string; api: unknown } }> = {
  size: { good: '500x375', bad: { cli: '12x', api: [8, 8] } },
  classes0: { good: '0,2', bad: { cli: '0,10', api: [] } },
  classes1: { good: '5', bad: { cli: '1,,2', api: [10] } },
  devices: { good: 'cuda:0,cuda:1', bad: { cli: 'cuda:0,gpu', api: ['gpu'] } },
  groupBy: { good: 'dataset,arch', bad: { cli: 'dataset,,arch', api: [''] } },
};

/** A command whose parse errors throw instead of exiting, and print nothing. */
function quietCommand(scope: Scope): Command {
  const cmd = COMMANDS[scope]();
  return cmd.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined, outputError: () => undefined });
}

/** The value the command line gives option `key` for the argument `arg` (a switch: given), or the error it throws. */
function cliValue(scope: Scope, key: OptionKey, arg?: string): { value?: unknown; error?: unknown } {
  const spec = OPTIONS[key] as OptionSpec;
  const cmd = quietCommand(scope);
  const flag = cmd.options.find((o) => o.attributeName() === key)!;
  try {
    cmd.parseOptions(spec.arg ? [flag.long!, arg!] : [flag.long!]);
  } catch (e) {
    return { error: e };
  }
  return { value: cmd.opts()[key] };
}

/** A good and a bad value of each option, on the command line and in the API. */
function samples(key: OptionKey, scope: Scope): { good: string | undefined; bad: { cli?: string; api: unknown } } {
  const spec = OPTIONS[key] as OptionSpec;
  const choices = spec.uses[scope]?.choices ?? spec.choices;
  if (!spec.arg) return { good: undefined, bad: { api: 'yes' } };
  if (spec.parse) return PARSED[key];
  if (spec.cli === 'list') return { good: choices![0], bad: { cli: 'nope', api: ['nope'] } };
  if (choices) return { good: choices[0], bad: { cli: 'nope', api: 'nope' } };
  if (spec.cli === 'positive') return { good: '16', bad: { cli: '0', api: 0 } };
  if (spec.cli === 'nonNegative') return { good: '0', bad: { cli: '-1', api: -1 } };
  if (spec.cli === 'number') return { good: '0.5', bad: spec.value.safeParse(-1).success ? { cli: 'x', api: 'x' } : { cli: '-1', api: -1 } };
  if (!spec.value.safeParse('gpu').success) return { good: 'cuda:1', bad: { cli: 'gpu', api: 'gpu' } };
  return { good: 'a', bad: spec.value.safeParse('').success ? { api: 5 } : { cli: '', api: '' } };
}

const cases = (Object.keys(OPTIONS) as OptionKey[]).flatMap((key) => (Object.keys((OPTIONS[key] as OptionSpec).uses) as Scope[]).map((scope) => [key, scope] as const));

describe('the option table: each option reachable from the command line, the Node API and a sweep file, with the same validation and default', () => {
  it.each(cases)('%s (%s)', (key, scope) => {
    const spec = OPTIONS[key] as OptionSpec;
    const use = spec.uses[scope]!;
    const field = SCHEMAS[scope][key];
    expect(field, `the ${scope} API takes ${key}`).toBeDefined();
    const { good, bad } = samples(key, scope);
    // a good value: the command line gives what the API accepts
    const g = cliValue(scope, key, good);
    expect(g.error, `${scope} --${key} ${good}`).toBeUndefined();
    expect(field.safeParse(g.value).success, `the ${scope} API takes ${JSON.stringify(g.value)} for ${key}`).toBe(true);
    // a bad value: refused by the command line (its parser, or the API it hands the value to) and by the API
    if (bad.cli !== undefined) {
      const b = cliValue(scope, key, bad.cli);
      expect(b.error !== undefined || !field.safeParse(b.value).success, `${scope} refuses --${key} '${bad.cli}'`).toBe(true);
    }
    expect(field.safeParse(bad.api).success, `the ${scope} API refuses ${JSON.stringify(bad.api)} for ${key}`).toBe(false);
    // the same default: the API's, and the flag's unless the command applies it later
    const apiDefault = field.safeParse(undefined);
    expect(apiDefault.success || use.required, `${key} has a default or is required in ${scope}`).toBeTruthy();
    if (apiDefault.success) expect(apiDefault.data).toEqual(use.apiDefault === false ? undefined : use.default);
    // (a switch is left undefined when not given: the API's default applies; --no-<flag> switches default to on)
    const cliDefault = quietCommand(scope).getOptionValue(key);
    expect(cliDefault).toEqual(use.cliDefault === false || (!spec.arg && !spec.negate) ? undefined : use.default);
    // a sweep file: the study's options under their snake_case keys, with the same validation
    if (spec.sweep && scope === 'study') {
      const sweepField = (spec.sweep === 'base' ? sweepBaseSchema.shape : gridSchema.shape)[toSnake(key) as never] as z.ZodType;
      expect(sweepField, `a sweep's ${spec.sweep} takes ${toSnake(key)}`).toBeDefined();
      if (g.value !== undefined) expect(sweepField.safeParse(g.value).success).toBe(true);
      expect(sweepField.safeParse(bad.api).success, `a sweep refuses ${toSnake(key)}: ${JSON.stringify(bad.api)}`).toBe(false);
    }
  });

  it.each(Object.keys(COMMANDS) as Scope[])('every option of %s is in the table, and every flag is an option of its API', (scope) => {
    const keys = [...scopeKeys(scope), ...(BORROWED[scope]?.keys ?? [])];
    // jtt's API takes train()'s options (the ones the two stages share, and the training algorithm's, which it refuses)
    const apiOnly = scope === 'jtt' ? scopeKeys('train') : [];
    expect(Object.keys(SCHEMAS[scope]).filter((k) => !keys.includes(k as OptionKey) && !apiOnly.includes(k as OptionKey))).toEqual([]);
    const flags = COMMANDS[scope]().options.map((o) => o.attributeName());
    expect(keys.filter((k) => !flags.includes(k))).toEqual([]);
    expect(flags.filter((f) => !keys.includes(f as OptionKey) && !CLI_ONLY[scope].includes(f))).toEqual([]);
  });

  it('sweep --help names every base key and grid key of a sweep file', () => {
    let text = '';
    sweepCommand().configureOutput({ writeOut: (x) => void (text += x), writeErr: (x) => void (text += x) }).outputHelp();
    for (const k of [...Object.keys(SWEEP_BASE_VALUES), ...SETTING_KEYS]) expect(text, k).toMatch(new RegExp(`\\b${k}\\b`));
  });

  it('every base key and grid key of a sweep is a study option', () => {
    const study = scopeKeys('study').map(toSnake);
    expect(Object.keys(sweepBaseSchema.shape).filter((k) => !study.includes(k))).toEqual([]);
    expect(Object.keys(gridSchema.shape).filter((k) => !study.includes(k))).toEqual([]);
  });
});

describe('drift between the command line, the API and sweeps, fixed', () => {
  it('--rewind-epochs is a positive integer everywhere: 0 is refused by the command line, the API and a sweep file', () => {
    expect(cliValue('study', 'rewindEpochs', '0').error).toBeDefined();
    expect(() => resolveStudySetting({ mode: 'rewind', rewindEpochs: 0 })).toThrow(/option --rewind-epochs \(rewindEpochs\): Too small/);
    expect(() => parseSweepConfig({ base: { run: 'r' }, grid: { mode: 'rewind', rewind_epochs: 0 } })).toThrow(/grid\.rewind_epochs: expected a positive integer or a list of them, got 0/);
    // not given: no rewind by epochs (the study refuses a rewind mode without a source)
    expect(resolveStudySetting({ mode: 'zero' }).rewindEpochs).toBe(0);
  });

  it('one rule for the default distribution: the study, its folder names and the sweep setting names agree', () => {
    for (const [s, dflt] of [
      [{ ranking: 'threshold', faithfulThreshold: true, mode: 'random_noise', std: 0.1 }, 'uniform'],
      [{ ranking: 'threshold', mode: 'random_noise', std: 0.1 }, 'normal'],
      [{ ranking: 'largest', mode: 'random_init', std: 0.1 }, 'normal'],
    ] as const) {
      expect(resolveStudySetting(s).distribution).toBe(dflt);
      const other = dflt === 'uniform' ? 'normal' : 'uniform';
      const suffix = folderSuffix(resolveStudySetting(s));
      expect(suffix).not.toMatch(/normal|uniform/);
      expect(folderSuffix(resolveStudySetting({ ...s, distribution: dflt }))).toBe(suffix);
      expect(folderSuffix(resolveStudySetting({ ...s, distribution: other }))).toBe(`${suffix}_${other}`);
      const snake = Object.fromEntries(Object.entries(s).map(([k, v]) => [toSnake(k), v]));
      expect(settingKey(normalizeSetting(snake))).not.toMatch(/normal|uniform/);
      expect(settingKey(normalizeSetting({ ...snake, distribution: dflt }))).not.toMatch(/normal|uniform/);
      expect(settingKey(normalizeSetting({ ...snake, distribution: other }))).toMatch(new RegExp(`-${other}-`));
    }
  });

  it('finetune-prune takes --weight-decay, --scheduler and --poorest-limit, and study --cache-mb, as their APIs do', () => {
    expect(cliValue('finetune', 'weightDecay', '0.01').value).toBe(0.01);
    expect(cliValue('finetune', 'scheduler', 'cosine').value).toBe('cosine');
    expect(cliValue('finetune', 'poorestLimit', '50').value).toBe(50);
    expect(cliValue('study', 'cacheMb', '0').value).toBe(0);
  });

  it('--resolution is at least 16 and --device cpu, cuda or cuda:N in every command and API', () => {
    for (const scope of ['train', 'finetune', 'eval', 'study'] as const) {
      expect(SCHEMAS[scope].resolution.safeParse(8).success).toBe(false);
      expect(SCHEMAS[scope].device.safeParse('gpu').success).toBe(false);
      expect(String(cliValue(scope, 'device', 'gpu').error)).toMatch(/--device expects cpu, cuda or cuda:N, got 'gpu'/);
    }
    expect(() => parseSweepConfig({ base: { run: 'r', device: 'gpu' } })).toThrow(/base\.device/);
    const sweep = sweepCommand().exitOverride().configureOutput({ writeErr: () => undefined, outputError: () => undefined });
    expect(() => sweep.parseOptions(['--device', 'gpu'])).toThrow(/--device expects cpu, cuda or cuda:N, got 'gpu'/);
    expect(() => sweep.parseOptions(['--devices', 'cuda:0,gpu'])).toThrow(/--devices expects a comma-separated list/);
  });

  it('a setting keeps the keys that apply to it, as the table says', () => {
    const [p] = expandSweep(parseSweepConfig({ base: { run: '/nonexistent' }, grid: { ranking: 'threshold', mode: 'random_noise', std: 0.1, top_k: 3, poorest_limit: 5 } }));
    expect(Object.keys(p.setting).every((k) => settingApplies(k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), { ranking: 'threshold', mode: 'random_noise' }))).toBe(true);
    expect(p.setting.top_k).toBeUndefined();
    expect(p.setting.poorest_limit).toBeUndefined();
  });
});
