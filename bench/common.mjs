// Helpers shared by the benchmarks: Debian's python3 with PyTorch as a child process, the ResNet-50
// weight files, medians, flags.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const workDir = join(benchDir, '.work');

/** The interpreter with torch: $SPURMEM_PYTHON, else Debian's /usr/bin/python3, else python3. */
export function pythonBin() {
  if (process.env.SPURMEM_PYTHON) return process.env.SPURMEM_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Runs a Python script of bench/ to the end and returns its stdout. */
export function python(script, args, env = {}) {
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
    python('weights.py', [workDir]);
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
