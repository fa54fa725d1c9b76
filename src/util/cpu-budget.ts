/**
 * One CPU budget per process: the cores this process may use, shared by image decoding (sharp/libvips on
 * libuv's pool, and the batch resize) and libtorch's intra-op threads, so that the two never together ask
 * for more threads than there are cores.
 *
 * Each piece of CPU work holds tokens while it runs: a decode or resize task 1, a model call on the CPU as
 * many as libtorch's threads (`setThreads`), a model call on a GPU none (the decoder gets the cores).
 * Tokens are handed out first come, first served, so a model call waiting for its tokens is not
 * overtaken by later decodes, and decodes queued behind it wait for it. With the default (libtorch on
 * every core) decoding and the model take turns, each with every core: a pass then costs
 * decode core-seconds / cores + model time at full width, the lower bound when both scale with cores;
 * running them side by side instead makes each slower than alone (oversubscribed cores, and OpenMP
 * threads that spin while they wait take cycles from the decoder).
 *
 * `decodeThreads` (the flag `--decode-threads`) caps the decode threads that run at once; by default they
 * may take every core the model is not using. A batch decoded by the addon's own threads ({@link
 * CpuBudget.decodeWide}) holds one token per thread.
 *
 * JPEGs decoded on the addon's decoding pool ({@link CpuBudget.decodePooled}, where the OS has an idle
 * scheduling priority) hold no token: the pool's idle-priority threads run only on cores that no other
 * thread wants, so they decode in the gaps a forward pass leaves on the cores and hardly slow it down,
 * and its normal-priority threads run only while no model call runs on the CPU (the budget tells the pool,
 * {@link CpuBudget.onModelCalls}). Measured on 2 cores (a ResNet-18 forward loop with 2 threads beside a
 * decoding loop), the forward pass left about 0.6 of a core to idle-priority decoding threads and ran 5-8%
 * slower beside them; beside decoding threads of normal priority it ran 60-80% slower.
 *
 * When libtorch's thread count is not given (`--threads`) and images are not decoded on the pool, the
 * budget chooses it for evaluation passes (eval-mode forward calls) on a CPU by trial: successive such
 * calls alternate between every core and half of them (the rest left to decoding, side by side) until
 * each count has a few measurements; the
 * count whose median time per image from one call's end to the next (waiting for data included) is lower
 * is kept for the rest of the process. Alternating call by call gives both counts the same conditions (a
 * first pass that decodes, a later one that reads the cache); a gap that holds any other model call (a
 * training epoch between two evaluations, a gradient) is not measured. Fewer model threads win where decoding is a large share and the model
 * scales poorly across cores, or where other processes take cores. Training steps and gradients always
 * run with the fixed count (every core, or `--threads`): their reductions (batch statistics, the loss)
 * could round differently with another count, and a run's numbers must not depend on the machine's load.
 */
import { availableParallelism } from 'node:os';
import { UsageError } from './errors.js';

interface Waiter {
  n: number;
  decode: boolean;
  go: () => void;
}

/** A first-come-first-served pool of CPU tokens (see the module comment). */
export class CpuBudget {
  #free: number;
  #decoding = 0;
  #decodeCap: number;
  #torchThreads: number;
  #fixed: number;
  #applied: number | undefined;
  #apply: ((n: number) => void) | undefined;
  #trial: { candidates: number[]; at: number; perImage: number[][]; lastEnd: number | undefined } | undefined;
  /** The thread count the trial chose, with the seconds per image it measured for each candidate. */
  chosen: { threads: number; secondsPerImage: Record<number, number> } | undefined;
  readonly #queue: Waiter[] = [];
  /** Core-seconds spent in decode tasks (images decoded) and wall seconds in model calls since the last reset (for reports and benchmarks). */
  readonly spent = { decodeSeconds: 0, decodeTasks: 0, modelSeconds: 0, modelCalls: 0 };
  /** The most tokens held at once since the last reset (never above `cores`). */
  peak = 0;
  #cpuCalls = 0;
  #pooled = false;
  #onModelCalls: ((running: boolean) => void) | undefined;

  /**
   * @param cores tokens in the pool (default: every core this process may use, os.availableParallelism())
   * @param decodeThreads the most decode tasks at once (default: cores)
   * @throws UsageError when a count is not a positive integer
   */
  constructor(readonly cores: number = availableParallelism(), decodeThreads?: number) {
    if (!Number.isInteger(cores) || cores <= 0) throw new UsageError(`CPU budget: cores must be a positive integer, got ${cores}`);
    this.#free = cores;
    this.#decodeCap = this.#checkDecode(decodeThreads ?? cores);
    this.#torchThreads = cores;
    this.#fixed = cores;
  }

  /** libtorch's intra-op threads for evaluation passes now (the trial's current or chosen count). */
  get torchThreads(): number {
    return this.#torchThreads;
  }

  /** libtorch's threads for a model call: an eval-mode forward may use the trial's count, anything else the fixed one. */
  threadsFor(evalForward: boolean): number {
    return evalForward ? this.#torchThreads : this.#fixed;
  }

