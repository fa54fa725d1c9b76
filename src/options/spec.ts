/**
 * The shape of the option table (src/options/table.ts): what one option declares, what one command makes
 * of it, and the helpers its parts declare options with.
 */
import { z } from 'zod';

/**
 * The commands whose options the table declares: train, finetune-prune, eval (and data check), study,
 * demo, data make-demo (`makeDemo`), sweep (its own flags; a sweep file takes the study's, train's or
 * finetune-prune's options, in snake_case), sweep table (`sweepTable`: a training sweep's tables), jtt (its
 * own flags beside train's) and dfr.
 */
export type Scope = 'train' | 'finetune' | 'eval' | 'study' | 'demo' | 'makeDemo' | 'sweep' | 'sweepTable' | 'jtt' | 'dfr';

/**
 * How the command line reads a value: `positive` / `nonNegative` integers and finite `number`s (ranges
 * beyond that are the zod value's), a `list` (the option's own parser); strings and choices as given;
 * options without an argument are switches.
 */
export type CliKind = 'positive' | 'nonNegative' | 'number' | 'list';

/** What one command makes of an option. */
export interface Use {
  /** --help text. */
  help: string;
  /** The default of the API (and of the flag, unless `cliDefault` is false). */
  default?: unknown;
  /** false: the flag has no default (the API's is applied later; a given flag can then be told from a default one). */
  cliDefault?: false;
  /** false: the API has no default (the flag's is what the code does when the option is left out). */
  apiDefault?: false;
  /** How --help shows the default, where the value itself would not say it well. */
  defaultText?: string;
  /** The API needs it (a flag the command line cannot do without is `mandatory` as well). */
  required?: true;
  mandatory?: true;
  /** A value this command alone takes in place of the option's (eval's head: auto as well). */
  value?: z.ZodType;
  choices?: readonly string[];
}

/** The settings of a study that decide which other settings apply. */
export interface SettingShape {
  ranking?: string;
  mode?: string;
  dropoutP?: number;
}

/** One option. */
export interface OptionSpec {
  /** The command-line argument name (`<n>`); none: a switch. */
  arg?: string;
  /** `--no-<flag>`: a switch that turns a default-on option off. */
  negate?: true;
  /** One value's validation (the API and sweep files use it as it is). */
  value: z.ZodType;
  cli?: CliKind;
  /** The command line's own parser of a value (`--size 500x375`, a comma list): throws a UsageError naming `flag`. */
  parse?: (flag: string) => (v: string, previous: unknown) => unknown;
  choices?: readonly string[];
  /** The sweep's description of one value, where the value does not say it (`a number in [0, 1]`). */
  text?: string;
  /** Where a sweep file takes it: in `base`, or as a grid (setting) key. */
  sweep?: 'base' | 'setting';
  /** A study setting: whether it has an effect on a setting of this ranking and mode (default: always). */
  applies?: (s: SettingShape, o: { rewindCheckpoint?: boolean }) => boolean;
  /**
   * A study setting: its part of a sweep setting's name (`top3`) and of a study's default folder name;
   * `always`: named whatever its value (else only when it differs from its default).
   */
  name?: { part: (v: unknown) => string; always?: true };
  uses: Partial<Record<Scope, Use>>;
}

/** Declares one option (keeps its literal type, so that the API schemas derived from it are typed). */
export const opt = <const T extends OptionSpec>(o: T): T => o;

/** An integer. */
export const int = z.number().int();
/** One of `values`. */
export const choice = <const T extends readonly string[]>(values: T) => z.enum(values as unknown as [T[number], ...T[number][]]);
/** cpu, cuda or cuda:N. */
export const DEVICE_PATTERN = /^(cpu|cuda(:\d+)?)$/;
