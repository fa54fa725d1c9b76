import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeImage,
  evalTransform,
  loadBatches,
  nativeJpegDecoder,
  pilMode,
  headerInfo,
  pilTransformImages,
  randomResizedCropBox,
  trainTransform,
  transformFiles,
  transformFilesPooled,
  backgroundDecoding,
  trainPlan,
  type FileTransform,
} from '../src/data/index.js';
import { SpurmemError } from '../src/util/errors.js';
import { addon } from '../src/native.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers/datasets.js';
import { pythonCode as runPythonCode, runPython, testDir } from './helpers/python.js';
import { readFileSync } from 'node:fs';
import type { Sample } from '../src/data/types.js';

interface Job { file: string; resolution?: number; kind: 'decode' | 'eval' | 'train'; box?: number[]; flip?: boolean; tag?: string }
interface PhotoFile { file: string; format: string; mode: string; width: number; height: number }
type Stats = Record<string, { images: number; max: number; mean: number; differing: number }>;

let photos: PhotoFile[] = [];

beforeAll(() => {
  // real photos (Debian's mate-backgrounds) resized to dataset sizes and saved in every colour mode PIL opens
  photos = JSON.parse(runPython(join(testDir, 'fixtures', 'make_photo_set.py'), [tempDir()])) as PhotoFile[];
});

/** Runs the jobs through torchvision + PIL and returns the per-kind differences to `ours`. */
function compare(jobs: Job[], ours: Uint8Array[]): Stats {
  const dir = tempDir();
  writeFileSync(join(dir, 'jobs.json'), JSON.stringify(jobs));
  writeFileSync(join(dir, 'ours.u8'), Buffer.concat(ours));
  return JSON.parse(runPython(join(testDir, 'fixtures', 'pil_transform.py'), [dir])) as Stats;
}

describe('decoding: the RGB of PIL Image.open(f).convert("RGB") for every colour mode', () => {
  it('reads the mode PIL opens each file in from its header', () => {
    for (const p of photos) {
      const h = headerInfo(readFileSync(p.file));
      expect(h, p.file).toBeDefined();
      expect(pilMode(h!), p.file).toBe(p.mode);
    }
  });

  it('RGB, L, CMYK (Adobe, no Adobe marker, YCCK), P (8-bit, 4-bit, transparency), LA, RGBA, I (16-bit grey), 16-bit LA/RGB/RGBA and 1-bit: identical bytes', async () => {
    const jobs: Job[] = [];
    const ours: Uint8Array[] = [];
    for (const p of photos.filter((q) => q.file.includes('mode_') || q.width <= 500)) {
      const d = await decodeImage(p.file);
      // no resize: the conversion alone
      ours.push(await pilTransformImages([{ image: d, plan: { box: [0, 0, d.width, d.height], size: [d.width, d.height], window: [0, 0, d.width, d.height], flip: false } }]));
      jobs.push({ file: p.file, kind: 'decode', tag: p.file.split('/').pop()!.replace(/\.\w+$/, '') });
    }
    const res = compare(jobs, ours);
    for (const [k, v] of Object.entries(res)) console.log(`${k}: max |diff| ${v.max}, ${v.differing} bytes differ`);
    const modes = new Set(Object.keys(res).map((k) => k.split(' ').slice(2, 4).join(' ')));
    for (const m of ['JPEG RGB', 'JPEG L', 'JPEG CMYK', 'PNG P', 'PNG LA', 'PNG RGBA', 'PNG I', 'PNG RGB', 'PNG L', 'PNG 1']) expect(modes.has(m), m).toBe(true);
    for (const [k, v] of Object.entries(res)) expect(v.max, k).toBe(0);
  });
});

