import { describe, expect, it } from 'vitest';
import { folderSuffix, resolveStudySetting, settingApplies, settingProblem } from '../src/neurons/study.js';

describe('study settings: which options apply, which settings are refused, default folder names', () => {
  it('names the options that a ranking and mode use', () => {
    expect(settingApplies('std', { ranking: 'largest', mode: 'zero' })).toBe(false);
    expect(settingApplies('std', { ranking: 'largest', mode: 'random_noise' })).toBe(true);
    expect(settingApplies('topK', { ranking: 'threshold', mode: 'zero' })).toBe(false);
    expect(settingApplies('rewindEpochs', { ranking: 'largest', mode: 'rewind' })).toBe(true);
    expect(settingApplies('rewindEpochs', { ranking: 'largest', mode: 'rewind' }, { rewindCheckpoint: true })).toBe(false);
    expect(settingApplies('seed', { ranking: 'threshold', mode: 'zero', dropoutP: 0.5 })).toBe(true);
    expect(settingApplies('seed', { ranking: 'largest', mode: 'zero' })).toBe(false);
  });

  it('refuses settings that change nothing, naming the flag', () => {
    const problem = (s: Parameters<typeof resolveStudySetting>[0], o = {}) => settingProblem(resolveStudySetting(s), o);
    expect(problem({ mode: 'random_noise' })).toMatch(/^--mode random_noise needs --std S > 0/);
    expect(problem({ mode: 'random_init', std: 0.1 })).toBeNull();
    expect(problem({ mode: 'rewind' })).toMatch(/^--mode rewind needs --rewind-epochs N > 0/);
    expect(problem({ mode: 'rewind' }, { rewindCheckpoint: true })).toBeNull();
    expect(problem({ ranking: 'threshold', fraction: 0 })).toMatch(/selects no weight/);
    expect(problem({ ranking: 'threshold', dropoutP: 1 })).toMatch(/^--dropout-p 1 drops every selected weight/);
    expect(problem({ ranking: 'threshold', mode: 'layer_rewind', rewindEpochs: 1 })).toMatch(/works on channels/);
    // a sweep names its keys
    expect(settingProblem(resolveStudySetting({ mode: 'random_noise' }), { name: (k) => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()) })).toMatch(/^mode: random_noise needs std S > 0/);
  });

  it('gives settings that differ beyond the original file name their own folder', () => {
    expect(folderSuffix(resolveStudySetting({ mode: 'random_noise', std: 0.1 }))).toBe('');
    expect(folderSuffix(resolveStudySetting({ mode: 'random_noise', std: 0.1, seed: 1, repeats: 3 }))).toBe('_r3_seed1');
    expect(folderSuffix(resolveStudySetting({ mode: 'zero', seed: 5 }))).toBe('');
    expect(folderSuffix(resolveStudySetting({ ranking: 'threshold', dropoutP: 0.5, seed: 2 }))).toBe('_seed2_drop0.5');
  });
});
