/**
 * What the bytes of a JPEG or PNG file say before it is decoded: its size and colour layout (the mode PIL
 * opens it in), read from the header without a trip to the thread pool, and whether the file is cut short.
 */

/** What a JPEG or PNG header says: size and, for PIL, the mode it opens the file in. */
export interface ImageHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /** JPEG: colour components (1, 3 or 4). PNG: bit depth. */
  depth: number;
  /** PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA); -1 for JPEG. */
  colourType: number;
}

/**
 * The mode PIL's JpegImagePlugin / PngImagePlugin open a file in, from its header: JPEG L, RGB or CMYK
 * (by components; YCCK files are CMYK too); PNG 1, L, I (16-bit grey), RGB, P, LA or RGBA (16-bit grey +
 * alpha and 16-bit RGBA open as RGBA).
 */
export function pilMode(h: ImageHeader): string {
  if (h.format === 'jpeg') return h.depth === 1 ? 'L' : h.depth === 4 ? 'CMYK' : 'RGB';
  switch (h.colourType) {
    case 0:
      return h.depth === 1 ? '1' : h.depth === 16 ? 'I' : 'L';
    case 2:
      return 'RGB';
    case 3:
      return 'P';
    case 4:
      return h.depth === 16 ? 'RGBA' : 'LA';
    default:
      return 'RGBA';
  }
}

/**
 * Size and colour layout from a JPEG (SOF marker) or PNG (IHDR) header in memory; undefined for other
 * formats or a header it cannot follow (then sharp reads it). Saves a trip to the thread pool per image.
 */
export function headerInfo(b: Uint8Array): ImageHeader | undefined {
  if (b.length > 25 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[12] === 0x49 && b[13] === 0x48 && b[14] === 0x44 && b[15] === 0x52) {
    const w = ((b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19]) >>> 0;
    const h = ((b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23]) >>> 0;
    return w > 0 && h > 0 ? { format: 'png', width: w, height: h, depth: b[24], colourType: b[25] } : undefined;
  }
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1];
    if (m === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    // SOF0-3, 5-7, 9-11, 13-15 (not DHT C4, JPG C8, DAC CC)
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      const h = (b[i + 5] << 8) | b[i + 6];
      const w = (b[i + 7] << 8) | b[i + 8];
      return w > 0 && h > 0 ? { format: 'jpeg', width: w, height: h, depth: b[i + 9], colourType: -1 } : undefined;
    }
    if (m === 0xda || len < 2) return undefined; // start of scan before a frame header
    i += 2 + len;
  }
  return undefined;
}

/** Width and height from a JPEG or PNG header in memory (see {@link headerInfo}). */
export function headerSize(b: Uint8Array): { width: number; height: number } | undefined {
  const h = headerInfo(b);
  return h ? { width: h.width, height: h.height } : undefined;
}

/**
 * Why an encoded JPEG or PNG is cut short, or undefined when its structure is complete (or it is another
 * format). JPEG: the marker segments are followed through every scan's entropy-coded data up to the
 * end-of-image marker (FFD9); PNG: the chunks up to IEND. A stable, specific reason for `data check`,
 * where libvips' own message for the same file varies between runs (its error buffer is shared by the
 * threads decoding other images). PIL refuses such files too ("image file is truncated").
 * @param b the whole file's bytes
 */
export function truncationReason(b: Uint8Array): string | undefined {
  const n = b.length;
  if (n >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    let i = 8;
    while (i + 8 <= n) {
      const len = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
      const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
      if (i + 12 + len > n) return `truncated PNG: the file ends after ${n} bytes, inside its ${type} chunk (which needs ${i + 12 + len})`;
      if (type === 'IEND') return undefined;
      i += 12 + len;
    }
    return `truncated PNG: the file ends after ${n} bytes without an IEND chunk`;
  }
  if (n < 2 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  const cut = `truncated JPEG: the file ends after ${n} bytes without an end-of-image marker (FFD9)`;
  let i = 2;
  for (;;) {
    while (i < n && b[i] === 0xff && i + 1 < n && b[i + 1] === 0xff) i += 1; // fill bytes
    if (i + 1 >= n) return cut;
    if (b[i] !== 0xff) return undefined; // not a marker where one belongs: corrupt, not cut short
    const m = b[i + 1];
    if (m === 0xd9) return undefined;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    if (i + 3 >= n) return cut;
    const len = (b[i + 2] << 8) | b[i + 3];
    if (len < 2) return undefined;
    if (i + 2 + len > n) return cut;
    i += 2 + len;
    if (m !== 0xda) continue;
    // entropy-coded data: ends at the first marker other than a stuffed 00 or a restart marker
    while (i + 1 < n && !(b[i] === 0xff && b[i + 1] !== 0x00 && !(b[i + 1] >= 0xd0 && b[i + 1] <= 0xd7))) i += 1;
    if (i + 1 >= n) return cut;
  }
}
