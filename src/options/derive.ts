/**
 * What the option table gives each consumer: the camelCase zod fields of the Node API's schemas, the
 * commander options of every command, and when a study setting applies.
 */
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { UsageError, flagName } from '../util/errors.js';
import { toKebab } from '../util/case.js';
import { OPTIONS, type OptionKey, type OptionSpec, type Scope, type SettingShape, type Use } from './table.js';

type Spec<K extends OptionKey> = (typeof OPTIONS)[K];
type UseOf<K extends OptionKey, S extends Scope> = Spec<K>['uses'] extends { [s in S]: infer U } ? U : never;
type ValueOf<K extends OptionKey, S extends Scope> = UseOf<K, S> extends { value: infer V extends z.ZodType } ? V : Spec<K>['value'];
/** The zod field of option K in command S: with its default, required, or optional. */
export type FieldOf<K extends OptionKey, S extends Scope> = UseOf<K, S> extends { apiDefault: false }
  ? z.ZodOptional<ValueOf<K, S>>
  : UseOf<K, S> extends { default: unknown }
  ? z.ZodDefault<ValueOf<K, S>>
  : UseOf<K, S> extends { required: true }
    ? ValueOf<K, S>
    : z.ZodOptional<ValueOf<K, S>>;
/** The zod fields of the options `keys` of command S. */
export type FieldsOf<K extends OptionKey, S extends Scope> = { [k in K]: FieldOf<k, S> };

/** The flag of an option key (`topK` -> `--top-k`). */
export const flagOf = flagName;

function useOf(key: OptionKey, scope: Scope): Use {
  const use = (OPTIONS[key] as OptionSpec).uses[scope];
  if (!use) throw new Error(`internal: option ${key} is not one of ${scope}'s`);
  return use;
}

/** One value's validation of option `key` in command `scope` (the option's, or the command's own). */
export function valueOf(key: OptionKey, scope?: Scope): z.ZodType {
  const spec = OPTIONS[key] as OptionSpec;
  return (scope && spec.uses[scope]?.value) ?? spec.value;
}

/**
 * The zod fields (camelCase keys) of command `scope`'s options `keys`: each option's value, with the
 * command's default, required where the command needs it, else optional.
 */
export function schemaFields<const K extends OptionKey, S extends Scope>(scope: S, keys: readonly K[]): FieldsOf<K, S> {
  const out: Record<string, z.ZodType> = {};
  for (const k of keys) {
    const use = useOf(k, scope);
    const v = valueOf(k, scope);
    out[k] = use.default !== undefined && use.apiDefault !== false ? (v as z.ZodAny).default(use.default) : use.required ? v : v.optional();
  }
  return out as FieldsOf<K, S>;
}

/** The command-line parser of a numeric option: throws a UsageError naming the flag. */
export function numberParser(flag: string, kind: 'positive' | 'nonNegative' | 'number'): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (kind === 'positive' && (!Number.isInteger(n) || n <= 0)) throw new UsageError(`${flag} expects a positive integer, got '${v}'`);
    if (kind === 'nonNegative' && (!Number.isInteger(n) || n < 0)) throw new UsageError(`${flag} expects a non-negative integer, got '${v}'`);
    if (kind === 'number' && (v.trim() === '' || !Number.isFinite(n))) throw new UsageError(`${flag} expects a number, got '${v}'`);
    return n;
  };
}

/** A comma list of choices, repeatable (`--prune a,b --prune c`): throws a UsageError naming the flag and the bad item. */
export function choiceListParser(flag: string, choices: readonly string[]) {
  return (v: string, prev: string[] | undefined): string[] => {
    const out = [...(prev ?? [])];
    for (const c of v.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (!choices.includes(c)) throw new UsageError(`${flag}: '${c}' is not one of ${choices.join(', ')}`);
      out.push(c);
    }
    return out;
  };
}

/** The parser of a string option whose value has a pattern (the device). */
function patternParser(flag: string, value: z.ZodType) {
  return (v: string): string => {
    const r = value.safeParse(v);
    if (!r.success) throw new UsageError(`${flag} ${r.error.issues[0].message.replace(/^expected/, 'expects')}, got '${v}'`);
    return v;
  };
}

/**
 * The commander option of `key` in command `scope`: flag and argument, help, choices, the parser that
 * throws a UsageError naming the flag, the default (unless the command applies it later) and whether it
 * is mandatory.
 */
export function cliOption(key: OptionKey, scope: Scope): Option {
  const spec = OPTIONS[key] as OptionSpec;
  const use = useOf(key, scope);
  const flag = spec.negate ? `--no-${toKebab(key)}` : flagOf(key);
  const o = new Option(spec.arg ? `${flag} ${spec.arg}` : flag, use.help);
  const choices = use.choices ?? spec.choices;
  if (spec.parse) o.argParser(spec.parse(flag));
  else if (spec.cli === 'list') o.argParser(choiceListParser(flag, choices ?? []));
  else if (spec.cli) o.argParser(numberParser(flag, spec.cli));
  else if (choices && spec.arg) o.choices([...choices]);
  else if (spec.arg && valueOf(key, scope) instanceof z.ZodString && (valueOf(key, scope) as z.ZodString).format === 'regex') {
    o.argParser(patternParser(flag, valueOf(key, scope)));
  }
  if (spec.arg && use.default !== undefined && use.cliDefault !== false) o.default(use.default, use.defaultText);
  if (use.mandatory) o.makeOptionMandatory();
  return o;
}

/** Adds command `scope`'s options `keys` to a commander command, in that order. */
export function addOptions(cmd: Command, scope: Scope, keys: readonly OptionKey[]): Command {
  for (const k of keys) cmd.addOption(cliOption(k, scope));
  return cmd;
}

/** The option keys of command `scope`, in the table's order. */
export function scopeKeys(scope: Scope): OptionKey[] {
  return (Object.keys(OPTIONS) as OptionKey[]).filter((k) => (OPTIONS[k] as OptionSpec).uses[scope] !== undefined);
}

/**
 * Whether an option of a study setting (camelCase key) has an effect on a setting of this ranking and
 * mode: `topK` for the channel rankings; `fraction`, `smallest`, `dropoutP`, `faithfulThreshold` for
 * threshold; `std`, `repeats`, `distribution` for the random modes; `rewindEpochs` for the rewind modes
 * without a rewind checkpoint; `poorestLimit`, `activatedLoss` for activated; `seed` where something is
 * random. Sweeps keep only these keys; `spurmem study` warns about the others. Keys the table does not
 * restrict (and unknown keys) apply.
 */
export function settingApplies(key: string, s: SettingShape, o: { rewindCheckpoint?: boolean } = {}): boolean {
  const spec = (OPTIONS as Record<string, OptionSpec>)[key];
  return spec?.applies ? spec.applies(s, o) : true;
}
