/**
 * A contact sheet: a grid of image thumbnails, each with a caption of up to two lines below it, drawn by
 * sharp (thumbnails composited onto a white canvas, the captions as SVG text). The study uses it for the
 * images a change flips (what the critical neurons carry).
 */
import sharp from 'sharp';
import { SpurmemError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';

/** One tile: an image file and its caption lines; `accent` colours the frame (a CSS colour). */
export interface ContactTile {
  file: string;
  lines: string[];
  accent?: string;
}

/** Layout of {@link writeContactSheet}; sizes in pixels. */
export interface ContactSheetOptions {
  /** Side of a thumbnail (default 112). */
  thumb?: number;
  /** Tiles per row (default 8, fewer when there are fewer tiles). */
  columns?: number;
  /** A title line above the grid. */
  title?: string;
}

const PAD = 6;
const LINE = 13;
const FRAME = 3;

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The size of the sheet for `n` tiles (what {@link writeContactSheet} writes): the grid, at least as wide as the title. */
export function contactSheetSize(n: number, o: ContactSheetOptions = {}): { width: number; height: number; columns: number; rows: number } {
  const thumb = o.thumb ?? 112;
  const columns = Math.max(1, Math.min(o.columns ?? 8, n));
  const rows = Math.max(1, Math.ceil(n / columns));
  const cellW = thumb + 2 * FRAME + PAD;
  const cellH = thumb + 2 * FRAME + 2 * LINE + PAD;
  const top = o.title ? LINE + 2 * PAD : PAD;
  // room for the title (about 7.5 px a character in bold 12 px sans-serif)
  const titleW = o.title ? Math.ceil(o.title.length * 7.5) + 2 * PAD : 0;
  return { width: Math.max(PAD + columns * cellW, titleW), height: top + rows * cellH, columns, rows };
}

/**
 * Writes a PNG contact sheet of `tiles` (in order, row by row) to `path` (atomically). Each image is
 * fitted into a square thumbnail (aspect kept, white margins) inside a frame of its accent colour, with its
 * caption lines below.
 * @returns the sheet's width and height in pixels
 * @throws the decoder's error (naming the file) for an image sharp cannot read
 */
export async function writeContactSheet(path: string, tiles: readonly ContactTile[], o: ContactSheetOptions = {}): Promise<{ width: number; height: number }> {
  const thumb = o.thumb ?? 112;
  const { width, height, columns } = contactSheetSize(tiles.length, o);
  const cellW = thumb + 2 * FRAME + PAD;
  const cellH = thumb + 2 * FRAME + 2 * LINE + PAD;
  const top = o.title ? LINE + 2 * PAD : PAD;
  const layers: sharp.OverlayOptions[] = [];
  const svg: string[] = [];
  if (o.title) svg.push(`<text x="${PAD}" y="${PAD + LINE - 2}" font-size="12" font-family="sans-serif" font-weight="bold">${escapeXml(o.title)}</text>`);
  for (let i = 0; i < tiles.length; i++) {
    const t = tiles[i];
    const x = PAD + (i % columns) * cellW;
    const y = top + Math.floor(i / columns) * cellH;
    svg.push(`<rect x="${x}" y="${y}" width="${thumb + 2 * FRAME}" height="${thumb + 2 * FRAME}" fill="${escapeXml(t.accent ?? '#888888')}"/>`);
    t.lines.slice(0, 2).forEach((l, k) => {
      svg.push(`<text x="${x}" y="${y + thumb + 2 * FRAME + (k + 1) * LINE - 2}" font-size="10" font-family="sans-serif">${escapeXml(l)}</text>`);
    });
    let img: Buffer;
    try {
      img = await sharp(t.file).rotate().resize(thumb, thumb, { fit: 'contain', background: '#ffffff' }).flatten({ background: '#ffffff' }).png().toBuffer();
    } catch (e) {
      throw new SpurmemError(`${t.file}: ${(e as Error).message}`);
    }
    layers.push({ input: img, left: x + FRAME, top: y + FRAME });
  }
  const text = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${svg.join('')}</svg>`);
  const png = await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([{ input: text, left: 0, top: 0 }, ...layers])
    .png()
    .toBuffer();
  writeFileAtomic(path, png);
  return { width, height };
}
