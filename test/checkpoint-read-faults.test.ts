/**
 * Faults of the checkpoint reader that the fuzz test (checkpoint-fuzz.test.ts) relies on or does not
 * reach: the child reader notices a crash, a hang and a large allocation; the CRC-32 of tensor data is
 * checked (torch.load does not); a file truncated while it is being read gives an error, not a crash.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir } from './helpers/python.js';
import { PEAK_LIMIT_KB, ensureDist, readInChild } from './helpers/fuzz-reader.js';
import { parseZip } from './helpers/pth-bytes.js';

describe('checkpoint reader faults', () => {
  it('notices a crash, a hang and a large allocation in the reader process', async () => {
    ensureDist();
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-fuzz-self-'));
    try {
      const good = join(fixturesDir, 'fuzz', 'smallnet.zip.pth');
      const files = [good, good, good, good, good];
      const r = await readInChild(files, dir, { SPURMEM_FUZZ_SELFTEST: 'crash=1,hang=2,alloc=3' }, 1_500);
      expect(r[0].ok).toBe(true);
      expect(r[1].crash).toMatch(/SIGSEGV/);
      expect(r[2].hang).toBe(true);
      expect(r[3].peakKB).toBeGreaterThan(PEAK_LIMIT_KB);
      expect(r[4].ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('checks the CRC-32 of tensor data that torch.load does not check, unless told not to', async () => {
    const { addon } = await import('../src/native.js');
    const { pythonCode } = await import('./helpers/python.js');
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-crc-'));
    try {
      const buf = readFileSync(join(fixturesDir, 'fuzz', 'smallnet.zip.pth'));
      const e = parseZip(buf).entries.find((x) => x.name.endsWith('/data/0'))!;
      const bad = Buffer.from(buf);
      bad[e.data + 1] ^= 0x40;  // a bit of conv1.weight[0], CRC fields left as they were
      const f = join(dir, 'flipped.pth');
      writeFileSync(f, bad);
      await expect(addon().readCheckpoint(f)).rejects.toThrow(`${f}: 'smallnet.zip/data/0' is corrupt (CRC mismatch)`);
      const ck = await addon().readCheckpoint(f, { checkStorageCrc: false });
      const ours = (ck.tensor(['conv1.weight']).data as Float32Array)[0];
      const theirs = Number(pythonCode(`import torch; print(repr(torch.load(${JSON.stringify(f)})['conv1.weight'].flatten()[0].item()))`));
      expect(ours).toBe(Math.fround(theirs));  // torch.load reads the flipped bit without a word
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives an error, not a crash, when a checkpoint is truncated while it is being read', async () => {
    // torch.save rewrites a file in place; a read racing with it must fail cleanly (a memory map would
    // raise SIGBUS). The truncation lands before, during or after the copy of the tensors.
    ensureDist();
    const { addon } = await import('../src/native.js');
    const { copyFileSync, truncateSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-trunc-'));
    const outcomes: Record<string, number> = {};
    try {
      for (const layout of ['zip', 'legacy']) {
        for (const delay of [0, 1, 2, 4, 6, 8, 12, 16, 24, 32]) {
          const f = join(dir, `resnet50.${layout}.pth`);
          copyFileSync(join(fixturesDir, 'pth', `resnet50.${layout}.pth`), f);
          const reading = addon().readCheckpoint(f).then(
            () => 'read',
            (e: unknown) => {
              expect(e).toBeInstanceOf(Error);
              expect((e as Error).message).toContain(f);
              return /no longer in the file|changed while being read/.test((e as Error).message) ? 'gone' : 'rejected';
            },
          );
          await new Promise((r) => setTimeout(r, delay));
          truncateSync(f, 1 << 20);
          const o = await reading;
          outcomes[o] = (outcomes[o] ?? 0) + 1;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`truncated while read: ${JSON.stringify(outcomes)}`);
  }, 120_000);
});
