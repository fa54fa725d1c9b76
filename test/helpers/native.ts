/** Test helpers around the addon and the fixtures. */
import { join } from 'node:path';
import { addon, type NativeCheckpoint, type TensorData } from '../../src/native.js';
import { fixturesDir } from './python.js';

export const pthDir = join(fixturesDir, 'pth');

export function fixture(name: string): string {
  return join(pthDir, name);
}

export async function read(name: string): Promise<NativeCheckpoint> {
  return addon().readCheckpoint(name.startsWith('/') ? name : fixture(name));
}

/** Largest absolute difference between two arrays of numbers. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** max|a-b| / max(max|b|, tiny): the relative error of a whole tensor. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / Math.max(scale, 1e-12);
}

export function numbers(t: TensorData): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}
