import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunDir } from '../src/train/run-dir.js';
import type { EpochRecord } from '../src/train/run-dir.js';
import type { GroupMetrics } from '../src/metrics/groups.js';

function metrics(wga: number): GroupMetrics {
  return { groups: [], worst_group_accuracy: wga, average_accuracy: wga, mean_accuracy: wga } as unknown as GroupMetrics;
}

function record(epoch: number, valWga: number): EpochRecord {
  return { epoch, loss: 1, lr: 1e-3, seconds: 1, eval_seconds: 1, train: metrics(0.5), val: metrics(valWga), test: metrics(0.5) };
}

describe('RunDir.pruneCheckpoints (--keep-checkpoints)', () => {
  it('keeps the newest N checkpoints and the best validation epoch, and the run still resumes from its last epoch', () => {
    const run = new RunDir(join(mkdtempSync(join(tmpdir(), 'spurmem-keep-')), 'run'));
    run.prepare({ a: 1 }, { resume: false, force: false, mayChange: [], command: 'train' });
    const valWga = [0.2, 0.9, 0.3, 0.4, 0.5, 0.6];
    const kept: number[][] = [];
    for (let e = 0; e < valWga.length; e++) {
      writeFileSync(run.checkpoint(e), 'x');
      run.append(record(e, valWga[e]));
      run.pruneCheckpoints(2);
      kept.push(readdirSync(run.dir).filter((f) => f.endsWith('.pth.tar')).map((f) => Number(/epoch_(\d+)_/.exec(f)![1])).sort((a, b) => a - b));
    }
    expect(kept).toEqual([[0], [0, 1], [1, 2], [1, 2, 3], [1, 3, 4], [1, 4, 5]]);
    expect(run.lastCompleteEpoch()).toBe(5);
    // a later epoch that becomes the best lets the old best go
    writeFileSync(run.checkpoint(6), 'x');
    run.append(record(6, 0.95));
    expect(run.pruneCheckpoints(1)).toEqual([1, 4, 5]);
    expect(existsSync(run.checkpoint(6))).toBe(true);
    expect(readdirSync(run.dir).filter((f) => f.endsWith('.pth.tar'))).toEqual(['epoch_6_checkpoints.pth.tar']);
  });
});

describe('lockFolder (one sweep per output folder)', () => {
  it('refuses a folder that a live process holds, takes over a lock whose process is gone, and releases', async () => {
    const { lockFolder } = await import('../src/util/files.js');
    const { spawn, spawnSync } = await import('node:child_process');
    const dir = join(mkdtempSync(join(tmpdir(), 'spurmem-lock-')), 'sweep');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const { mkdirSync } = await import('node:fs');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, '.lock'), String(holder.pid));
      expect(() => lockFolder(dir, 'sweep')).toThrow(new RegExp(`another sweep \\(process ${holder.pid}\\) is running in this folder`));
    } finally {
      holder.kill('SIGKILL');
    }
    // a process that has ended
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, '.lock'), gone.stdout);
    const release = lockFolder(dir, 'sweep');
    expect(readdirSync(dir)).toContain('.lock');
    release();
    expect(existsSync(join(dir, '.lock'))).toBe(false);
  });
});
