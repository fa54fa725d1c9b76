/**
 * The options of a study (original-behaviour §3.2-§3.4, §4, §5): its base (which model on which data)
 * and one setting (ranking, modification, repeats...), validated by schemas derived from the option
 * table; the defaults a setting resolves to; which settings are refused as changing nothing.
 */
import { z } from 'zod';
import { BASE_KEYS } from '../../base.js';
import { schemaFields, settingApplies } from '../../options/derive.js';
import { defaultDistribution, isRandomMode, isRewindMode, type Distribution } from '../../options/enums.js';
import { flagName, optionsError } from '../../util/errors.js';

export { ACTIVATED_LOSSES, MODES, RANKINGS, isRandomMode, isRewindMode } from '../../options/enums.js';
export { settingApplies };

/** The base of a study: which model on which data. Shared by every setting of a sweep. */
export const studyBaseSchema = z
  .object(schemaFields('study', [...BASE_KEYS, 'rewindCheckpoint', 'batchSize', 'device', 'threads', 'decodeThreads', 'skipBadImages', 'cacheMb', 'ci', 'ciLevel', 'bootstrap']))
  .strict();

/** One study setting (what a sweep varies); the keys in the order result.json lists them. */
export const studySettingSchema = z
  .object(
    schemaFields('study', [
      'split', 'ranking', 'topK', 'fraction', 'smallest', 'dropoutP', 'faithfulThreshold', 'mode', 'std', 'rewindEpochs', 'repeats', 'distribution',
      'poorestLimit', 'activatedLoss', 'seed',
    ]),
  )
  .strict();

/** What a study writes beyond its setting: the result folder `out`, and `perSample` (samples.csv). */
export const studyOutputSchema = z.object(schemaFields('study', ['out', 'perSample'])).strict();

/** Input of `prepareStudy` (see {@link studyBaseSchema}). */
export type StudyBaseInput = z.input<typeof studyBaseSchema>;
/** Input of `runStudySetting` (see {@link studySettingSchema}). */
export type StudySettingInput = z.input<typeof studySettingSchema>;
/** A validated setting (defaults applied; repeats, distribution and rewind epochs may still be open). */
export type StudySetting = z.output<typeof studySettingSchema>;
/** Input of `study()`: a base and one setting, plus the result folder `out` and `perSample` (see {@link studyOutputSchema}). */
export type StudyInput = StudyBaseInput & StudySettingInput & z.input<typeof studyOutputSchema>;

/** A setting with every default resolved: what a study actually ran (rewindEpochs 0: no rewind by epochs). */
export type ResolvedStudySetting = Omit<StudySetting, 'rewindEpochs'> & { repeats: number; distribution: Distribution; rewindEpochs: number };

/**
 * Validates a setting and resolves its defaults: R = `repeats` (default 10) for the random modes and 1
 * otherwise (the Largest and threshold scripts, §3.2, §3.4); the distribution of
 * {@link defaultDistribution} unless asked (normal N(0, std^2), or uniform for `faithfulThreshold`, Q14);
 * rewindEpochs 0 when not given.
 * @throws UsageError naming the bad option
 */
export function resolveStudySetting(input: StudySettingInput): ResolvedStudySetting {
  const parsed = studySettingSchema.safeParse(input);
  if (!parsed.success) throw optionsError(parsed.error.issues);
  const s = parsed.data;
  const repeats = isRandomMode(s.mode) ? (s.repeats ?? 10) : 1;
  const distribution = s.distribution ?? defaultDistribution(s);
  return { ...s, rewindEpochs: s.rewindEpochs ?? 0, repeats, distribution };
}

/**
 * Why a setting cannot be run, or null: settings that would change nothing are refused rather than
 * reported as a null result (std 0 for the random modes, rewind by 0 epochs, threshold fraction 0), and
 * layer_rewind needs channels. `name` renders an option's key (a CLI flag, or a sweep key).
 */
export function settingProblem(
  s: Omit<StudySetting, 'rewindEpochs'> & { rewindEpochs?: number },
  o: { rewindCheckpoint?: boolean; name?: (key: string) => string } = {},
): string | null {
  const n = o.name ?? flagName;
  const v = (key: string, value: unknown) => (o.name ? `${n(key)}: ${String(value)}` : `${n(key)} ${String(value)}`);
  if (s.ranking === 'threshold' && s.mode === 'layer_rewind') return `${v('mode', 'layer_rewind')} works on channels, not with ${v('ranking', 'threshold')}`;
  if (s.mode === 'random_noise' && s.std === 0) return `${v('mode', 'random_noise')} needs ${n('std')} S > 0 (with 0 it adds nothing; the original used 0.02, 0.01, 0.005)`;
  if (s.mode === 'random_init' && s.std === 0) return `${v('mode', 'random_init')} needs ${n('std')} S > 0 (with 0 it is mode zero; the original used 0.02, 0.15, 0.1)`;
  if (isRewindMode(s.mode) && !s.rewindEpochs && !o.rewindCheckpoint) {
    return `${v('mode', s.mode)} needs ${n('rewindEpochs')} N > 0 (with 0 it copies the weights onto themselves) or a rewind checkpoint`;
  }
  if (s.ranking === 'threshold' && s.dropoutP === 1) return `${v('dropoutP', 1)} drops every selected weight: give ${n('dropoutP')} Q < 1`;
  if (s.ranking === 'threshold' && s.fraction === 0 && !s.faithfulThreshold) return `${v('ranking', 'threshold')} with ${v('fraction', 0)} selects no weight: give ${n('fraction')} P > 0`;
  return null;
}
