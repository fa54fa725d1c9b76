/**
 * The names of a study setting, from the option table: a sweep setting's folder name (every option of
 * the setting, in canonical order: `train-largest-random_init-top3-std0.02-r10-seed0`) and the part of a
 * study's default folder name that the original's file name does not already say (`_r3_seed1`).
 */
import { defaultDistribution } from './enums.js';
import { settingApplies } from './derive.js';
import { OPTIONS, STUDY_SETTING_KEYS, type OptionKey, type OptionSpec } from './table.js';

type SettingValues = Partial<Record<string, unknown>> & { ranking?: string; mode?: string; dropoutP?: number; faithfulThreshold?: boolean };

/** The value a study setting takes when not given (the distribution's depends on the setting, the random modes repeat 10 times). */
export function settingDefault(key: OptionKey, s: SettingValues): unknown {
  if (key === 'distribution') return defaultDistribution(s);
  if (key === 'repeats') return 10;
  return (OPTIONS[key] as OptionSpec).uses.study?.default;
}

function part(key: OptionKey, s: SettingValues, always: boolean): string | null {
  const name = (OPTIONS[key] as OptionSpec).name;
  const v = s[key];
  if (!name || v === undefined) return null;
  return (always && name.always) || v !== settingDefault(key, s) ? name.part(v) : null;
}

/** The parts of a setting's name, every option it holds in canonical order (camelCase keys). */
export function settingNameParts(s: SettingValues): string[] {
  return STUDY_SETTING_KEYS.map((k) => part(k, s, true)).filter((p): p is string => p !== null);
}

/** The options a study's default folder name adds, in this order, to the original's file name (which says the rest). */
const FOLDER_KEYS = ['repeats', 'seed', 'dropoutP', 'faithfulThreshold', 'distribution', 'poorestLimit', 'activatedLoss'] as const satisfies readonly OptionKey[];

/** The parts a study's default folder name adds: the options that apply and differ from their default. */
export function folderNameParts(s: SettingValues): string[] {
  return FOLDER_KEYS.filter((k) => settingApplies(k, s)).map((k) => part(k, s, false)).filter((p): p is string => p !== null);
}
