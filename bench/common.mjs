// Shared by the benchmarks: the package's compiled modules, Debian's python3 with torch, and a cached
// set of Waterbirds-sized JPEGs made from the demo data.
import { existsSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoDir = join(benchDir, '..');
export const workDir = join(benchDir, '.work');

export async function dist(module) {
  const p = join(repoDir, 'dist', 'src', module);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm run build:ts\` first`);
  return import(p);
}

export function python() {
  return process.env.SPURMEM_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** Runs Python code with arguments; returns its stdout. */
export function runPython(code, args = []) {
  const r = spawnSync(python(), ['-c', code, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return r.stdout;
}

/** A Fashion-Waterbirds folder of W x H JPEGs at the given scale, made once under bench/.work/. */
export async function demoJpegs(width, height, scale) {
  const root = join(workDir, `demo-${width}x${height}-${scale}`);
  if (!existsSync(join(root, 'metadata.csv'))) {
    mkdirSync(workDir, { recursive: true });
    const { makeDemoDataset } = await dist('data/demo.js');
    process.stderr.write(`making ${root} ...\n`);
    await makeDemoDataset({ out: root, scale, width, height, seed: 1, force: true });
  }
  return root;
}
