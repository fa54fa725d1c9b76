/**
 * How a training command (train, finetune-prune) starts: its callbacks, and resuming from the checkpoint
 * of the last finished epoch. (libtorch's thread count is set by the model layer's setThreads.)
 */
import { readCheckpoint } from '../checkpoint.js';
import { readCheckpointMeta } from '../checkpoint-meta.js';
import { loadWeights, type Model } from '../model/index.js';
import type { RunDir } from './run-dir.js';
import type { SchedulerState } from './schedule.js';

/** Callbacks of the long-running commands (train, finetune-prune). */
export interface RunHooks {
  /** One line of progress text (default: stderr). */
  log?: (line: string) => void;
  /**
   * Stops the run at the next batch or after the epoch's evaluation (a sweep aborts it on SIGTERM): the
   * epoch in progress is dropped, every finished epoch is on disk (its checkpoint, then its metrics line,
   * each written atomically), and the command rejects with a {@link RunInterrupted} naming the last complete epoch; `--resume` continues
   * after it with the same numbers as a run that was never stopped.
   */
  signal?: AbortSignal;
}

/**
 * Restores a run for --resume from the checkpoint of epoch `start - 1`: model weights (strictly),
 * optimizer state, and returns the scheduler state; metrics.jsonl is cut back to that epoch.
 * @throws SpurmemError when the checkpoint does not fit the model.
 */
export async function resumeRun(model: Model, run: RunDir, start: number, log: (l: string) => void): Promise<SchedulerState | undefined> {
  const ck = await readCheckpoint(run.checkpoint(start - 1));
  await loadWeights(model, ck, { strict: true, path: ['model_state_dict'] });
  model.loadOptimizerState({ checkpoint: ck, path: ['optimizer_state_dict'] });
  const state = readCheckpointMeta(ck).scheduler as SchedulerState | undefined;
  run.truncate(start - 1);
  log(`resuming ${run.dir} after epoch ${start - 1}`);
  return state;
}
