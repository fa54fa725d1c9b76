/**
 * Makes the test fixtures once per change of their generator scripts: each test/fixtures/make_*.py
 * writes into test/.fixtures/<name>/ and the folder is stamped with the script's hash.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir, runPython, testDir } from '../helpers/python.js';

/**
 * The BLAS that libblas.so.3 points to: PyTorch (making the fixtures) and the addon (under test) both use
 * it, and results after optimiser steps are compared to 1e-4, so fixtures made with another BLAS are
 * made again.
 */
function blasIdentity(): string {
  for (const p of ['/usr/lib/x86_64-linux-gnu/libblas.so.3', '/usr/lib/aarch64-linux-gnu/libblas.so.3']) {
    try {
      return realpathSync(p);
    } catch {
      /* not this one */
    }
  }
  return 'unknown';
}

/**
 * Makes the fixtures, and gives the run one temporary folder (TMPDIR, inherited by the test processes)
 * that is removed when the run ends (kept with SPURMEM_KEEP_TEST_FILES=1).
 */
export default function setup(): () => void {
  const runTmp = mkdtempSync(join(tmpdir(), 'spurmem-tests-'));
  process.env.TMPDIR = runTmp;
  const scripts = readdirSync(join(testDir, 'fixtures')).filter((f) => /^make_.*\.py$/.test(f)).sort();
  const common = existsSync(join(testDir, 'fixtures', 'reference.py')) ? readFileSync(join(testDir, 'fixtures', 'reference.py')) : Buffer.alloc(0);
  for (const s of scripts) {
    const name = s.replace(/^make_/, '').replace(/\.py$/, '');
    const out = join(fixturesDir, name);
    const hash = createHash('sha256').update(readFileSync(join(testDir, 'fixtures', s))).update(common).update(blasIdentity()).digest('hex');
    const stamp = join(out, '.stamp');
    if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) continue;
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const t0 = Date.now();
    runPython(join(testDir, 'fixtures', s), [out]);
    writeFileSync(stamp, hash);
    console.log(`fixtures: ${name} made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return () => {
    if (!process.env.SPURMEM_KEEP_TEST_FILES) rmSync(runTmp, { recursive: true, force: true });
  };
}
