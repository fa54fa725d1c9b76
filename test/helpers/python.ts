/**
 * Runs Debian's python3 with PyTorch (python3-torch, python3-torchvision) for reference computations.
 * SPURMEM_PYTHON overrides the interpreter.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const testDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = join(testDir, '..');
export const fixturesDir = join(testDir, '.fixtures');

/** The interpreter that has torch: $SPURMEM_PYTHON, else /usr/bin/python3 (Debian's), else python3. */
export function pythonBin(): string {
  if (process.env.SPURMEM_PYTHON) return process.env.SPURMEM_PYTHON;
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  return 'python3';
}

/** Runs a Python script file with arguments; returns stdout. Throws with stderr on failure. */
export function runPython(script: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(pythonBin(), [script, ...args], {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PYTHONHASHSEED: '0', OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
  });
  if (r.status !== 0) {
    throw new Error(`python ${script} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  }
  return r.stdout;
}

/** Runs inline Python code; returns stdout. */
export function pythonCode(code: string, timeoutMs = 600_000): string {
  return execFileSync(pythonBin(), ['-c', code], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
  });
}
