// Shared by the benchmarks: the package's compiled modules, Debian's python3 with torch (as a child
// process or a line-by-line server), the ResNet-50 weight files, a cached set of Waterbirds-sized JPEGs
// made from the demo data, medians and flags.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoDir = join(benchDir, '..');
export const workDir = join(benchDir, '.work');

export async function dist(module) {
  const p = join(repoDir, 'dist', 'src', module);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`npm run build:ts\` first`);
  return import(p);
}

/** The interpreter with torch (same as pythonBin). */
export function python() {
  return pythonBin();
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
    const { makeDemoDataset } = await dist('data/fashion-waterbirds.js');
    process.stderr.write(`making ${root} ...\n`);
    await makeDemoDataset({ out: root, scale, width, height, seed: 1, force: true });
  }
  return root;
}

/** The interpreter with torch: $SPURMEM_PYTHON, else Debian's /usr/bin/python3, else python3. */
export function pythonBin() {
  if (process.env.SPURMEM_PYTHON) return process.env.SPURMEM_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Runs a Python script of bench/ to the end and returns its stdout. */
export function pythonScript(script, args, env = {}) {
  return execFileSync(pythonBin(), [join(benchDir, script), ...args.map(String)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/**
 * Starts a Python script of bench/ that answers one line of stdout per line of stdin (after a first
 * "ready" line). Returns ask(line) -> Promise<answer line> and close().
 */
export async function pythonServer(script, args = [], env = {}) {
  const child = spawn(pythonBin(), [join(benchDir, script), ...args.map(String)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  const queued = [];
  lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : queued.push(l)));
  const next = () => new Promise((resolve) => (queued.length ? resolve(queued.shift()) : waiting.push(resolve)));
  const exited = new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`${script} exited (${code})`))));
  exited.catch(() => {});
  const first = await Promise.race([next(), exited]);
  if (first !== 'ready') throw new Error(`${script}: unexpected first line '${first}'`);
  return {
    ask: (line) => {
      child.stdin.write(line + '\n');
      return Promise.race([next(), exited]);
    },
    close: () => child.stdin.end(),
  };
}

/** bench/.work/resnet50.{zip,legacy}.pth, written by torch.save once (bench/weights.py). */
export function resnet50Weights() {
  const files = { zip: join(workDir, 'resnet50.zip.pth'), legacy: join(workDir, 'resnet50.legacy.pth') };
  if (!existsSync(files.zip) || !existsSync(files.legacy)) {
    mkdirSync(workDir, { recursive: true });
    process.stderr.write('writing ResNet-50 weights with torch.save (bench/weights.py)...\n');
    pythonScript('weights.py', [workDir]);
  }
  return files;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `--name value` from argv, else the default. */
export function flag(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

/** One line about the machine's load, so that noisy figures can be recognised. */
export async function loadNote() {
  const { loadavg, availableParallelism } = await import('node:os');
  return `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} CPUs`;
}