describe("a CMYK JPEG as PIL writes it (the reproduction of the colour fault)", () => {
  it('eval transform gives (123, 172, 255) where PIL gives it', async () => {
    const f = join(tempDir(), 'c.jpg');
    runPythonCode(
      `from PIL import Image; import numpy as np\n` +
        `Image.fromarray(np.full((60, 80, 3), (123, 172, 255), np.uint8)).convert('CMYK').save(${JSON.stringify(f)})\n` +
        `print(Image.open(${JSON.stringify(f)}).convert('RGB').getpixel((40, 30)))`,
    );
    const px = await evalTransform(f, 32);
    const res = compare([{ file: f, resolution: 32, kind: 'eval' }], [px]);
    expect(Object.values(res)[0].max).toBe(0);
    expect([...px.subarray(16 * 32 * 3 + 16 * 3, 16 * 32 * 3 + 16 * 3 + 3)]).toEqual([123, 172, 255]);
  });
});

describe('eval and train transforms vs torchvision + PIL on real photos: identical bytes', () => {
  it('eval transform at R = 32, 64 and 224, every size and mode, per image and through the batch loader', async () => {
    const jobs: Job[] = [];
    const ours: Uint8Array[] = [];
    for (const R of [32, 64, 224]) {
      for (const p of photos) {
        jobs.push({ file: p.file, resolution: R, kind: 'eval' });
        ours.push(await evalTransform(p.file, R));
      }
      // the loader resizes a whole batch in one native call: same bytes, in the same order
      const samples = photos.map((p, i) => ({ file: p.file, line: i + 2, split: 'test', y: 0, a: 0, g: 0 }) as unknown as Sample);
      for await (const b of loadBatches(samples, { resolution: R, batchSize: 7 })) {
        b.samples.forEach((s, k) => {
          jobs.push({ file: s.file, resolution: R, kind: 'eval', tag: 'loader' });
          ours.push(b.images.subarray(k * R * R * 3, (k + 1) * R * R * 3));
        });
      }
    }
    const res = compare(jobs, ours);
    let images = 0;
    for (const [k, v] of Object.entries(res)) {
      images += v.images;
      if (v.max > 0) console.log(`${k}: max |diff| ${v.max}, ${v.differing} bytes differ`);
      expect(v.max, k).toBe(0);
    }
    console.log(`eval transform: ${images} images (${photos.length} files x R = 32, 64, 224, per image and batched), max |diff| 0`);
    expect(images).toBe(photos.length * 6);
  });

  it('train transform (RandomResizedCrop box and flip drawn by spurmem, resampled as PIL) at R = 64 and 224', async () => {
    const jobs: Job[] = [];
    const ours: Uint8Array[] = [];
    for (const p of photos) {
      for (const R of [64, 224]) {
        for (let k = 0; k < 2; k++) {
          const seed = jobs.length;
          const rng = new Rng(seed);
          const box = randomResizedCropBox(p.width, p.height, rng);
          const flip = rng.next() < 0.5;
          jobs.push({ file: p.file, resolution: R, kind: 'train', box: [box.i, box.j, box.h, box.w], flip });
          ours.push(await trainTransform(p.file, R, new Rng(seed)));
        }
      }
    }
    const res = compare(jobs, ours);
    expect(jobs.some((j) => j.flip) && jobs.some((j) => !j.flip)).toBe(true);
    for (const [k, v] of Object.entries(res)) expect(v.max, k).toBe(0);
  });

  it("--resize sharp (libvips' kernel) stays within about a level of PIL's on photos", async () => {
    const jobs: Job[] = [];
    const ours: Uint8Array[] = [];
    for (const p of photos.filter((q) => q.mode === 'RGB' && q.format === 'JPEG')) {
      for (const R of [64, 224]) {
        jobs.push({ file: p.file, resolution: R, kind: 'eval', tag: 'sharp' });
        ours.push(await evalTransform(p.file, R, { resize: 'sharp' }));
      }
    }
    const res = compare(jobs, ours);
    for (const [k, v] of Object.entries(res)) {
      console.log(`${k}: mean |diff| ${v.mean.toFixed(3)} levels, max ${v.max}`);
      expect(v.mean, k).toBeLessThan(1.5);
    }
    // it is an approximation: some bytes differ
    expect(Object.values(res).some((v) => v.differing > 0)).toBe(true);
  });
});

