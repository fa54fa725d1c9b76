/**
 * A small seeded pseudo-random generator for everything spurmem draws in TypeScript (shuffling,
 * augmentation parameters, the demo dataset). Deterministic across platforms: 32-bit integer arithmetic
 * only, so the same seed gives the same stream everywhere.
 */

/** Mixes 32-bit words into one (a murmur3-style finaliser over each word). */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9 ^ words.length;
  for (const w0 of words) {
    let w = Math.imul((w0 | 0) ^ Math.floor(w0 / 0x100000000), 0xcc9e2d51);
    w = (w << 15) | (w >>> 17);
    w = Math.imul(w, 0x1b873593);
    h ^= w;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * sfc32 generator seeded through {@link mixSeed}; `new Rng(seed, epoch, i)` gives an independent stream
 * for every combination of its words.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(...seed: number[]) {
    this.a = mixSeed(...seed, 1);
    this.b = mixSeed(...seed, 2);
    this.c = mixSeed(...seed, 3);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** The generator's state, the words a, b, c, d (for native code that continues the same stream). */
  state(): Uint32Array {
    return Uint32Array.of(this.a, this.b, this.c, this.d);
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.u32() >>> 5;
    const lo = this.u32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** A uniform integer in [lo, hi) (hi exclusive, like torch.randint). */
  int(lo: number, hi: number): number {
    if (hi <= lo) throw new RangeError(`Rng.int: empty range [${lo}, ${hi})`);
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /** A standard normal draw (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}
