import { describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDataset } from '../src/data/check.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { pythonCode } from './helpers/python.js';

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
    expect(ok.stdout).toMatch(/missing images: 0\nimages that do not decode: 0\ncolour modes \(as PIL opens them\): RGB 119\nimages converted to RGB as PIL's convert\('RGB'\) does: 0\nok\n$/);

    const lines = readFileSync(join(root, 'metadata.csv'), 'utf8').split('\n');
    const gone = lines[5].split(',')[1];
    const broken = lines[9].split(',')[1];
    rmSync(join(root, gone));
    writeFileSync(join(root, broken), readFileSync(join(root, broken)).subarray(0, 200));
    const shallow = await runCli(['data', 'check', '--dataset', 'folder', '--root', root]);
    expect(shallow.code).toBe(1);
    expect(shallow.stdout).toContain(`missing images: 1\n  line 6 (`);
    expect(shallow.stdout).toContain('images not decoded (add --deep to decode every image, count the colour modes and list the images that need a colour conversion)');
    const deep = await runCli(['data', 'check', '--dataset', 'folder', '--root', root, '--deep', '--json']);
    expect(deep.code).toBe(1);
    const r = JSON.parse(deep.stdout) as { missing: { file: string; line: number }[]; undecodable: { file: string; line: number; reason: string }[]; ok: boolean };
    expect(r.ok).toBe(false);
    expect(r.missing.map((m) => [m.file, m.line])).toEqual([[join(root, gone), 6]]);
    expect(r.undecodable.map((m) => [m.file, m.line])).toEqual([[join(root, broken), 10]]);
    expect(r.undecodable[0].reason).toBe(`truncated JPEG: the file ends after 200 bytes without an end-of-image marker (FFD9)`);
  });

  it('--deep: a truncated JPEG or PNG gives the same, specific reason on every run; PIL refuses the same files', async () => {
    const root = join(tempDir(), 'demo');
    await runCli(['data', 'make-demo', '--out', root, '--scale', '0.01', '--size', '64x48', '--seed', '5']);
    const lines = readFileSync(join(root, 'metadata.csv'), 'utf8').split('\n');
    const file = (k: number) => join(root, lines[k].split(',')[1]);
    const jpeg = readFileSync(file(2));
    const cuts: [string, Buffer][] = [
      [file(2), jpeg.subarray(0, jpeg.length >> 1)], // inside the entropy-coded data
      [file(3), readFileSync(file(3)).subarray(0, -2)], // only the end-of-image marker missing
      [file(4), jpeg.subarray(0, 300)], // inside the header segments
    ];
    for (const [f, b] of cuts) writeFileSync(f, b);
    // a PNG cut inside its image data, under the file name the metadata gives
    pythonCode(`
from PIL import Image
import io, numpy as np
b = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(b, "PNG")
open(${JSON.stringify(file(5))}, "wb").write(b.getvalue()[:2000])
`);
    const files = [file(2), file(3), file(4), file(5)];
    const pil = JSON.parse(pythonCode(`
import json
from PIL import Image
out = []
for f in ${JSON.stringify(files)}:
    try:
        Image.open(f).convert("RGB"); out.append("decoded")
    except Exception as e:
        out.append(str(e))
print(json.dumps(out))
`)) as string[];
    for (const m of pil) expect(m).toMatch(/truncated/i);
    const size = (f: string) => readFileSync(f).length;
    const want = [
      `truncated JPEG: the file ends after ${size(files[0])} bytes without an end-of-image marker (FFD9)`,
      `truncated JPEG: the file ends after ${size(files[1])} bytes without an end-of-image marker (FFD9)`,
      `truncated JPEG: the file ends after ${size(files[2])} bytes without an end-of-image marker (FFD9)`,
      expect.stringMatching(new RegExp(`^truncated PNG: the file ends after 2000 bytes, inside its IDAT chunk \\(which needs \\d+\\)$`)),
    ];
    for (let run = 0; run < 4; run++) {
      const r = await checkDataset({ dataset: 'folder', root, deep: true, concurrency: 16 });
      expect(r.undecodable.map((u) => u.file)).toEqual(files);
      expect(r.undecodable.map((u) => u.reason)).toEqual(want);
    }
  });

  it('check --deep counts the colour modes as PIL opens them and names the images converted to RGB', async () => {
    const root = join(tempDir(), 'demo');
    await runCli(['data', 'make-demo', '--out', root, '--scale', '0.01', '--size', '40x30', '--seed', '5']);
    const lines = readFileSync(join(root, 'metadata.csv'), 'utf8').split('\n');
    const file = (line: number) => join(root, lines[line - 1].split(',')[1]);
    // PIL (not spurmem) rewrites three images, keeping their names: CMYK JPEG, palette PNG, 16-bit grey PNG
    pythonCode(
      `from PIL import Image\nimport numpy as np\n` +
        `Image.open(${JSON.stringify(file(3))}).convert('CMYK').save(${JSON.stringify(file(3))}, 'JPEG')\n` +
        `Image.open(${JSON.stringify(file(4))}).convert('P').save(${JSON.stringify(file(4))}, 'PNG')\n` +
        `a = np.asarray(Image.open(${JSON.stringify(file(5))}).convert('L')).astype(np.uint16) * 200\n` +
        `Image.fromarray(a).save(${JSON.stringify(file(5))}, 'PNG')\n` +
        `print(Image.open(${JSON.stringify(file(3))}).mode, Image.open(${JSON.stringify(file(4))}).mode, Image.open(${JSON.stringify(file(5))}).mode)`,
    );
    const r = await runCli(['data', 'check', '--dataset', 'folder', '--root', root, '--deep', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { modes: Record<string, number>; converted: { file: string; line: number; mode: string; conversion: string }[]; ok: boolean };
    expect(j.modes).toEqual({ RGB: 116, CMYK: 1, P: 1, I: 1 });
    expect(j.converted.map((c) => [c.line, c.file, c.mode])).toEqual([[3, file(3), 'CMYK'], [4, file(4), 'P'], [5, file(5), 'I']]);
    expect(j.converted[2].conversion).toMatch(/above 255 become 255/);
    const t = await runCli(['data', 'check', '--dataset', 'folder', '--root', root, '--deep']);
    expect(t.stdout).toMatch(/colour modes \(as PIL opens them\): RGB 116, (CMYK|P|I) 1, (CMYK|P|I) 1, (CMYK|P|I) 1\n/);
    expect(t.stdout).toContain(`images converted to RGB as PIL's convert('RGB') does: 3\n  line 3 (`);
    expect(t.stdout).toContain(`${file(3)}: CMYK, CMYK to RGB by PIL's formula`);
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
