import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { CORES_ENV, CpuBudget, childCoresEnv, cpuBudget, processCores } from '../src/util/cpu-budget.js';
import { openDataset, loadBatches, sharedImageCache } from '../src/data/index.js';
import { addon } from '../src/native.js';
import { createModel } from '../src/model/index.js';
import { evaluateSplit } from '../src/eval/evaluate-split.js';
import { tinyDataset, writeJpeg } from './helpers/datasets.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the CPU budget', () => {
  it('never hands out more tokens than cores; a waiting model call is not overtaken by later decodes', async () => {
    const b = new CpuBudget(2);
    let inUse = 0;
    let most = 0;
    const events: string[] = [];
    const task = (n: number, name: string, ms: number) => async () => {
      inUse += n;
      most = Math.max(most, inUse);
      events.push(`start ${name}`);
      await sleep(ms);
      inUse -= n;
      events.push(`end ${name}`);
    };
    const d1 = b.decode(task(1, 'd1', 30));
    const d2 = b.decode(task(1, 'd2', 30));
    const m = b.compute(2, task(2, 'model', 20));
    const d3 = b.decode(task(1, 'd3', 5)); // queued after the model call
    await Promise.all([d1, d2, m, d3]);
    expect(most).toBe(2);
    expect(b.peak).toBe(2);
    expect(events.indexOf('start model')).toBeGreaterThan(events.indexOf('end d2'));
    expect(events.indexOf('start model')).toBeGreaterThan(events.indexOf('end d1'));
    expect(events.indexOf('start d3')).toBeGreaterThan(events.indexOf('end model'));
    expect(b.spent.decodeTasks).toBe(3);
    expect(b.spent.modelCalls).toBe(1);
    // a GPU call holds no token: decodes run beside it
    const events2: string[] = [];
    await Promise.all([b.compute(0, async () => { events2.push('gpu start'); await sleep(20); events2.push('gpu end'); }), b.decode(async () => { events2.push('decode'); })]);
    expect(events2).toEqual(['gpu start', 'decode', 'gpu end']);
  });

  it('--decode-threads caps the decodes at once', async () => {
    const b = new CpuBudget(4, 1);
    let inUse = 0;
    let most = 0;
    await Promise.all(Array.from({ length: 5 }, () => b.decode(async () => { inUse += 1; most = Math.max(most, inUse); await sleep(5); inUse -= 1; })));
    expect(most).toBe(1);
    expect(() => b.setDecodeThreads(0)).toThrow(/--decode-threads expects a positive integer, got '0'/);
    expect(() => new CpuBudget(0)).toThrow(/cores must be a positive integer/);
  });

  it('a batch decode on the addon\'s threads takes the free tokens, within the decode cap, and never a waiting call\'s', async () => {
    const b = new CpuBudget(4, 3);
    const got: number[] = [];
    await b.decodeWide(10, async (n) => void got.push(n)); // all free: the cap
    await b.decodeWide(2, async (n) => void got.push(n)); // no more threads than images
    expect(got).toEqual([3, 2]);
    expect(b.spent.decodeTasks).toBe(12);
    // a model call holds 3 of the 4 tokens: the batch gets the one left
    got.length = 0;
    let release = () => undefined as void;
    const model = b.compute(3, () => new Promise<void>((r) => (release = r)));
    await sleep(1);
    const wide = b.decodeWide(10, async (n) => void got.push(n));
    await sleep(1);
    release();
    await Promise.all([model, wide]);
    expect(got).toEqual([1]);
    // a model call waiting for every token: a batch decode that gets the one free token takes no more
    got.length = 0;
    const order: string[] = [];
    const one = b.decode(() => sleep(10));
    const waiting = b.compute(4, async () => void order.push('model'));
    const after = b.decodeWide(10, async (n) => void order.push(`decode ${n}`));
    await Promise.all([one, waiting, after]);
    expect(order).toEqual(['model', 'decode 3']);
  });

  it('tells the decoding pool when model calls run on the CPU (not GPU calls); decoding in the background ends the thread trial', async () => {
    const b = new CpuBudget(2);
    const said: boolean[] = [];
    b.onModelCalls((running) => said.push(running));
    expect(said).toEqual([false]);
    let release = () => undefined as void;
    const first = b.compute(1, () => new Promise<void>((r) => (release = r)));
    await sleep(1);
    const second = b.compute(1, () => sleep(5)); // a second CPU call beside the first: the pool hears once
    await second;
    expect(said).toEqual([false, true]);
    release();
    await first;
    expect(said).toEqual([false, true, false]);
    await b.compute(0, () => sleep(1)); // a GPU call leaves the cores to decoding
    await expect(b.compute(2, async () => { throw new Error('native'); })).rejects.toThrow('native');
    expect(said).toEqual([false, true, false, true, false]);
    // pooled decodes hold no token and count their CPU seconds
    const r = await b.decodePooled(7, async (threads) => ({ threads, cpuSeconds: 0.25 }));
    expect(r.threads).toBe(2);
    expect(b.spent.decodeTasks).toBe(7);
    expect(b.spent.decodeSeconds).toBeCloseTo(0.25);
    // a trial under way ends at the fixed count; a later adaptTorchThreads starts none
    const t = new CpuBudget(2);
    t.adaptTorchThreads(() => {});
    await t.compute(t.threadsFor(true), () => sleep(1), { apply: true, images: 10 });
    expect(t.torchThreads).toBe(1); // the trial's second candidate
    t.decodingInBackground();
    expect(t.torchThreads).toBe(2);
    t.adaptTorchThreads(() => {});
    for (let i = 0; i < 12; i++) await t.compute(t.threadsFor(true), () => sleep(1), { apply: true, images: 10 });
    expect(t.chosen).toBeUndefined();
    expect(t.torchThreads).toBe(2);
  });

  it('a sweep worker\'s budget is its share of the cores', () => {
    const env = childCoresEnv(2, {});
    expect(Number(env[CORES_ENV])).toBe(Math.max(1, Math.floor(cpuBudget().cores / 2)));
    expect(childCoresEnv(1000, {})[CORES_ENV]).toBe('1');
    const before = process.env[CORES_ENV];
    try {
      process.env[CORES_ENV] = '1';
      expect(processCores()).toBe(1);
      process.env[CORES_ENV] = 'x';
      expect(processCores()).toBe(availableParallelism());
    } finally {
      if (before === undefined) delete process.env[CORES_ENV];
      else process.env[CORES_ENV] = before;
    }
  });

  it('the thread trial keeps the count with the lower time per image', async () => {
    for (const [fastWith, want] of [[2, 2], [1, 1]] as const) {
      const b = new CpuBudget(2);
      const applied: number[] = [];
      b.adaptTorchThreads((n) => applied.push(n));
      expect(b.torchThreads).toBe(2);
      for (let i = 0; i < 12; i++) {
        const k = b.threadsFor(true);
        await b.compute(k, () => sleep(k === fastWith ? 4 : 25), { apply: true, images: 10 });
        expect(b.threadsFor(false)).toBe(2); // training calls keep the fixed count
      }
      expect(b.chosen?.threads).toBe(want);
      expect(b.torchThreads).toBe(want);
      expect(applied[0]).toBe(2);
      expect(applied.at(-1)).toBe(want);
      expect(b.chosen!.secondsPerImage[fastWith]).toBeLessThan(b.chosen!.secondsPerImage[fastWith === 2 ? 1 : 2]);
    }
    // a gap that holds another model call (a training epoch between evaluations) is not measured: long
    // training calls after every evaluation with 2 threads do not make 2 threads look slow
    {
      const b = new CpuBudget(2);
      b.adaptTorchThreads(() => {});
      for (let i = 0; i < 12 && !b.chosen; i++) {
        const k = b.threadsFor(true);
        await b.compute(k, () => sleep(k === 2 ? 4 : 25), { apply: true, images: 10 });
        if (k === 2) await b.compute(b.threadsFor(false), () => sleep(80), { apply: true });
      }
      expect(b.chosen?.threads).toBe(2);
    }
    // a count that is given is kept: no trial
    const b = new CpuBudget(2);
    b.setTorchThreads(1);
    for (let i = 0; i < 12; i++) await b.compute(b.threadsFor(true), () => sleep(1), { apply: true, images: 10 });
    expect(b.chosen).toBeUndefined();
    expect(b.torchThreads).toBe(1);
  });

  it('a real evaluation keeps decoding and libtorch within the cores; OpenMP threads wait passively', async () => {
    addon();
    expect(process.env.OMP_WAIT_POLICY).toBe('PASSIVE');
    const { root } = await tinyDataset({ perGroup: [6, 6, 6, 6], w: 64, h: 48 });
    const ds = await openDataset({ dataset: 'folder', root });
    const model = createModel({ arch: 'resnet18', device: 'cpu', imageSize: 32, threads: availableParallelism() });
    const budget = cpuBudget();
    budget.resetSpent();
    await evaluateSplit(model, ds, 'train', { resolution: 32, batchSize: 4 });
    expect(budget.spent.decodeTasks).toBe(ds.samples.train.length);
    expect(budget.spent.modelCalls).toBeGreaterThanOrEqual(Math.ceil(ds.samples.train.length / 4));
    expect(budget.peak).toBeGreaterThan(0);
    expect(budget.peak).toBeLessThanOrEqual(availableParallelism());
  });
});

