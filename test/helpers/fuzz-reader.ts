/**
 * The child reader of the checkpoint fuzz tests: every file is read by test/helpers/read-variants.mjs in a
 * child process, so that a crash is seen as the child's death and pinned on the file being read; a read
 * that gives no answer within READ_DEADLINE_MS is a hang; the child reports the growth of its peak RSS
 * during each read.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoDir, testDir } from './python.js';

export const READ_DEADLINE_MS = 5_000;
export const PEAK_LIMIT_KB = 256 * 1024;

// ---- the child reader -------------------------------------------------------------------------------

export interface ReadResult {
  i: number;
  ok?: boolean;
  error?: boolean;
  message?: string;
  peakKB?: number;
  ms?: number;
  crash?: string;
  hang?: boolean;
}

/** The child imports the compiled package (dist/); compiles it when it is missing or older than src/. */
export function ensureDist(): void {
  const out = join(repoDir, 'dist', 'src', 'native.js');
  const src = join(repoDir, 'src', 'native.ts');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return;
  execFileSync(process.execPath, [join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoDir, 'tsconfig.json')], { stdio: 'inherit' });
}

/**
 * Reads every file in a child process; restarts the child after a crash or a hang, pinned on the file it
 * was reading, and goes on with the next one. `env` is passed to the child (self-tests use it).
 */
export async function readInChild(files: string[], dir: string, env: Record<string, string> = {}, deadlineMs = READ_DEADLINE_MS): Promise<ReadResult[]> {
  const manifest = join(dir, `manifest-${Date.now()}.json`);
  writeFileSync(manifest, JSON.stringify(files));
  const results: ReadResult[] = new Array(files.length);
  let next = 0;
  while (next < files.length) {
    next = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [join(testDir, 'helpers', 'read-variants.mjs'), manifest, String(next)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      let current = next;
      let ready = false;
      let last = Date.now();
      let hung = false;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      createInterface({ input: child.stdout }).on('line', (l) => {
        last = Date.now();
        let r: ReadResult & { ready?: boolean };
        try {
          r = JSON.parse(l) as ReadResult & { ready?: boolean };
        } catch {
          return;
        }
        if (r.ready) {
          ready = true;
          return;
        }
        results[r.i] = r;
        current = r.i + 1;
      });
      const timer = setInterval(() => {
        const limit = ready ? deadlineMs : 60_000;
        if (Date.now() - last > limit) {
          hung = true;
          child.kill('SIGKILL');
        }
      }, 100);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearInterval(timer);
        if (current >= files.length) return resolve(current);
        if (!ready && !hung) return reject(new Error(`the fuzz reader did not start (${code ?? signal}):\n${stderr}`));
        if (hung) results[current] = { i: current, hang: true };
        else results[current] = { i: current, crash: `${signal ?? `exit ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
        resolve(current + 1);
      });
    });
  }
  return results;
}

