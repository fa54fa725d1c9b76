import { beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { makeDemoDataset } from '../src/data/demo.js';
import { evalTransform, imageSize, openDataset, randomResizedCropBox, trainTransform } from '../src/data/index.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers/datasets.js';
import { runPython, testDir } from './helpers/python.js';

interface Job { file: string; resolution: number; kind: 'eval' | 'train'; box?: number[]; flip?: boolean }

let files: string[] = [];

beforeAll(async () => {
  // a greyscale JPEG and PNGs with an alpha channel (colour under transparent pixels must survive, as in
  // PIL's convert('RGB')), growing (120 x 90) and shrinking at R = 64 (240 x 200)
  const extra = tempDir();
  for (const [w, h] of [[120, 90], [240, 200]]) {
    const px = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) {
      const x = i % w;
      const y = Math.floor(i / w);
      px.set([(x * 5) % 256, (y * 3 + x) % 256, (x * y) % 251, (x * 7 + y * 11) % 256], i * 4);
    }
    await sharp(px, { raw: { width: w, height: h, channels: 4 } }).png().toFile(join(extra, `rgba_${w}.png`));
    await sharp(px, { raw: { width: w, height: h, channels: 4 } }).removeAlpha().toColourspace('b-w').jpeg({ quality: 90 }).toFile(join(extra, `grey_${w}.jpg`));
    files.push(join(extra, `rgba_${w}.png`), join(extra, `grey_${w}.jpg`));
  }
  // real JPEGs from the demo data: Waterbirds-like 500 x 375 and CelebA-like 178 x 218
  for (const [w, h] of [[500, 375], [178, 218]]) {
    const root = join(tempDir(), 'demo');
    await makeDemoDataset({ out: root, scale: 0.0005, width: w, height: h, seed: 9 });
    const ds = await openDataset({ dataset: 'folder', root });
    files = files.concat([...ds.samples.train, ...ds.samples.val, ...ds.samples.test].map((s) => s.file));
  }
});

describe("sharp's transforms vs torchvision + PIL on the same JPEGs (after ToTensor + Normalize)", () => {
  it('eval transform (R = 224 and 64) and train transform (same crop box and flip): mean |diff| < 0.02', async () => {
    const jobs: Job[] = [];
    const ours: Uint8Array[] = [];
    for (const file of files) {
      for (const R of [224, 64]) {
        jobs.push({ file, resolution: R, kind: 'eval' });
        ours.push(await evalTransform(file, R));
      }
      const { width, height } = await imageSize(file);
      for (let k = 0; k < 2; k++) {
        const seed = jobs.length;
        const rng = new Rng(seed);
        const box = randomResizedCropBox(width, height, rng);
        const flip = rng.next() < 0.5;
        jobs.push({ file, resolution: 224, kind: 'train', box: [box.i, box.j, box.h, box.w], flip });
        ours.push(await trainTransform(file, 224, new Rng(seed)));
      }
    }
    const dir = tempDir();
    writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
    writeFileSync(join(dir, 'ours.u8'), Buffer.concat(ours));
    const res = JSON.parse(runPython(join(testDir, 'fixtures', 'pil_transform.py'), [dir])) as Record<string, { mean: number; max: number; worst_image_mean: number; images: number }>;
    for (const [k, v] of Object.entries(res)) {
      console.log(`${k}: ${v.images} images, mean |diff| ${v.mean.toFixed(5)}, max |diff| ${v.max.toFixed(4)}, worst image mean ${v.worst_image_mean.toFixed(5)}`);
      expect(v.mean, k).toBeLessThan(0.02);
      expect(v.worst_image_mean, k).toBeLessThan(0.03);
    }
    expect(Object.keys(res).sort()).toEqual([
      'eval JPEG L 120x90 R=224', 'eval JPEG L 120x90 R=64', 'eval JPEG L 240x200 R=224', 'eval JPEG L 240x200 R=64',
      'eval JPEG RGB 178x218 R=224', 'eval JPEG RGB 178x218 R=64', 'eval JPEG RGB 500x375 R=224', 'eval JPEG RGB 500x375 R=64',
      'eval PNG RGBA 120x90 R=224', 'eval PNG RGBA 120x90 R=64', 'eval PNG RGBA 240x200 R=224', 'eval PNG RGBA 240x200 R=64',
      'train JPEG L 120x90 R=224', 'train JPEG L 240x200 R=224', 'train JPEG RGB 178x218 R=224', 'train JPEG RGB 500x375 R=224',
      'train PNG RGBA 120x90 R=224', 'train PNG RGBA 240x200 R=224',
    ]);
    // PNG decoding is exact on both sides: what is left is the resampling's rounding (1-2 levels of 255)
    for (const [k, v] of Object.entries(res)) if (k.includes('PNG')) expect(v.mean, k).toBeLessThan(0.01);
  });
});
