/**
 * The snake_case keys of a sweep file, derived from the option table: the base's keys (the study's base
 * options) and the grid's keys (the study's settings), each with the option's own validation, and the
 * text that says what one value must be.
 */
import { z } from 'zod';
import { toSnake } from '../util/case.js';
import { scopeKeys, valueOf } from './derive.js';
import { OPTIONS, STUDY_BASE_KEYS, STUDY_SETTING_KEYS, type OptionKey, type OptionSpec, type Scope } from './table.js';

/** camelCase -> snake_case at the type level (`topK` -> `top_k`). */
export type Snake<S extends string> = S extends `${infer H}${infer T}`
  ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${Snake<T>}`
  : S;

/** The study's value schema of each option `keys`, under its snake_case key. */
export type SnakeValues<K extends OptionKey> = { [k in K as Snake<k>]: (typeof OPTIONS)[k]['value'] };

/** The value schemas of options `keys` in command `scope` (default: the study's), under their snake_case keys (in that order). */
export function snakeValues<const K extends OptionKey>(keys: readonly K[], scope: Scope = 'study'): SnakeValues<K> {
  const out: Record<string, z.ZodType> = {};
  for (const k of keys) out[toSnake(k)] = valueOf(k, scope);
  return out as SnakeValues<K>;
}

/** The value schema of each key of a sweep's base. */
export const SWEEP_BASE_VALUES = snakeValues(STUDY_BASE_KEYS);
/** The value schema of each grid key (one value; the grid takes a value or a non-empty list of values). */
export const SETTING_VALUES = snakeValues(STUDY_SETTING_KEYS);
/** A grid key. */
export type SettingKey = keyof typeof SETTING_VALUES;
/** Grid keys in their canonical order (the order of setting names and CSV columns). */
export const SETTING_KEYS = Object.keys(SETTING_VALUES) as SettingKey[];

/** What one value of an option must be, in words (`a positive integer`, `one of zero, ...`). */
export function valueText(key: OptionKey): string {
  const spec = OPTIONS[key] as OptionSpec;
  if (spec.text) return spec.text;
  if (spec.choices) return `one of ${spec.choices.join(', ')}`;
  if (!spec.arg) return 'true or false';
  if (spec.cli === 'positive') return 'a positive integer';
  if (spec.cli === 'nonNegative') return 'an integer >= 0';
  if (spec.cli === 'number') return 'a number';
  return 'a string';
}

/** What one value of each grid key must be (for the messages about a sweep file). */
export const VALUE_TEXT = Object.fromEntries(STUDY_SETTING_KEYS.map((k) => [toSnake(k), valueText(k)])) as Record<SettingKey, string>;

/** The training commands a sweep file may name (`command:`), and the option-table command of each. */
export const TRAINING_SWEEP_SCOPES = { train: 'train', 'finetune-prune': 'finetune' } as const satisfies Record<string, Scope>;
/** A training command of a sweep file. */
export type TrainingSweepCommand = keyof typeof TRAINING_SWEEP_SCOPES;

/** The run-folder options a training sweep sets itself (one folder per setting, resumed, quiet). */
export const TRAINING_SWEEP_OWN = ['out', 'resume', 'force', 'quiet'] as const satisfies readonly OptionKey[];

/**
 * The option keys (camelCase) a training sweep's base and grid take: every option of the command in the
 * option table, in the table's order, except the run-folder options the sweep sets itself. An option
 * added to the command's table entry is a sweep key with no other change.
 */
export function trainingSweepKeys(command: TrainingSweepCommand): OptionKey[] {
  return scopeKeys(TRAINING_SWEEP_SCOPES[command]).filter((k) => !(TRAINING_SWEEP_OWN as readonly string[]).includes(k));
}

/** The value schema of each key (snake_case) of a training sweep's base and grid, with the command's own validation. */
export function trainingSweepValues(command: TrainingSweepCommand): Record<string, z.ZodType> {
  return snakeValues(trainingSweepKeys(command), TRAINING_SWEEP_SCOPES[command]) as Record<string, z.ZodType>;
}

/** What one value of each key (snake_case) of a training sweep must be. */
export function trainingValueTexts(command: TrainingSweepCommand): Record<string, string> {
  return Object.fromEntries(trainingSweepKeys(command).map((k) => [toSnake(k), valueText(k)]));
}
