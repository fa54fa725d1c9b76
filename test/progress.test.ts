import { afterEach, describe, expect, it, vi } from 'vitest';
import { barsEnabled, progress, progressBar } from '../src/util/progress.js';

// One progress module: both kinds of bar honour SPURMEM_PROGRESS (before, the bar of `spurmem data` and
// `spurmem eval` looked at the terminal alone).
describe('progress bars', () => {
  const saved = { env: process.env.SPURMEM_PROGRESS, tty: process.stderr.isTTY };
  afterEach(() => {
    if (saved.env === undefined) delete process.env.SPURMEM_PROGRESS;
    else process.env.SPURMEM_PROGRESS = saved.env;
    process.stderr.isTTY = saved.tty;
    vi.restoreAllMocks();
  });

  it('SPURMEM_PROGRESS=0 turns both bars off on a terminal', () => {
    process.env.SPURMEM_PROGRESS = '0';
    process.stderr.isTTY = true;
    expect(barsEnabled()).toBe(false);
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const a = progressBar('check');
    a.update(1, 10);
    a.stop();
    const b = progress('eval test', 10);
    b.tick(1);
    b.stop();
    expect(write).not.toHaveBeenCalled();
  });

  it('SPURMEM_PROGRESS=1 turns bars on without a terminal; unset, the terminal decides', () => {
    process.env.SPURMEM_PROGRESS = '1';
    process.stderr.isTTY = false;
    expect(barsEnabled()).toBe(true);
    delete process.env.SPURMEM_PROGRESS;
    expect(barsEnabled()).toBe(false);
    process.stderr.isTTY = true;
    expect(barsEnabled()).toBe(true);
  });
});