  /** libtorch's thread count as set last through the budget (what a batch resize runs with). */
  get appliedThreads(): number {
    return this.#applied ?? this.#fixed;
  }

  /** Sets libtorch's count to n (through the model layer's setter) when it is not n already. */
  applyThreads(n: number): void {
    if (n > 0 && n !== this.#applied) {
      this.#apply?.(n);
      this.#applied = n;
    }
  }

  /**
   * Fixes libtorch's thread count (the model layer's setThreads with a count): every call uses n, no trial.
   * `apply(n)` sets libtorch's count.
   * @throws UsageError when n is not a positive integer
   */
  setTorchThreads(n: number, apply?: (n: number) => void): void {
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--threads expects a positive integer, got '${n}'`);
    if (apply) this.#apply = apply;
    this.#torchThreads = n;
    this.#fixed = n;
    this.#trial = undefined;
    this.chosen = undefined;
    this.#applied = undefined;
    this.applyThreads(n);
  }

  /**
   * Lets the budget choose libtorch's thread count for evaluation passes by trial (see the module
   * comment), starting with every core; other calls use every core. `apply(n)` sets libtorch's count. A
   * trial already under way or done is kept.
   */
  adaptTorchThreads(apply: (n: number) => void): void {
    this.#apply = apply;
    this.#fixed = this.cores;
    if (this.#trial || this.chosen || this.#pooled) return;
    const candidates = [...new Set([this.cores, Math.ceil(this.cores / 2)])];
    this.#torchThreads = candidates[0];
    this.applyThreads(this.cores);
    if (candidates.length > 1) this.#trial = { candidates, at: 0, perImage: candidates.map(() => []), lastEnd: undefined };
  }

  /**
   * One model call ended (CPU calls during a trial): `images` > 0 for an eval-mode forward with the trial's
   * current count, 0 for any other call (its time is not the trial's: the next gap is not measured).
   */
  #noteCall(images: number): void {
    const t = this.#trial;
    if (!t) return;
    if (images <= 0) {
      t.lastEnd = undefined;
      return;
    }
    const now = performance.now();
    const last = t.lastEnd;
    t.lastEnd = now;
    if (last !== undefined && t.perImage[t.at].length < TRIAL_CALLS) t.perImage[t.at].push((now - last) / 1000 / images);
    if (t.perImage.some((xs) => xs.length < TRIAL_CALLS)) {
      // the next call with the other count (the one still short of measurements)
      t.at = (t.at + 1) % t.candidates.length;
      if (t.perImage[t.at].length >= TRIAL_CALLS) t.at = (t.at + 1) % t.candidates.length;
      this.#torchThreads = t.candidates[t.at];
      return;
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const secondsPerImage: Record<number, number> = {};
    let best = 0;
    t.candidates.forEach((c, i) => {
      secondsPerImage[c] = median(t.perImage[i]);
      if (secondsPerImage[c] < secondsPerImage[t.candidates[best]]) best = i;
    });
    this.chosen = { threads: t.candidates[best], secondsPerImage };
    this.#trial = undefined;
    this.#torchThreads = t.candidates[best];
  }

  #checkDecode(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--decode-threads expects a positive integer, got '${n}'`);
    return n;
  }

  /** The most decode tasks at once. */
  get decodeThreads(): number {
    return this.#decodeCap;
  }

  /** Sets the most decode tasks at once (`--decode-threads`). @throws UsageError when n is not a positive integer */
  setDecodeThreads(n: number): void {
    this.#decodeCap = this.#checkDecode(n);
    this.#pump();
  }

  /** Tokens free now. */
  get free(): number {
    return this.#free;
  }

  #fits(w: Waiter): boolean {
    return w.n <= this.#free && (!w.decode || this.#decoding + w.n <= this.#decodeCap);
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#fits(this.#queue[0])) {
      const w = this.#queue.shift()!;
      this.#free -= w.n;
      if (w.decode) this.#decoding += w.n;
      this.peak = Math.max(this.peak, this.cores - this.#free);
      w.go();
    }
  }

  async #acquire(n: number, decode: boolean): Promise<number> {
    const k = Math.min(Math.max(0, Math.floor(n)), this.cores);
    if (k === 0) return 0;
    const w: Waiter = { n: k, decode, go: () => undefined };
    if (this.#queue.length === 0 && this.#fits(w)) {
      this.#free -= k;
      if (decode) this.#decoding += k;
      this.peak = Math.max(this.peak, this.cores - this.#free);
      return k;
    }
    await new Promise<void>((go) => {
      w.go = go;
      this.#queue.push(w);
    });
    return k;
  }

  #release(k: number, decode: boolean): void {
    this.#free += k;
    if (decode) this.#decoding -= k;
    this.#pump();
  }

  /** Runs one decode task (1 token) within the budget; its wall time counts as decode core-seconds. */
  async decode<T>(f: () => Promise<T>): Promise<T> {
    const k = await this.#acquire(1, true);
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      this.spent.decodeSeconds += (performance.now() - t0) / 1000;
      this.spent.decodeTasks += 1;
      this.#release(k, true);
    }
  }

  /**
   * Runs the decoding of `images` images spread over threads of its own (the addon's batch decoder): waits
   * for one decode token (first come, first served), then also takes the tokens free at that moment, up to
   * `images` and the decode cap, unless someone is waiting for them; `f` gets the count. Its wall time
   * times the count counts as decode core-seconds, and it counts as `images` decode tasks.
   */
  async decodeWide<T>(images: number, f: (threads: number) => Promise<T>): Promise<T> {
    const most = Math.max(1, Math.floor(images));
    let k = await this.#acquire(1, true);
    if (this.#queue.length === 0) {
      const extra = Math.max(0, Math.min(this.#free, this.#decodeCap - this.#decoding, most - k));
      this.#free -= extra;
      this.#decoding += extra;
      k += extra;
      this.peak = Math.max(this.peak, this.cores - this.#free);
    }
    const t0 = performance.now();
    try {
      return await f(k);
    } finally {
      this.spent.decodeSeconds += ((performance.now() - t0) / 1000) * k;
      this.spent.decodeTasks += most;
      this.#release(k, true);
    }
  }

  /**
   * Runs the decoding of `images` images on the addon's decoding pool (see the module comment): holds no
   * token; `f` gets the decode thread cap, and the CPU seconds it reports count as decode core-seconds. It
   * counts as `images` decode tasks.
   */
  async decodePooled<T extends { cpuSeconds: number }>(images: number, f: (threads: number) => Promise<T>): Promise<T> {
    const r = await f(this.#decodeCap);
    this.spent.decodeSeconds += r.cpuSeconds;
    this.spent.decodeTasks += Math.max(1, Math.floor(images));
    return r;
  }

  /**
   * Tells `hook` whether model calls run on the CPU: true when the first of them starts, false when the last
   * ends, and at once with the current state (the decoding pool's normal-priority threads decode while none
   * runs). One hook per budget; a later one replaces it.
   */
  onModelCalls(hook: (running: boolean) => void): void {
    this.#onModelCalls = hook;
    hook(this.#cpuCalls > 0);
  }

  /**
   * Says that images are decoded on the decoding pool ({@link CpuBudget.decodePooled}): decoding then takes
   * only what the model leaves, so evaluation passes use libtorch's fixed count (every core, or
   * `--threads`) and no thread trial runs (one under way ends).
   */
  decodingInBackground(): void {
    this.#pooled = true;
    if (this.#trial) {
      this.#trial = undefined;
      this.#torchThreads = this.#fixed;
    }
  }

  /**
   * Runs one model call (or a batch resize on libtorch's threads) holding `threads` tokens (0 for a GPU
   * call). `o.apply`: set libtorch's count to `threads` when the call starts (CPU model calls);
   * `o.images`: the batch size of an eval-mode forward, which feeds the thread trial.
   */
  async compute<T>(threads: number, f: () => Promise<T>, o: { apply?: boolean; images?: number } = {}): Promise<T> {
    const k = await this.#acquire(threads, false);
    const t0 = performance.now();
    const cpu = threads > 0;
    try {
      if (cpu && this.#cpuCalls++ === 0) this.#onModelCalls?.(true);
      if (o.apply) this.applyThreads(threads);
      return await f();
    } finally {
      this.spent.modelSeconds += (performance.now() - t0) / 1000;
      this.spent.modelCalls += 1;
      this.#release(k, false);
      if (cpu && --this.#cpuCalls === 0) this.#onModelCalls?.(false);
      if (threads > 0) this.#noteCall(o.images ?? 0);
    }
  }

  /** Zeroes `spent` and `peak`. */
  resetSpent(): void {
    Object.assign(this.spent, { decodeSeconds: 0, decodeTasks: 0, modelSeconds: 0, modelCalls: 0 });
    this.peak = 0;
  }
}

/** Calls measured per candidate thread count. */
const TRIAL_CALLS = 3;

let budget: CpuBudget | undefined;

/**
 * The environment variable through which a parent process gives a child its share of the cores (a sweep's
 * worker processes each get cores / workers); absent, a process has every available core.
 */
export const CORES_ENV = 'SPURMEM_CPU_CORES';

/** The cores this process may use: its share from {@link CORES_ENV} when a parent set one, else os.availableParallelism(). */
export function processCores(): number {
  const v = Number(process.env[CORES_ENV]);
  return Number.isInteger(v) && v > 0 ? Math.min(v, availableParallelism()) : availableParallelism();
}

/** The process's CPU budget (created on first use with {@link processCores} cores). */
export function cpuBudget(): CpuBudget {
  budget ??= new CpuBudget(processCores());
  return budget;
}

/**
 * The environment of a child process that gets `share` of `of` parts of this process's cores (at least 1):
 * a sweep's N workers each get cores / N, so that together they do not ask for more threads than there are cores.
 */
export function childCoresEnv(of: number, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, [CORES_ENV]: String(Math.max(1, Math.floor(cpuBudget().cores / Math.max(1, of)))) };
}
