/**
 * The snake_case keys of a sweep file, derived from the option table: the base's keys (the study's base
 * options) and the grid's keys (the study's settings), each with the option's own validation, and the
 * text that says what one value must be.
 */
import { z } from 'zod';
import { toSnake } from '../util/case.js';
import { valueOf } from './derive.js';
import { OPTIONS, STUDY_BASE_KEYS, STUDY_SETTING_KEYS, type OptionKey, type OptionSpec } from './table.js';

/** camelCase -> snake_case at the type level (`topK` -> `top_k`). */
export type Snake<S extends string> = S extends `${infer H}${infer T}`
  ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${Snake<T>}`
  : S;

/** The study's value schema of each option `keys`, under its snake_case key. */
export type SnakeValues<K extends OptionKey> = { [k in K as Snake<k>]: (typeof OPTIONS)[k]['value'] };

/** The value schemas of options `keys`, under their snake_case keys (in that order). */
export function snakeValues<const K extends OptionKey>(keys: readonly K[]): SnakeValues<K> {
  const out: Record<string, z.ZodType> = {};
  for (const k of keys) out[toSnake(k)] = valueOf(k, 'study');
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
