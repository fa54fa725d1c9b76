#!/usr/bin/env node
// Compares the output folders of two runs of the same sweep (or study), e.g. before and after a change
// that should not change any result: every file of one must be in the other, JSON files equal but for
// wall-clock times and the folder paths, every other file (result.csv, the original's text files,
// sweep.csv, SVG and PNG plots, contact sheets) byte for byte once the folder paths are replaced.
//
//   node bench/compare-sweeps.mjs A_FOLDER B_FOLDER      (exit status 1 when a file differs)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const [a, b] = process.argv.slice(2).map((d) => d && resolve(d));
if (!a || !b) {
  console.error('usage: node bench/compare-sweeps.mjs A_FOLDER B_FOLDER');
  process.exit(2);
}
// fields that hold wall-clock times, and the configuration file a sweep was started with
const CLOCK = new Set(['seconds', 'timing', 'time', 'config_file']);
const [long, short] = a.length >= b.length ? [a, b] : [b, a];
const paths = (text) => text.split(long).join('<folder>').split(short).join('<folder>');
const strip = (x) => {
  if (Array.isArray(x)) return x.map(strip);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).filter(([k]) => !CLOCK.has(k)).map(([k, v]) => [k, strip(v)]));
  return typeof x === 'string' ? paths(x) : x;
};
const files = (d) => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)]));
const list = (d) => files(d).map((f) => relative(d, f)).filter((f) => !f.endsWith('.lock')).sort();
const fa = list(a);
const fb = list(b);
let differ = 0;
for (const f of fa.filter((x) => !fb.includes(x))) (differ++, console.log(`only in ${a}: ${f}`));
for (const f of fb.filter((x) => !fa.includes(x))) (differ++, console.log(`only in ${b}: ${f}`));
const configs = new Set(['sweep-config.json', 'sweep-plan.json']);
for (const f of fa.filter((x) => fb.includes(x))) {
  const x = readFileSync(join(a, f));
  const y = readFileSync(join(b, f));
  let same;
  if (f.endsWith('.json')) {
    // the frozen configuration and plan name the configuration file and the output folder
    const norm = (buf) => JSON.stringify(strip(JSON.parse(buf.toString('utf8'))));
    same = configs.has(f.split('/').pop()) ? true : norm(x) === norm(y);
  } else if (/\.(csv|txt|svg)$/.test(f)) same = paths(x.toString('utf8')) === paths(y.toString('utf8'));
  else same = x.equals(y);
  if (!same) {
    differ++;
    console.log(`differs: ${f}`);
  }
}
console.log(`${fa.length} files compared, ${differ} differ`);
process.exitCode = differ ? 1 : 0;
