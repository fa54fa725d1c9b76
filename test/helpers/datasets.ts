/** Small on-disk datasets for the reader, loader and eval tests. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { afterAll } from 'vitest';
import { Rng } from '../../src/util/random.js';

const made: string[] = [];
// registered by the test file that imports this module: its temporary folders go when its tests are done
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A new temporary folder, removed after the importing test file's tests. */
export function tempDir(prefix = 'spurmem-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Writes a JPEG of w x h smooth random colours (a real, decodable photo-like file). */
export async function writeJpeg(path: string, w: number, h: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const px = Buffer.alloc(w * h * 3);
  const c0 = [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
  const fx = rng.uniform(0.01, 0.2);
  const fy = rng.uniform(0.01, 0.2);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = c0[c] + 60 * Math.sin(fx * x * (c + 1) + fy * y) + rng.uniform(-20, 20);
        px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  mkdirSync(dirname(path), { recursive: true });
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(path);
}

export interface TinyRow {
  file: string;
  y: number | string;
  split: number | string;
  place: number | string;
}

/** Writes metadata.csv (Waterbirds columns) for the rows. */
export function writeMetadata(root: string, rows: TinyRow[], header = 'img_id,img_filename,y,split,place,place_filename'): string {
  const cols = header.split(',');
  const lines = [header];
  rows.forEach((r, i) => {
    const v: Record<string, string> = {
      img_id: String(i + 1),
      img_filename: r.file,
      y: String(r.y),
      split: String(r.split),
      place: String(r.place),
      place_filename: `/p/place_${i}.jpg`,
    };
    lines.push(cols.map((c) => v[c] ?? '').join(','));
  });
  const path = join(root, 'metadata.csv');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/**
 * A tiny Waterbirds-layout dataset: `perGroup` images per group and split, JPEGs of w x h in class
 * sub-folders. Returns the folder and its rows.
 */
export async function tinyDataset(o: { perGroup?: number[]; w?: number; h?: number; seed?: number } = {}): Promise<{ root: string; rows: TinyRow[] }> {
  const root = tempDir();
  const per = o.perGroup ?? [3, 2, 2, 3];
  const rows: TinyRow[] = [];
  let k = 0;
  for (let split = 0; split < 3; split++) {
    for (let g = 0; g < 4; g++) {
      for (let i = 0; i < per[g]; i++) {
        const y = g >> 1;
        const file = `${String(y + 1).padStart(3, '0')}.class_${y}/img_${k}.jpg`;
        await writeJpeg(join(root, file), o.w ?? 60, o.h ?? 45, (o.seed ?? 0) * 100000 + k);
        rows.push({ file, y, split, place: g & 1 });
        k++;
      }
    }
  }
  writeMetadata(root, rows);
  return { root, rows };
}
