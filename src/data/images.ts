/**
 * Image decoding and the original's transforms (reference §1.5).
 *
 * Every transform returns uint8 RGB pixels in HWC order, R x R; division by 255 and the ImageNet
 * normalisation (ToTensor + Normalize) happen on the device, in the native model.
 *
 * The default (`resize: 'pil'`) gives the bytes torchvision + PIL give: sharp (libvips) decodes the file
 * at full size to its raw samples (its JPEG and PNG decoders give PIL's samples), the native addon applies
 * PIL's `convert('RGB')` for the mode PIL opens the file in (CMYK, 16-bit, palette, alpha ... see
 * {@link pilMode}) and PIL's bilinear `Image.resize` (ImagingResample, fixed point) with torchvision's crop
 * boxes. `resize: 'sharp'` is the faster approximation of earlier versions: libvips resizes, colours
 * of CMYK files go through an ICC transform, and results differ from PIL's by about 0.2/255 per pixel.
 * Both ignore embedded ICC profiles and EXIF orientation, as PIL does.
 *
 * With `pil`, JPEGs (RGB and greyscale; baseline or progressive, any subsampling) skip sharp: the addon
 * reads, decodes (the system libjpeg, as PIL does) and transforms whole batches of files on threads of its
 * own ({@link transformFiles}); CMYK/YCCK JPEGs, other formats, and every file when the addon was built
 * without libjpeg, go through sharp as above.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { addon, type DecodeTransformFile, type PilToRgb, type PilTransformImage } from '../native.js';
import { cpuBudget } from '../util/cpu-budget.js';
import { SpurmemError, UsageError, messageOf } from '../util/errors.js';
import type { Rng } from '../util/random.js';
import { headerInfo, headerSize, pilMode, truncationReason } from './image-header.js';

/**
 * How images are resized: `pil` reproduces torchvision + PIL exactly (the default); `sharp` uses libvips'
 * reduce kernel, faster and within about 0.2/255 of PIL per pixel.
 */
export type ResizeMethod = 'pil' | 'sharp';
/** The resize methods, default first. */
export const RESIZE_METHODS: readonly ResizeMethod[] = ['pil', 'sharp'];

/** Checks a resize method name (from a flag, a config or an API call). */
export function checkResizeMethod(v: unknown, where = 'resize'): ResizeMethod {
  if (v === undefined) return 'pil';
  if (v === 'pil' || v === 'sharp') return v;
  throw new UsageError(`${where} must be pil or sharp, got '${String(v)}'`);
}

/** ImageNet mean and standard deviation per RGB channel (torchvision's Normalize in the original). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The eval transform's resize size for a crop of R: round(R·256/224), the original's 256 for R = 224.
 */
export function evalResizeSize(resolution: number): number {
  return roundHalfEven((resolution * 256) / 224);
}

/** torchvision CenterCrop's offset: int(round((size - crop) / 2)). */
export function centerCropOffset(size: number, crop: number): number {
  return roundHalfEven((size - crop) / 2);
}

/** A crop box in pixels (top row i, left column j, height h, width w), as torchvision's get_params returns it. */
export interface CropBox {
  i: number;
  j: number;
  h: number;
  w: number;
}

/**
 * torchvision `RandomResizedCrop.get_params(img, scale, ratio)`: up to 10 tries drawing an area fraction
 * uniformly from `scale` and an aspect ratio log-uniformly from `ratio`; the first box that fits is placed
 * uniformly; otherwise the fallback is a centre crop of the whole image clamped to the ratio range.
 * @param width image width in pixels
 * @param height image height in pixels
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  rng: Rng,
  scale: [number, number] = [0.7, 1.0],
  ratio: [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let t = 0; t < 10; t++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { i: rng.int(0, height - h + 1), j: rng.int(0, width - w + 1), h, w };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(...ratio)) {
    w = width;
    h = roundHalfEven(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    h = height;
    w = roundHalfEven(h * Math.max(...ratio));
  } else {
    w = width;
    h = height;
  }
  return { i: Math.floor((height - h) / 2), j: Math.floor((width - w) / 2), h, w };
}

/** Encoded image bytes, or raw pixels with their layout. */
interface Source {
  input: Buffer;
  raw?: { width: number; height: number; channels: 1 | 2 | 3 | 4 };
}