describe('the process-wide image cache', () => {
  it('a second pass decodes nothing; a file changed on disk is decoded again', async () => {
    const { root } = await tinyDataset({ perGroup: [3, 3, 3, 3], w: 40, h: 30 });
    const ds = await openDataset({ dataset: 'folder', root });
    const samples = ds.samples.train;
    const cache = sharedImageCache(64 << 20);
    expect(sharedImageCache(1 << 20)).toBe(cache); // one cache per process; a smaller ask does not shrink it
    const pass = async () => {
      const out: Uint8Array[] = [];
      for await (const b of loadBatches(samples, { resolution: 16, batchSize: 5, cache })) out.push(b.images);
      return Buffer.concat(out);
    };
    const budget = cpuBudget();
    budget.resetSpent();
    const first = await pass();
    expect(budget.spent.decodeTasks).toBe(samples.length);
    budget.resetSpent();
    const second = await pass();
    expect(budget.spent.decodeTasks).toBe(0);
    expect(second.equals(first)).toBe(true);
    // rewrite one image with other pixels (and size): only it is decoded again, and its new pixels are used
    await writeJpeg(samples[0].file, 40, 30, 999);
    budget.resetSpent();
    const third = await pass();
    expect(budget.spent.decodeTasks).toBe(1);
    const per = 16 * 16 * 3;
    expect(third.subarray(0, per).equals(first.subarray(0, per))).toBe(false);
    expect(third.subarray(per).equals(first.subarray(per))).toBe(true);
    expect(sharedImageCache(0).maxBytes).toBe(0); // 0 asks for no caching
  });
});