describe('the native JPEG decoder (libjpeg, as PIL decodes) then PIL\'s resize: identical bytes', () => {
  const jpegs = () => photos.filter((p) => p.format === 'JPEG' && p.mode !== 'CMYK');

  it('is built in wherever libjpeg\'s headers are installed', () => {
    if (existsSync('/usr/include/jpeglib.h') || existsSync('/usr/include/x86_64-linux-gnu/jpeglib.h')) expect(nativeJpegDecoder()).toBe(true);
  });

  it.skipIf(!nativeJpegDecoder())(
    'RGB and greyscale; 4:2:0, 4:2:2, 4:4:0, 4:4:4; baseline, progressive, restart markers; odd sizes: decode, eval at R = 32 and 224, train at R = 64',
    async () => {
      const files = jpegs();
      for (const tag of ['422', 'L_progressive', 'rst_rows_420', 'rst_mcus_422', 'rst_rows_440', 'rst_rows_444_progressive', 'rst_mcus_L', 'progressive444']) {
        expect(files.some((p) => p.file.includes(tag)), tag).toBe(true);
      }
      const jobs: Job[] = [];
      const native: FileTransform[] = [];
      for (const p of files) {
        const bytes = readFileSync(p.file);
        native.push({ file: p.file, bytes, plan: { box: [0, 0, p.width, p.height], size: [p.width, p.height], window: [0, 0, p.width, p.height], flip: false } });
        jobs.push({ file: p.file, kind: 'decode', tag: 'native' });
        for (const R of [32, 224]) {
          native.push({ file: p.file, resolution: R });
          jobs.push({ file: p.file, resolution: R, kind: 'eval', tag: 'native' });
        }
        const rng = new Rng(jobs.length);
        const plan = trainPlan(p.width, p.height, 64, rng);
        native.push({ file: p.file, bytes, plan });
        jobs.push({ file: p.file, resolution: 64, kind: 'train', tag: 'native', box: [plan.box[1], plan.box[0], plan.box[3], plan.box[2]], flip: plan.flip });
      }
      const ours = await transformFiles(native, 2);
      // every file went through the native decoder (none left to sharp, none failed)
      ours.forEach((r, k) => expect(r instanceof Uint8Array, `${native[k].file}: ${String(r)}`).toBe(true));
      const res = compare(jobs, ours as Uint8Array[]);
      let images = 0;
      for (const [k, v] of Object.entries(res)) {
        images += v.images;
        if (v.max > 0) console.log(`${k}: max |diff| ${v.max}, ${v.differing} bytes differ`);
        expect(v.max, k).toBe(0);
      }
      expect(images).toBe(files.length * 4);
      console.log(`native JPEG decoder: ${files.length} files x (decode, eval R = 32 and 224, train R = 64), max |diff| 0`);
    },
  );

  it.skipIf(!nativeJpegDecoder())('the decoding pool gives the batch call\'s bytes and errors; with the foreground closed its idle-priority threads still decode on idle cores', async () => {
    const jobs: FileTransform[] = jpegs().map((p) => ({ file: p.file, resolution: 32 }));
    const png = photos.find((p) => p.format === 'PNG')!;
    jobs.push({ file: join(tempDir(), 'missing.jpg'), resolution: 32 }, { file: png.file, resolution: 32 });
    const show = (rs: (Uint8Array | SpurmemError | undefined)[]) => rs.map((r) => (r instanceof Uint8Array ? Buffer.from(r).toString('hex') : r instanceof Error ? r.message : r));
    const want = show(await transformFiles(jobs, 2));
    expect(want.at(-2)).toMatch(/missing\.jpg: cannot read image \(no such file\)$/);
    expect(want.at(-1)).toBeUndefined(); // a PNG is left to sharp
    // batches queued together, with other thread counts
    const [a, b, c] = await Promise.all([transformFilesPooled(jobs, 2), transformFilesPooled(jobs.slice(0, 3), 1), transformFilesPooled(jobs, 3)]);
    expect(show(a.results)).toEqual(want);
    expect(show(b.results)).toEqual(want.slice(0, 3));
    expect(show(c.results)).toEqual(want);
    expect(a.cpuSeconds).toBeGreaterThan(0);
    expect(await transformFilesPooled([], 2)).toEqual({ results: [], cpuSeconds: 0 });
    // Linux has an idle scheduling priority: there the pool decodes beside the model
    if (process.platform === 'linux') expect(backgroundDecoding()).toBe(true);
    if (backgroundDecoding()) {
      addon().setDecodeForeground(false); // as while a model call runs: only the idle-priority threads decode
      try {
        expect(show((await transformFilesPooled(jobs, 2)).results)).toEqual(want);
      } finally {
        addon().setDecodeForeground(true);
      }
    }
  });

  it.skipIf(!nativeJpegDecoder())('leaves CMYK/YCCK JPEGs and other formats to sharp', async () => {
    const others = photos.filter((p) => p.format !== 'JPEG' || p.mode === 'CMYK');
    expect(others.some((p) => p.mode === 'CMYK') && others.some((p) => p.format === 'PNG')).toBe(true);
    const r = await transformFiles(others.map((p) => ({ file: p.file, resolution: 32 })), 2);
    expect(r).toEqual(others.map(() => undefined));
  });

  it.skipIf(!nativeJpegDecoder())('a truncated or corrupt JPEG: an error naming the file; --skip-bad-images skips it, the rest of its batch loads', async () => {
    const dir = tempDir();
    const good = files422();
    const bytes = readFileSync(good);
    const cut = join(dir, 'cut.jpg');
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    // a corrupt header: the first Huffman table's class/id byte set to an impossible table id
    const bad = join(dir, 'bad_huffman.jpg');
    const b = Buffer.from(bytes);
    const dht = b.indexOf(Buffer.from([0xff, 0xc4]));
    b[dht + 4] = 0x1f;
    writeFileSync(bad, b);
    const missing = join(dir, 'missing.jpg');
    const r = await transformFiles([good, cut, bad, missing].map((file) => ({ file, resolution: 32 })), 2);
    expect(r[0] instanceof Uint8Array).toBe(true);
    for (const e of r.slice(1)) expect(e).toBeInstanceOf(SpurmemError);
    expect((r[1] as Error).message).toBe(`${cut}: cannot decode image (truncated JPEG: the file ends after ${bytes.length >> 1} bytes without an end-of-image marker (FFD9))`);
    expect((r[2] as Error).message).toBe(`${bad}: cannot decode image (Bogus DHT index 15)`); // libjpeg's words
    expect((r[3] as Error).message).toBe(`${missing}: cannot read image (no such file)`);
    await expect(evalTransform(cut, 32)).rejects.toThrow(`${cut}: cannot decode image (truncated JPEG`);
    await expect(trainTransform(bad, 32, new Rng(1))).rejects.toThrow(`${bad}: cannot decode image (`);
    // PIL refuses both files too
    const pil = runPythonCode(
      `from PIL import Image\n` +
        `for f in ${JSON.stringify([cut, bad])}:\n` +
        `    try:\n        Image.open(f).convert('RGB'); print('ok')\n` +
        `    except Exception as e:\n        print('error', type(e).__name__)\n`,
    );
    expect(pil.trim().split('\n')).toEqual(['error OSError', 'error OSError']);
    // through the loader, in one batch with good images
    const list = [good, cut, good, bad, good].map((file, i) => ({ file, line: i + 2, split: 'test', y: 0, a: 0, g: 0 }) as unknown as Sample);
    const skipped: string[] = [];
    let kept = 0;
    for (const augment of [false, true]) {
      for await (const batch of loadBatches(list, { resolution: 32, batchSize: 5, augment, skipBadImages: true, onSkip: (s, why) => skipped.push(`${s.file}: ${why}`) })) kept += batch.samples.length;
    }
    expect(kept).toBe(6);
    expect(skipped).toHaveLength(4);
    expect(skipped.filter((l) => l.startsWith(cut) && l.includes('truncated JPEG'))).toHaveLength(2);
    expect(skipped.filter((l) => l.startsWith(bad))).toHaveLength(2);
    await expect(
      (async () => {
        for await (const _ of loadBatches(list, { resolution: 32, batchSize: 5 })) void _;
      })(),
    ).rejects.toThrow(`${cut}: cannot decode image (truncated JPEG`);
  });

  const files422 = () => photos.find((p) => p.file.includes('jpeg_422_'))!.file;
});
