import { describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';

describe('spurmem data', () => {
  it('make-demo, then check: counts, missing files, and with --deep the images that do not decode', async () => {
    const root = join(tempDir(), 'demo');
    const made = await runCli(['data', 'make-demo', '--out', root, '--scale', '0.01', '--size', '32x24', '--seed', '3', '--json']);
    expect(made.code).toBe(0);
    const info = JSON.parse(made.stdout) as { images: number; counts: Record<string, number[]> };
    expect(info.images).toBe(119);
    expect(info.counts.train).toEqual([35, 2, 1, 11]);

    const ok = await runCli(['data', 'check', '--dataset', 'folder', '--root', root, '--deep']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^0\s+top on land\s+35\s+5\s+23$/m);
    expect(ok.stdout).toMatch(/^all\s+49\s+12\s+58$/m);
    expect(ok.stdout).toMatch(/missing images: 0\nimages that do not decode: 0\nok\n$/);

    const lines = readFileSync(join(root, 'metadata.csv'), 'utf8').split('\n');
    const gone = lines[5].split(',')[1];
    const broken = lines[9].split(',')[1];
    rmSync(join(root, gone));
    writeFileSync(join(root, broken), readFileSync(join(root, broken)).subarray(0, 200));
    const shallow = await runCli(['data', 'check', '--dataset', 'folder', '--root', root]);
    expect(shallow.code).toBe(1);
    expect(shallow.stdout).toContain(`missing images: 1\n  line 6 (`);
    expect(shallow.stdout).toContain('images not decoded (add --deep to decode every image)');
    const deep = await runCli(['data', 'check', '--dataset', 'folder', '--root', root, '--deep', '--json']);
    expect(deep.code).toBe(1);
    const r = JSON.parse(deep.stdout) as { missing: { file: string; line: number }[]; undecodable: { file: string; line: number; reason: string }[]; ok: boolean };
    expect(r.ok).toBe(false);
    expect(r.missing.map((m) => [m.file, m.line])).toEqual([[join(root, gone), 6]]);
    expect(r.undecodable.map((m) => [m.file, m.line])).toEqual([[join(root, broken), 10]]);
    expect(r.undecodable[0].reason).toMatch(/premature end|truncated|JPEG/i);
  });

  it('bad metadata stops with the file, line and field', async () => {
    const root = join(tempDir(), 'demo');
    await runCli(['data', 'make-demo', '--out', root, '--scale', '0.001', '--size', '16']);
    const p = join(root, 'metadata.csv');
    const lines = readFileSync(p, 'utf8').split('\n');
    const f = lines[3].split(',');
    f[3] = '7';
    lines[3] = f.join(',');
    writeFileSync(p, lines.join('\n'));
    const r = await runCli(['data', 'check', '--dataset', 'folder', '--root', root]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`spurmem: ${p} line 4: field 'split' is '7', expected 0 (train), 1 (val) or 2 (test)\n`);
  });
});