function open(src: string | Buffer | Source): sharp.Sharp {
  // PIL ignores ICC profiles and EXIF orientation; fail on corrupt data as PIL does.
  if (typeof src === 'string' || Buffer.isBuffer(src)) return sharp(src, { failOn: 'error', ignoreIcc: true, autoOrient: false });
  return src.raw ? sharp(src.input, { raw: src.raw }) : sharp(src.input, { failOn: 'error', ignoreIcc: true, autoOrient: false });
}

/**
 * The whole image decoded, with its alpha channel dropped (PIL's convert('RGB') drops alpha before any
 * resampling; libvips would premultiply by it).
 */
async function withoutAlpha(file: string, input: Buffer): Promise<Source> {
  const r = await raw(open(input), file);
  const keep = r.channels >= 3 ? 3 : 1;
  const out = Buffer.alloc(r.width * r.height * keep);
  for (let p = 0, n = r.width * r.height; p < n; p++) for (let c = 0; c < keep; c++) out[p * keep + c] = r.data[p * r.channels + c];
  return { input: out, raw: { width: r.width, height: r.height, channels: keep as 1 | 3 } };
}

async function readImageFile(file: string): Promise<Buffer> {
  let b: Buffer;
  try {
    b = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SpurmemError(`${file}: cannot read image (${code === 'ENOENT' ? 'no such file' : messageOf(e)})`);
  }
  if (b.length === 0) throw decodeError(file, b, undefined);
  return b;
}

/**
 * The error for an image that does not decode, the same on every run: an empty file or a JPEG/PNG cut
 * short says so (libvips words those failures differently from run to run); otherwise the decoder's own
 * SpurmemError, or its message under the file's name.
 * @param bytes the file's bytes, when they were read
 */
function decodeError(file: string, bytes: Uint8Array | undefined, e: unknown): SpurmemError {
  const why = bytes === undefined ? undefined : bytes.length === 0 ? 'the file is empty' : truncationReason(bytes);
  if (why) return new SpurmemError(`${file}: cannot decode image (${why})`);
  return e instanceof SpurmemError ? e : new SpurmemError(`${file}: cannot decode image (${messageOf(e)})`);
}

/** Width and height of an image from its header; `input` is the file name or its bytes. */
export async function imageSize(file: string, input: string | Buffer = file): Promise<{ width: number; height: number }> {
  if (typeof input !== 'string') {
    const quick = headerSize(input);
    if (quick) return quick;
  }
  try {
    const m = await open(input).metadata();
    if (!m.width || !m.height) throw new Error('no dimensions in the header');
    return { width: m.width, height: m.height };
  } catch (e) {
    throw decodeError(file, typeof input === 'string' ? undefined : input, e);
  }
}

async function raw(pipeline: sharp.Sharp, file: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  try {
    const r = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return { data: r.data, width: r.info.width, height: r.info.height, channels: r.info.channels };
  } catch (e) {
    throw new SpurmemError(`${file}: cannot decode image (${messageOf(e)})`);
  }
}

