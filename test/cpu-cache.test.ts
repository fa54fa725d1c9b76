/**
 * The CPU tensor-memory cache (native/cpu_cache.h): freed blocks are reused by the next allocation of the
 * same size, results do not change, and the limit is kept.
 */
import { describe, expect, it } from 'vitest';
import { addon, type Batch } from '../src/native.js';
import { createModel } from '../src/model/index.js';

function batch(n: number, size: number): Batch {
  const data = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
  return { tensor: data, shape: [n, 3, size, size] };
}

describe('CPU memory cache', () => {
  it('serves repeated forwards from freed blocks, with identical outputs, within its limit', async () => {
    const a = addon();
    const limit = a.cpuCache().limitBytes;
    expect(limit).toBeGreaterThan(0);
    const m = createModel({ arch: 'deit_tiny', depth: 2, imageSize: 64, device: 'cpu', head: 'linear', seed: 3 });
    const x = batch(4, 64);
    const first = await m.forward(x);
    const s1 = a.cpuCache();
    const second = await m.forward(x);
    const s2 = a.cpuCache();
    expect(s2.hits).toBeGreaterThan(s1.hits);
    expect(s2.cachedBytes).toBeLessThanOrEqual(limit);
    expect(Array.from(second)).toEqual(Array.from(first));
    // a training step allocates and frees too; the gradients are those of an uncached run
    const targets = new Int32Array([0, 1, 1, 0]);
    const g1 = await m.gradients(x, { targets, train: true, raw: true });
    a.cpuCache(0); // off: every block goes back to the system
    expect(a.cpuCache()).toMatchObject({ limitBytes: 0, cachedBytes: 0 });
    const third = await m.forward(x);
    expect(a.cpuCache().cachedBytes).toBe(0);
    const g2 = await m.gradients(x, { targets, train: true, raw: true });
    expect(Array.from(third)).toEqual(Array.from(first));
    for (const n of Object.keys(g1.grads!)) expect(Array.from(g2.grads![n].data as Float32Array), n).toEqual(Array.from(g1.grads![n].data as Float32Array));
    // a small limit: the least recently cached blocks make room, so the cache still holds some
    a.cpuCache(1 << 20);
    const s3 = a.cpuCache();
    await m.forward(x);
    await m.forward(x);
    const s4 = a.cpuCache();
    expect(s4.cachedBytes).toBeLessThanOrEqual(1 << 20);
    expect(s4.cachedBytes).toBeGreaterThan(0);
    expect(s4.hits).toBeGreaterThan(s3.hits);
    a.cpuCache(limit);
    expect(() => a.cpuCache(-1)).toThrow(/limitBytes must be a number >= 0/);
  });
});
