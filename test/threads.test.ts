import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { addon } from '../src/native.js';
import { createModel, setThreads, threadCount } from '../src/model/index.js';

describe('libtorch CPU threads', () => {
  it('default to every available core when the first model is created, and follow setThreads', async () => {
    expect(threadCount()).toBeUndefined();
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    expect(threadCount()).toBe(availableParallelism());
    expect(addon().versions().threads).toBe(availableParallelism());
    setThreads(1);
    expect(addon().versions().threads).toBe(1);
    createModel({ arch: 'resnet18', device: 'cpu' });
    expect(addon().versions().threads).toBe(1);  // a later model keeps the count that was set
    createModel({ arch: 'resnet18', device: 'cpu', threads: 2 });
    expect(addon().versions().threads).toBe(2);
    const out = await m.forward({ tensor: new Float32Array(3 * 32 * 32), shape: [1, 3, 32, 32] });
    expect(out.length).toBe(2);
    expect(() => setThreads(0)).toThrow(/--threads expects a positive integer, got '0'/);
  });
});
