/**
 * Progress display: a cli-progress bar with images/s and ETA on a TTY, nothing otherwise (the caller
 * prints one line per epoch). SPURMEM_PROGRESS=0 turns bars off, =1 forces them.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Adds `n` finished items; `fields` fill the bar's extra columns (e.g. loss). */
  tick(n: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

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
