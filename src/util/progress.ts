/**
 * Progress display, the one module for it: cli-progress bars on stderr when it is a TTY, nothing
 * otherwise (the caller prints one line per epoch). SPURMEM_PROGRESS=0 turns bars off, =1 forces them,
 * for both kinds of bar: {@link progress} (images/s and ETA, for training and evaluation loops) and
 * {@link progressBar} (done/total and time left, for the commands that report through a callback).
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Adds `n` finished items; `fields` fill the bar's extra columns (e.g. loss). */
  tick(n: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/** Whether bars are drawn: SPURMEM_PROGRESS=0 no, =1 yes, else when stderr is a TTY. */
export function barsEnabled(): boolean {
  if (process.env.SPURMEM_PROGRESS === '0') return false;
  if (process.env.SPURMEM_PROGRESS === '1') return true;
  return Boolean(process.stderr.isTTY);
}

/** A bar over `total` images labelled `label`. */
export function progress(label: string, total: number): Progress {
  if (!barsEnabled()) return { tick() {}, stop() {} };
  const start = Date.now();
  let done = 0;
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {value}/{total} {rate} img/s ETA {eta_formatted} {info}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { rate: '0', info: '' });
  return {
    tick(n, fields) {
      done += n;
      const rate = done / Math.max((Date.now() - start) / 1000, 1e-3);
      const info = fields ? Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' ') : '';
      bar.update(done, { rate: rate.toFixed(1), info });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * A progress callback `(done, total)` and a `stop()`, for commands that learn the total with the first
 * update (`spurmem data`, `spurmem eval`); a no-op when bars are off (see {@link barsEnabled}).
 */
export function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  if (!barsEnabled()) return { update: () => undefined, stop: () => undefined };
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { format: `${label} [{bar}] {value}/{total} {percentage}% | {eta_formatted} left`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}
