/**
 * The multi-process backend: one child process per device (or N on the CPU). Each child loads the base
 * once (src/sweep/worker-main.ts) and asks for the next setting when it is done, so the queue is shared and a
 * slow setting holds up one worker only. A worker that dies marks the setting it was running as failed.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../native.js';
import type { StudyBaseInput } from '../neurons/study.js';
import { childCoresEnv } from '../util/cpu-budget.js';
import { SpurmemError } from '../util/errors.js';
import { writeJsonAtomic } from '../util/files.js';
import type { PlannedSetting } from './config.js';
import { settingFolder } from './report.js';
import type { SettingOutcome } from './run-setting.js';

/** Messages from the parent to a worker. */
export type ToWorker = { type: 'init'; base: StudyBaseInput; out: string } | { type: 'run'; setting: PlannedSetting } | { type: 'stop' };
/** Messages from a worker to the parent. */
export type FromWorker = { type: 'ready' } | { type: 'fatal'; message: string } | { type: 'done'; outcome: SettingOutcome };

/** The compiled worker entry (dist/src/sweep/worker-main.js), also when this module runs from the TypeScript sources. */
export function workerScript(): string {
  const here = fileURLToPath(new URL('./worker-main.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = join(packageRoot(), 'dist', 'src', 'sweep', 'worker-main.js');
  if (existsSync(built)) return built;
  throw new SpurmemError(`${built}: missing; build the package first (npm run build:ts)`);
}

/**
 * Runs the settings on worker processes, one per entry of `devices`, each with `threads` libtorch threads and
 * a CPU budget of cores / workers.
 * @throws SpurmemError when no worker could load the base (with the first worker's reason)
 */
export async function runWorkers(o: {
  base: StudyBaseInput;
  out: string;
  devices: string[];
  threads: number;
  settings: PlannedSetting[];
  log: (line: string) => void;
}): Promise<void> {
  const queue = [...o.settings];
  const total = queue.length;
  let done = 0;
  let ready = 0;
  const fatal: string[] = [];
  const script = workerScript();
  await Promise.all(
    o.devices.map(
      (device, w) =>
        new Promise<void>((resolveWorker) => {
          const name = `worker ${w} (${device})`;
          // each worker's CPU budget is its share of the cores
          const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: childCoresEnv(o.devices.length) });
          let current: PlannedSetting | null = null;
          const send = (m: ToWorker) => {
            if (child.connected) child.send(m);
          };
          const next = () => {
            current = queue.shift() ?? null;
            send(current ? { type: 'run', setting: current } : { type: 'stop' });
          };
          child.on('message', (m: FromWorker) => {
            if (m.type === 'ready') {
              ready += 1;
              next();
            } else if (m.type === 'fatal') {
              fatal.push(`${name}: ${m.message}`);
              o.log(`${name}: could not load the base: ${m.message}`);
            } else if (m.type === 'done') {
              current = null;
              done += 1;
              o.log(`[${done}/${total}] ${name}: ${m.outcome.line}`);
              next();
            }
          });
          let finished = false;
          child.on('error', (e) => {
            // a process that could not start emits 'error' and maybe no 'exit'
            fatal.push(`${name}: ${e.message}`);
            if (child.pid === undefined && !finished) {
              finished = true;
              resolveWorker();
            }
          });
          child.on('exit', (code, signal) => {
            if (finished) return;
            finished = true;
            if (current) {
              const p: PlannedSetting = current;
              const message = `${name} exited (${signal ?? `code ${code}`}) while running this setting`;
              writeJsonAtomic(join(settingFolder(o.out, p.key), 'error.json'), { index: p.index, key: p.key, message, time: new Date().toISOString() });
              done += 1;
              o.log(`[${done}/${total}] ${name}: #${p.index} ${p.key}: FAILED: ${message}`);
              current = null;
            }
            resolveWorker();
          });
          send({ type: 'init', base: { ...o.base, device, threads: o.threads }, out: o.out });
        }),
    ),
  );
  if (ready === 0) throw new SpurmemError(`no sweep worker could start: ${fatal[0] ?? 'unknown reason'}`);
  if (queue.length > 0) o.log(`${queue.length} setting(s) were not run: every worker stopped`);
}
