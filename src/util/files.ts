/**
 * Atomic file writes: write to a temporary file in the same folder, flush it, rename it over the target.
 * A reader never sees a half-written file, and an interrupted run leaves the previous version intact.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync, appendFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

let counter = 0;

const watched = new Set<string>();

/**
 * Registers a folder that this process writes checkpoints into: if the process is interrupted
 * (SIGINT, SIGTERM), {@link removeOwnTempFiles} deletes the temporary files it had not yet renamed.
 */
export function watchTempFiles(dir: string): void {
  watched.add(dir);
}

/** Deletes this process's unrenamed temporary files (`*.tmp-<pid>-<n>`) in the watched folders. */
export function removeOwnTempFiles(): void {
  const mark = `.tmp-${process.pid}-`;
  for (const dir of watched) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of names) if (f.includes(mark)) rmSync(join(dir, f), { force: true });
  }
}

/** Writes `data` to `path` atomically (temporary file + fsync + rename). Creates the folder. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${counter++}`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** Writes pretty JSON atomically, with a final newline. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** Appends one JSON line (a whole line per call; the write is a single append). */
export function appendJsonLine(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  appendFileSync(path, JSON.stringify(value) + '\n');
}
