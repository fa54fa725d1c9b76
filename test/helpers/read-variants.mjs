// Child process of the checkpoint fuzz test: reads checkpoint files one after another with the addon and
// prints one JSON line per file, so that the parent test can see a crash (this process dies), a hang (no
// line within the deadline) or a large allocation (peak RSS) and name the file that caused it.
//
//   node read-variants.mjs MANIFEST.json START
//
// MANIFEST.json holds an array of file paths. Output lines:
//   {"ready": true}                                              once the addon is loaded
//   {"i": 12, "ok": true, "entries": 3, "peakKB": 120, "ms": 0.4}   file 12 read (entries() and toObject() work)
//   {"i": 13, "ok": false, "error": true, "message": "...", "peakKB": 4, "ms": 0.2}   file 13 rejected
// peakKB is the growth of the peak resident set size during the read (Linux clear_refs / VmHWM).
import { readFileSync, writeFileSync } from 'node:fs';
import { addon } from '../../dist/src/native.js';

const [manifestPath, startArg] = process.argv.slice(2);
const files = JSON.parse(readFileSync(manifestPath, 'utf8'));
const start = Number(startArg ?? 0);

function status() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
let canReset = true;
function resetPeak() {
  if (!canReset) return;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    canReset = false;
  }
}

// SPURMEM_FUZZ_SELFTEST=crash=I,hang=J,alloc=K makes this process die, stall or allocate 320 MB at those
// files, so that the test can check that it notices each.
const selftest = Object.fromEntries((process.env.SPURMEM_FUZZ_SELFTEST ?? '').split(',').filter(Boolean).map((kv) => {
  const [k, v] = kv.split('=');
  return [k, Number(v)];
}));
let ballast;

const a = addon();
a.setNumThreads(1);
process.stdout.write(JSON.stringify({ ready: true }) + '\n');

for (let i = start; i < files.length; i++) {
  resetPeak();
  const before = status();
  const t0 = performance.now();
  let line;
  if (selftest.crash === i) process.kill(process.pid, 'SIGSEGV');
  if (selftest.hang === i) for (;;);
  if (selftest.alloc === i) ballast = Buffer.alloc(320 << 20, 1);
  try {
    const ck = await a.readCheckpoint(files[i]);
    // what `spurmem inspect` does with a file that was read
    const entries = ck.entries();
    ck.toObject([]);
    // the values too, unless a mutated shape describes a huge (stride-0, expanded) tensor
    const elements = entries.reduce((n, e) => n + (e.shape ?? []).reduce((x, y) => x * y, 1), 0);
    if (elements <= 1 << 22) ck.toObject([], true);
    line = { i, ok: true, entries: entries.length };
  } catch (e) {
    line = { i, ok: false, error: e instanceof Error, message: e instanceof Error ? e.message : String(e) };
  }
  const after = status();
  line.ms = performance.now() - t0;
  line.peakKB = Math.max(0, (canReset ? after.hwm : after.rss) - before.rss);
  ballast = undefined;
  process.stdout.write(JSON.stringify(line) + '\n');
}
