/**
 * Training sweep configurations without training: the grid keys are the option table's options of the
 * command, a configuration is validated key by key with messages naming the key, and the expansion
 * (order, exclude, include, list-valued options, paths) gives the exact runs.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { scopeKeys } from '../src/options/derive.js';
import { OPTIONS, type OptionSpec } from '../src/options/table.js';
import { trainingSweepValues } from '../src/options/sweep-keys.js';
import { absoluteTrainingPaths, expandTrainingSweep, parseTrainingConfig, trainingSettingKey, type TrainingSweepConfig } from '../src/sweep/training-config.js';
import { paperTable, sampleStd, selectEpoch, type TrainingSweepRow } from '../src/sweep/training-report.js';
import { isTrainingConfig } from '../src/sweep/training-run.js';
import { toSnake } from '../src/util/case.js';
import type { EpochRecord } from '../src/train/run-dir.js';

const plan = (data: Record<string, unknown>): TrainingSweepConfig => absoluteTrainingPaths(parseTrainingConfig(data, 'cfg.yaml'), '/cfg', '/cfg/out');

describe('training sweep configurations', () => {
  it('take every option of the command in the option table (but the run folder the sweep owns), with its validation', () => {
    for (const [command, scope] of [['train', 'train'], ['finetune-prune', 'finetune']] as const) {
      const keys = Object.keys(trainingSweepValues(command));
      const expected = scopeKeys(scope).filter((k) => !['out', 'resume', 'force', 'quiet'].includes(k)).map(toSnake);
      expect(keys).toEqual(expected);
      for (const k of scopeKeys(scope)) {
        if (!keys.includes(toSnake(k))) continue;
        const spec = OPTIONS[k] as OptionSpec;
        // the sweep key refuses what the option refuses
        for (const bad of [-1, 'nope', 1.5]) expect(trainingSweepValues(command)[toSnake(k)].safeParse(bad).success).toBe((spec.uses[scope]?.value ?? spec.value).safeParse(bad).success);
      }
    }
  });

  it('name the bad key and what was expected', () => {
    expect(() => parseTrainingConfig({ command: 'train', grid: { lrr: [1] } }, 'cfg.yaml')).toThrow(/cfg\.yaml: grid: unknown key 'lrr' \(did you mean 'lr'\?\)/);
    expect(() => parseTrainingConfig({ command: 'train', grid: { batch_size: [32, 0] } }, 'cfg.yaml')).toThrow(/grid\.batch_size\[1\]: expected a positive integer or a list of them, got 0/);
    expect(() => parseTrainingConfig({ command: 'train', base: { prune: ['magnitude-smallest'] } }, 'cfg.yaml')).toThrow(/base: unknown key 'prune'/);
    expect(() => parseTrainingConfig({ command: 'finetune-prune', select: 'best' }, 'cfg.yaml')).toThrow(/select/);
    expect(() => isTrainingConfig({ command: 'trian' }, 'cfg.yaml')).toThrow(/cfg\.yaml: command: expected one of study, train, finetune-prune, got "trian"/);
    expect(isTrainingConfig({ base: { run: 'r' } })).toBe(false);
    expect(isTrainingConfig({ command: 'finetune-prune' })).toBe(true);
  });

  it('expand to the runs: the first grid key outermost, exclude, include, list-valued options, paths relative to the file', () => {
    const cfg = plan({
      command: 'train',
      base: { dataset: 'folder', root: 'data', epochs: 2 },
      grid: { seed: [0, 1], lr: [0.1, 0.01] },
      exclude: [{ seed: 1, lr: 0.01 }],
      include: [{ lr: 0.5, reweight: true }],
    });
    const runs = expandTrainingSweep(cfg, 'cfg.yaml');
    expect(runs.map((r) => r.key)).toEqual(['seed0-lr0.1', 'seed0-lr0.01', 'seed1-lr0.1', 'seed0-lr0.5-reweight', 'seed1-lr0.5-reweight']);
    expect(runs[0].input).toEqual({ dataset: 'folder', root: '/cfg/data', epochs: 2, seed: 0, lr: 0.1 });
    const ft = expandTrainingSweep(plan({ command: 'finetune-prune', base: { run: 'erm' }, grid: { prune: [['magnitude-smallest'], ['activated', 'magnitude-largest']] } }), 'c');
    expect(ft.map((r) => r.key)).toEqual(['prunemagnitude-smallest', 'pruneactivated+magnitude-largest']);
    expect(expandTrainingSweep(plan({ command: 'finetune-prune', base: { run: 'erm' }, grid: { prune: ['activated'] } }), 'c')).toHaveLength(1);
    expect(() => expandTrainingSweep(plan({ command: 'train', base: { dataset: 'folder', root: 'd', optimizer: 'adam' }, grid: { momentum: [0, 0.9] } }), 'cfg.yaml')).not.toThrow();
    expect(() => expandTrainingSweep(plan({ command: 'train', base: { root: 'd' } }), 'cfg.yaml')).toThrow(/base: dataset is needed/);
    expect(trainingSettingKey({})).toBe('run');
  });

  it('select the epoch and the hyperparameters as documented; std has ddof 1', () => {
    const m = (wga: number, avg: number) => ({ worst_group_accuracy: wga, average_accuracy: avg, mean_accuracy: avg, overall_accuracy: avg, groups: [], split: 'val' }) as unknown as EpochRecord['val'];
    const recs = [
      { epoch: -1, val: m(0.9, 0.9), test: m(0.9, 0.9) },
      { epoch: 0, val: m(0.5, 0.7), test: m(0.4, 0.8) },
      { epoch: 1, val: m(0.6, 0.6), test: m(0.5, 0.7) },
      { epoch: 2, val: m(0.6, 0.8), test: m(0.3, 0.9) },
    ] as EpochRecord[];
    expect(selectEpoch(recs, 'val_wga')!.epoch).toBe(1);
    expect(selectEpoch(recs, 'val_avg')!.epoch).toBe(2);
    expect(selectEpoch(recs, 'last')!.epoch).toBe(2);
    expect(sampleStd([1, 2, 3, 4])).toBeCloseTo(1.2909944487358056, 15);
    expect(sampleStd([1])).toBeNull();
    const acc = (w: number) => ({ worst_group: w, average: w, mean: w, overall: w });
    const row = (key: string, lr: number, seed: number, val: number, test: number): TrainingSweepRow => ({ index: 0, key, lr, seed, status: 'finished', epoch: 0, epochs_done: 1, val: acc(val), test: acc(test) });
    const rows = [row('a', 0.1, 0, 0.5, 0.9), row('b', 0.1, 1, 0.5, 0.9), row('c', 0.01, 0, 0.6, 0.1), row('d', 0.01, 1, 0.5, 0.3)];
    const opts = new Map(rows.map((r) => [r.key, { dataset: 'folder' }]));
    const [t] = paperTable(rows, opts, ['dataset'], 'val_wga', ['lr', 'seed']);
    expect(t.selected).toEqual({ lr: 0.01 });
    expect(t.test.worst_group.mean).toBeCloseTo(0.2, 15);
    expect(t.test.worst_group.std).toBeCloseTo(Math.SQRT2 * 0.1, 15);
    expect(t.test.worst_group.se).toBeCloseTo(0.1, 15);
    expect(paperTable(rows, opts, ['dataset'], 'oracle', ['lr', 'seed'])[0].selected).toEqual({ lr: 0.1 });
    expect(paperTable(rows, opts, ['lr'], 'val_wga', ['lr', 'seed'])).toHaveLength(2);
    expect(z.array(z.string()).safeParse(t.runs).success).toBe(true);
  });
});