/** A rectangle in pixels. */
interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Copies `rect` out of an interleaved image as 3-channel RGB (1 channel = grey is replicated, a 2nd or
 * 4th alpha channel is dropped, as PIL's convert('RGB')), mirrored left-right with `flop`.
 */
function cropRgb(src: Buffer, srcW: number, channels: number, rect: Rect, flop: boolean): Uint8Array {
  if (channels === 3 && !flop && rect.left === 0 && rect.top === 0 && rect.width === srcW && src.length === srcW * rect.height * 3) {
    return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  }
  const out = new Uint8Array(rect.width * rect.height * 3);
  const grey = channels < 3;
  for (let y = 0; y < rect.height; y++) {
    const row = (rect.top + y) * srcW;
    for (let x = 0; x < rect.width; x++) {
      const sx = rect.left + (flop ? rect.width - 1 - x : x);
      const si = (row + sx) * channels;
      const di = (y * rect.width + x) * 3;
      out[di] = src[si];
      out[di + 1] = src[grey ? si : si + 1];
      out[di + 2] = src[grey ? si : si + 2];
    }
  }
  return out;
}

/**
 * `--resize sharp`: an approximation of PIL's `img.crop(box).resize((outW, outH), BILINEAR)` with libvips,
 * then the `post` crop of the result (default: all of it), optionally mirrored. Shrinking axes use libvips' reduce with the linear kernel (PIL's
 * antialiased triangle filter). Growing axes use a bilinear affine map with PIL's pixel-centre
 * convention (x_src = (x + 0.5)·w/outW - 0.5) on an input padded by one copied pixel, because libvips'
 * own upsizing puts pixel centres elsewhere (a visible shift on CelebA's 178 x 218 images).
 * JPEG shrink-on-load is kept off (PIL decodes at full size), via the pre-resize extract.
 * Measured against torchvision + PIL (test/transform-parity.test.ts): mean |difference| after Normalize
 * 0.003-0.005 on JPEG photos (the JPEG decoders differ by a level here and there), max 2 levels of 255
 * on PNGs. Reductions by 4x or more (e.g. R = 64 from a 500-pixel image) go through libvips' integer box
 * pre-shrink first, which PIL does not do: still 0.005 on photos, more on high-frequency patterns.
 */
async function sharpResizedCrop(file: string, input: Buffer, box: Rect, outW: number, outH: number, post: Rect | undefined, flop: boolean): Promise<Uint8Array> {
  try {
    return await sharpResizedCropUnchecked(file, input, box, outW, outH, post, flop);
  } catch (e) {
    throw decodeError(file, input, e);
  }
}

async function sharpResizedCropUnchecked(file: string, input: Buffer, box: Rect, outW: number, outH: number, post: Rect | undefined, flop: boolean): Promise<Uint8Array> {
  const want = post ?? { left: 0, top: 0, width: outW, height: outH };
  const run = async (src: Source): Promise<{ data: Buffer; width: number; channels: number; rect: Rect }> => {
    if (box.width >= outW && box.height >= outH) {
      let p = open(src).extract(box);
      if (box.width !== outW || box.height !== outH) p = p.resize(outW, outH, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
      if (post) p = p.extract(post);
      const r = await raw(p, file);
      if (r.width !== want.width || r.height !== want.height) throw new SpurmemError(`${file}: resize produced ${r.width}x${r.height}, expected ${want.width}x${want.height}`);
      return { data: r.data, width: r.width, channels: r.channels, rect: { left: 0, top: 0, width: r.width, height: r.height } };
    }
    // shrink what shrinks, pad one copied pixel on every side, then grow with PIL's bilinear sampling
    const wA = Math.min(box.width, outW);
    const hA = Math.min(box.height, outH);
    let a = open(src).extract(box);
    if (wA !== box.width || hA !== box.height) a = a.resize(wA, hA, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false });
    const ra = await raw(a.extend({ top: 1, bottom: 1, left: 1, right: 1, extendWith: 'copy' }), file);
    const b = sharp(ra.data, { raw: { width: ra.width, height: ra.height, channels: ra.channels as 1 | 2 | 3 | 4 } }).affine(
      [outW / wA, 0, 0, outH / hA],
      { idx: -0.5, idy: -0.5, odx: -0.5, ody: -0.5, interpolator: sharp.interpolators.bilinear },
    );
    const rb = await raw(b, file);
    if (rb.width < want.left + want.width || rb.height < want.top + want.height) {
      throw new SpurmemError(`${file}: resize produced ${rb.width}x${rb.height}, expected at least ${outW}x${outH}`);
    }
    return { data: rb.data, width: rb.width, channels: rb.channels, rect: want };
  };
  let r = await run({ input });
  // an alpha channel was resampled premultiplied: start again from the decoded image without it
  if (r.channels === 2 || r.channels === 4) r = await run(await withoutAlpha(file, input));
  return cropRgb(r.data, r.width, r.channels, r.rect, flop);
}

/** A decoded image with what PIL's convert('RGB') does to it (see {@link decodeImage}). */
export interface DecodedImage {
  file: string;
  /** Interleaved samples as decoded (8-bit, or 16-bit for 16-bit PNGs), width * height * channels. */
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
  channels: number;
  /** The mode PIL opens the file in ('RGB', 'L', 'CMYK', 'P', 'I', ...; '?' for a format without a known header). */
  mode: string;
  toRgb: PilToRgb;
}

function uint16View(b: Buffer): Uint16Array {
  if (b.byteOffset % 2 === 0) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return new Uint16Array(Uint8Array.from(b).buffer);
}

/**
 * Decodes an image at full size to the samples PIL reads, with the colour conversion PIL's convert('RGB')
 * applies to its mode: sharp (libvips) decodes; CMYK JPEGs (YCCK too) are read as CMYK with Adobe's
 * polarity, as PIL does, not through an ICC transform; 16-bit PNGs are read as 16-bit samples (PIL keeps
 * the high byte, or for 16-bit greyscale clamps the value to 0..255); palette, 1-bit and 2/4-bit images are
 * expanded; alpha is kept here and dropped by the conversion. ICC profiles and EXIF orientation are ignored.
 * @param input the file's bytes (read from `file` when not given)
 * @throws SpurmemError naming the file when it is missing or does not decode
 */
export async function decodeImage(file: string, input?: Buffer): Promise<DecodedImage> {
  const bytes = input ?? (await readImageFile(file));
  try {
    return await decodeBytes(file, bytes);
  } catch (e) {
    throw decodeError(file, bytes, e);
  }
}

async function decodeBytes(file: string, bytes: Buffer): Promise<DecodedImage> {
  const h = headerInfo(bytes);
  const mode = h ? pilMode(h) : '?';
  let r: { data: Buffer; width: number; height: number; channels: number };
  let data: Uint8Array | Uint16Array;
  let toRgb: PilToRgb;
  if (h?.format === 'jpeg' && h.depth === 4) {
    r = await raw(open(bytes).pipelineColourspace('cmyk').toColourspace('cmyk'), file);
    if (r.channels !== 4) throw new SpurmemError(`${file}: a CMYK JPEG decoded to ${r.channels} channels, expected 4`);
    data = r.data;
    toRgb = 'cmyk';
  } else if (h?.format === 'png' && h.depth === 16) {
    const colour = h.colourType === 2 || h.colourType === 6;
    try {
      const o = await open(bytes)
        .toColourspace(colour ? 'rgb16' : 'grey16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      r = { data: o.data, width: o.info.width, height: o.info.height, channels: o.info.channels };
    } catch (e) {
      throw new SpurmemError(`${file}: cannot decode image (${messageOf(e)})`);
    }
    data = uint16View(r.data);
    toRgb = colour ? 'rgb16-high' : h.colourType === 0 ? 'grey16-clip' : 'grey16-high';
  } else {
    r = await raw(open(bytes), file);
    data = r.data;
    toRgb = r.channels >= 3 ? 'rgb' : 'grey';
  }
  if (data.length !== r.width * r.height * r.channels) throw new SpurmemError(`${file}: decoded ${data.length} samples, expected ${r.width}x${r.height}x${r.channels}`);
  return { file, data, width: r.width, height: r.height, channels: r.channels, mode, toRgb };
}

/**
 * What the native transform does to one decoded image: crop `box`, resize to `size`, keep `window`,
 * mirror with `flip` (rectangles [left, top, width, height]).
 */
export interface TransformPlan {
  box: [number, number, number, number];
  size: [number, number];
  window: [number, number, number, number];
  flip: boolean;
}

/**
 * The eval transform's plan: torchvision Resize((S, S)) with S = round(R·256/224) (the aspect ratio is not
 * kept), then CenterCrop(R) with torchvision's offsets int(round((S - R) / 2)).
 */
export function evalPlan(width: number, height: number, resolution: number): TransformPlan {
  const s = evalResizeSize(resolution);
  const off = centerCropOffset(s, resolution);
  return { box: [0, 0, width, height], size: [s, s], window: [off, off, resolution, resolution], flip: false };
}

/**
 * The train transform's plan: RandomResizedCrop(R, scale (0.7, 1), ratio (3/4, 4/3)) then
 * RandomHorizontalFlip(0.5), drawn from `rng` in torchvision's order (crop box, then the flip).
 */
export function trainPlan(width: number, height: number, resolution: number, rng: Rng): TransformPlan {
  const b = randomResizedCropBox(width, height, rng);
  const flip = rng.next() < 0.5;
  return { box: [b.j, b.i, b.w, b.h], size: [resolution, resolution], window: [0, 0, resolution, resolution], flip };
}

/**
 * Runs PIL's convert('RGB') + crop + bilinear resize + window crop (+ mirror) on a set of decoded images in
 * one native call, bit for bit as PIL 9 computes them (native/image/pil_resample.h).
 * @returns the windows' RGB bytes (HWC), one image after another
 * @throws SpurmemError naming the file whose plan does not fit its image
 */
export async function pilTransformImages(items: readonly { image: DecodedImage; plan: TransformPlan }[]): Promise<Uint8Array> {
  let total = 0;
  const images: PilTransformImage[] = items.map(({ image: d, plan: p }) => {
    total += p.window[2] * p.window[3] * 3;
    return { data: d.data, width: d.width, height: d.height, channels: d.channels, toRgb: d.toRgb, box: p.box, size: p.size, window: p.window, flip: p.flip };
  });
  const out = new Uint8Array(total);
  try {
    await addon().pilTransform({ images, out });
  } catch (e) {
    const m = /images\[(\d+)\]/.exec(messageOf(e));
    const file = m ? items[Number(m[1])]?.image.file : undefined;
    throw new SpurmemError(`${file ? `${file}: ` : ''}${messageOf(e)}`);
  }
  return out;
}

/** Whether the addon decodes JPEGs itself (it was built with libjpeg); otherwise sharp decodes every image. */
export function nativeJpegDecoder(): boolean {
  return addon().nativeJpeg === true;
}

/**
 * A file for {@link transformFiles}: the eval transform at `resolution`, or a given plan (the train
 * transform's, drawn from the size in the file's header) with the file's bytes.
 */
export type FileTransform = { file: string; resolution: number } | { file: string; bytes: Buffer; plan: TransformPlan };

/**
 * Reads, decodes and transforms files in one native call on `threads` threads of the addon: JPEGs (RGB and
 * greyscale) through libjpeg as PIL decodes them, then PIL's resize ({@link pilTransformImages}'s bytes).
 * @param threads decoding threads (the CPU budget's decode tokens for this batch)
 * @returns per file: its window's RGB bytes (views into one buffer); `undefined` for a file the native decoder
 *   does not handle (not a JPEG, CMYK/YCCK, or an addon built without libjpeg: use {@link decodeImage});
 *   or a SpurmemError naming the file (missing, empty, corrupt, truncated: the words of decodeImage's errors)
 */
export async function transformFiles(jobs: readonly FileTransform[], threads: number): Promise<(Uint8Array | SpurmemError | undefined)[]> {
  if (jobs.length === 0) return [];
  const { files, out } = nativeFiles(jobs);
  const status = await addon().decodeTransformFiles({ files, out, threads: Math.max(1, Math.floor(threads)) });
  return fileResults(files, out, status);
}

/**
 * Whether {@link transformFilesPooled} decodes in the background: the addon has the native JPEG decoder
 * and the OS an idle scheduling priority (Linux). When it does, the first call links the pool to the
 * process's CPU budget (model calls close the pool's foreground; no thread trial runs).
 */
export function backgroundDecoding(): boolean {
  if (addon().decodeInBackground !== true) return false;
  if (!poolLinked) {
    cpuBudget().onModelCalls((running) => addon().setDecodeForeground(!running));
    cpuBudget().decodingInBackground();
    poolLinked = true;
  }
  return true;
}

let poolLinked = false;

/**
 * {@link transformFiles} on the process's decoding pool: `threads` threads at idle priority decode while
 * the model runs (in the gaps libtorch's threads leave on the cores, hardly slowing them down), and as many
 * at normal priority while no model call runs on the CPU (see src/util/cpu-budget.ts,
 * `onModelCalls`). Batches are served first come, first served.
 * @returns the results as transformFiles', and the CPU seconds the files took (all threads)
 */
export async function transformFilesPooled(jobs: readonly FileTransform[], threads: number): Promise<{ results: (Uint8Array | SpurmemError | undefined)[]; cpuSeconds: number }> {
  if (jobs.length === 0) return { results: [], cpuSeconds: 0 };
  const { files, out } = nativeFiles(jobs);
  const r = await addon().decodeTransformFilesPooled({ files, out, threads: Math.max(1, Math.floor(threads)) });
  return { results: await fileResults(files, out, r.status), cpuSeconds: r.cpuSeconds };
}

/** The addon's file list for jobs, and the buffer their windows go to. */
function nativeFiles(jobs: readonly FileTransform[]): { files: DecodeTransformFile[]; out: Uint8Array } {
  let total = 0;
  const files: DecodeTransformFile[] = jobs.map((j) => {
    let f: DecodeTransformFile;
    if ('plan' in j) {
      f = { file: j.file, bytes: j.bytes, box: j.plan.box, size: j.plan.size, window: j.plan.window, flip: j.plan.flip };
    } else {
      const p = evalPlan(1, 1, j.resolution); // its box (the whole image) is the native default
      f = { file: j.file, size: p.size, window: p.window, flip: false };
    }
    total += f.window[2] * f.window[3] * 3;
    return f;
  });
  return { files, out: new Uint8Array(total) };
}

/** Per file: its window's bytes (a view into out), undefined (not for the native decoder) or its error. */
async function fileResults(files: DecodeTransformFile[], out: Uint8Array, status: (0 | 1 | string)[]): Promise<(Uint8Array | SpurmemError | undefined)[]> {
  const res: (Uint8Array | SpurmemError | undefined)[] = [];
  let at = 0;
  for (let i = 0; i < files.length; i++) {
    const n = files[i].window[2] * files[i].window[3] * 3;
    const st = status[i];
    if (st === 0) res.push(out.subarray(at, at + n));
    else if (st === 1) res.push(undefined);
    else res.push(await nativeError(files[i].file, files[i].bytes, st));
    at += n;
  }
  return res;
}

/** The error for a file the native decoder could not read or decode, worded as decodeImage's. */
async function nativeError(file: string, bytes: Uint8Array | undefined, why: string): Promise<SpurmemError> {
  if (why.startsWith('cannot decode image')) {
    let b = bytes;
    if (b === undefined) b = await readFile(file).catch(() => undefined);
    const cut = b && b.length > 0 ? truncationReason(b) : undefined;
    if (cut) return new SpurmemError(`${file}: cannot decode image (${cut})`);
  }
  return new SpurmemError(`${file}: ${why}`);
}

/** The native path of the `pil` transforms for one file, or undefined when sharp must decode it. */
async function nativeOne(job: FileTransform): Promise<Uint8Array | undefined> {
  if (!nativeJpegDecoder()) return undefined;
  const [r] = await transformFiles([job], 1);
  if (r instanceof SpurmemError) throw r;
  return r;
}

/**
 * The original's eval transform up to ToTensor: torchvision Resize((S, S)) with S = round(R·256/224),
 * ignoring the aspect ratio (PIL bilinear), then CenterCrop(R). With `resize: 'pil'` (default) the bytes
 * are torchvision + PIL's; with 'sharp', libvips' approximation.
 * @returns uint8 RGB, HWC, R·R·3 bytes
 * @throws SpurmemError naming the file when it is missing or does not decode
 */
export async function evalTransform(file: string, resolution: number, o: { resize?: ResizeMethod } = {}): Promise<Uint8Array> {
  const pil = checkResizeMethod(o.resize) === 'pil';
  if (pil) {
    const px = await nativeOne({ file, resolution });
    if (px) return px;
  }
  const input = await readImageFile(file);
  if (pil) {
    const d = await decodeImage(file, input);
    return pilTransformImages([{ image: d, plan: evalPlan(d.width, d.height, resolution) }]);
  }
  const { width, height } = await imageSize(file, input);
  const s = evalResizeSize(resolution);
  const off = centerCropOffset(s, resolution);
  return sharpResizedCrop(file, input, { left: 0, top: 0, width, height }, s, s, { left: off, top: off, width: resolution, height: resolution }, false);
}

/**
 * The original's train transform up to ToTensor: RandomResizedCrop(R, scale (0.7, 1), ratio (3/4, 4/3),
 * bilinear) then RandomHorizontalFlip(p = 0.5), with parameters drawn from `rng` in torchvision's order
 * (crop box first, then the flip); PIL's bytes with `resize: 'pil'` (default).
 * @returns uint8 RGB, HWC, R·R·3 bytes
 * @throws SpurmemError naming the file when it is missing or does not decode
 */
export async function trainTransform(file: string, resolution: number, rng: Rng, o: { resize?: ResizeMethod } = {}): Promise<Uint8Array> {
  const input = await readImageFile(file);
  if (checkResizeMethod(o.resize) === 'pil') {
    const h = nativeJpegDecoder() ? headerInfo(input) : undefined;
    if (h?.format === 'jpeg') {
      // the plan is drawn from the header's size first: rng is used once, whichever decoder runs
      const plan = trainPlan(h.width, h.height, resolution, rng);
      const [r] = await transformFiles([{ file, bytes: input, plan }], 1);
      if (r instanceof SpurmemError) throw r;
      if (r) return r;
      const d = await decodeImage(file, input);
      return pilTransformImages([{ image: d, plan }]);
    }
    const d = await decodeImage(file, input);
    return pilTransformImages([{ image: d, plan: trainPlan(d.width, d.height, resolution, rng) }]);
  }
  const { width, height } = await imageSize(file, input);
  const box = randomResizedCropBox(width, height, rng);
  const flip = rng.next() < 0.5;
  return sharpResizedCrop(file, input, { left: box.j, top: box.i, width: box.w, height: box.h }, resolution, resolution, undefined, flip);
}
