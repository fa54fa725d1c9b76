/**
 * Options and helpers shared by every command.
 */
import { Option } from 'commander';
import { UsageError } from '../util/errors.js';

/** Parses a positive integer flag value. */
export function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} expects a positive integer, got '${v}'`);
    return n;
  };
}

/** Parses a non-negative integer flag value. */
export function nonNegativeInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} expects a non-negative integer, got '${v}'`);
    return n;
  };
}

/** Parses a finite number flag value. */
export function finiteNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} expects a number, got '${v}'`);
    return n;
  };
}

export function deviceOption(): Option {
  return new Option('--device <device>', 'cpu, cuda or cuda:N').default('cpu');
}

export function threadsOption(): Option {
  return new Option('--threads <n>', 'CPU threads for libtorch (default: all cores)').argParser(positiveInt('--threads'));
}
