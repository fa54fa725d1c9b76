/**
 * Training lists of the sampling baselines: group subsampling (SubpopBench's SUBG) and JTT's upsampled
 * error set (anniesch/jtt). Both return samples of the training split; the epoch loop shuffles them.
 */
import type { Sample } from '../data/types.js';
import { Rng } from '../util/random.js';
import { SpurmemError } from '../util/errors.js';

/**
 * SubpopBench's SUBG: walks a seeded random permutation of the training split and keeps a sample while its
 * group holds fewer than the smallest group's count, so every group present keeps exactly min_g samples.
 * The draw depends on (seed, draw) only; SUBG draws once per run (draw 0).
 * @returns the kept samples, in the split's order
 * @throws SpurmemError for an empty split
 */
export function subsampleGroups(samples: readonly Sample[], seed: number, draw = 0): Sample[] {
  if (samples.length === 0) throw new SpurmemError('subsample: the training split is empty');
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s.group, (counts.get(s.group) ?? 0) + 1);
  const min = Math.min(...counts.values());
  const order = new Rng(seed, draw, 0x5b6).shuffle(Array.from(samples.keys()));
  const taken = new Map<number, number>();
  const keep = new Uint8Array(samples.length);
  for (const i of order) {
    const g = samples[i].group;
    const t = taken.get(g) ?? 0;
    if (t < min) {
      taken.set(g, t + 1);
      keep[i] = 1;
    }
  }
  return samples.filter((_, i) => keep[i] === 1);
}

/**
 * JTT's training split for the final model: every sample once, then `upweight - 1` more copies of each
 * sample of the error set (so an error-set sample appears `upweight` times, as the reference's upsampled
 * dataset does).
 * @param errorSet positions in `samples` of the samples the identification model got wrong
 * @throws SpurmemError for a position outside the split
 */
export function upsampleErrorSet(samples: readonly Sample[], errorSet: readonly number[], upweight: number): Sample[] {
  const out = [...samples];
  for (let r = 1; r < upweight; r++) {
    for (const i of errorSet) {
      if (!(i >= 0 && i < samples.length)) throw new SpurmemError(`jtt: error-set position ${i} outside the training split (${samples.length} samples)`);
      out.push(samples[i]);
    }
  }
  return out;
}
