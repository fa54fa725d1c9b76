/**
 * Atomic file writes: write to a temporary file in the same folder, flush it, rename it over the target.
 * A reader never sees a half-written file, and an interrupted run leaves the previous version intact.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync, appendFileSync } from 'node:fs';
import { SpurmemError } from './errors.js';
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/.lock` for this process (its pid inside), so that two processes do not run the same work
 * in one folder at once; a lock whose process is gone is taken over. Returns the function that releases it.
 * @throws SpurmemError naming the folder and the process that holds the lock
 */
export function lockFolder(dir: string, what: string): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = 0;
      try {
        pid = Number(readFileSync(path, 'utf8').trim());
      } catch {
        /* removed meanwhile */
      }
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw new SpurmemError(`${dir}: another ${what} (process ${pid}) is running in this folder; wait for it to end (or remove ${path} if that process is not spurmem)`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new SpurmemError(`${path}: could not take the lock`);
}
