/**
 * Byte-level tools for `.pth` files in tests: a zip reader/writer for the zip layout (stored entries,
 * CRC-32 as PyTorch writes them), a splitter for the legacy layout (magic, protocol, sys_info and object
 * pickles, the storage-key list, then one `u64 numel + bytes` record per storage), a pickle opcode
 * scanner that finds the integers, string lengths and memo indices of a pickle, and a small pickle
 * builder for hand-made hostile files.
 */
import { crc32 } from 'node:zlib';

// ---- zip layout -------------------------------------------------------------------------------------

/** One stored entry of a zip file, with the offsets of its header fields in the file. */
export interface ZipEntry {
  name: string;
  /** Offset of the local file header. */
  local: number;
  /** Offset of the entry's data. */
  data: number;
  size: number;
  crc: number;
  /** Offset of the central-directory record. */
  central: number;
}

/** The entries and end-of-central-directory offset of a zip file (no zip64: fixtures are small). */
export interface ZipLayout {
  entries: ZipEntry[];
  eocd: number;
  cdStart: number;
}

/** Parses a zip file's central directory. Throws on anything unexpected (fixtures are well formed). */
export function parseZip(buf: Buffer): ZipLayout {
  let eocd = -1;
  for (let i = buf.length - 22; i >= 0; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no end-of-central-directory record');
  const count = buf.readUInt16LE(eocd + 10);
  const cdStart = buf.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  let p = cdStart;
  for (let k = 0; k < count; k++) {
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central directory entry ${k}`);
    const crc = buf.readUInt32LE(p + 16);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('latin1', p + 46, p + 46 + nameLen);
    const data = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    entries.push({ name, local, data, size, crc, central: p });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, eocd, cdStart };
}

/** The contents of every entry, in file order. */
export function zipContents(buf: Buffer): { name: string; data: Buffer }[] {
  return parseZip(buf).entries.map((e) => ({ name: e.name, data: Buffer.from(buf.subarray(e.data, e.data + e.size)) }));
}

/**
 * Writes stored entries as PyTorch's writer lays them out: each entry's data aligned to 64 bytes by an
 * "FB" extra field, CRC-32 in the local header and the central directory, then the end record.
 */
export function buildZip(entries: { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'latin1');
    const crc = crc32(e.data) >>> 0;
    const base = off + 30 + name.length + 4;
    const pad = (64 - (base % 64)) % 64;
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(0, 8);
    h.writeUInt16LE(0x21, 12);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(e.data.length, 18);
    h.writeUInt32LE(e.data.length, 22);
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(4 + pad, 28);
    const extra = Buffer.alloc(4 + pad, 'Z');
    extra.writeUInt16LE(0x4246, 0);
    extra.writeUInt16LE(pad, 2);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(off, 42);
    central.push(c, name);
    parts.push(h, name, extra, e.data);
    off += 30 + name.length + extra.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cd, end]);
}

/**
 * Replaces the bytes of one entry by as many new bytes and writes the entry's new CRC-32 into both its
 * local header and its central-directory record, keeping the rest of PyTorch's file as it was.
 */
export function patchEntrySameSize(buf: Buffer, e: ZipEntry, data: Buffer): Buffer {
  if (data.length !== e.size) throw new Error('patchEntrySameSize: size differs');
  const out = Buffer.from(buf);
  data.copy(out, e.data);
  const crc = crc32(data) >>> 0;
  out.writeUInt32LE(crc, e.local + 14);
  out.writeUInt32LE(crc, e.central + 16);
  return out;
}

// ---- pickles ----------------------------------------------------------------------------------------

/** What an opcode's argument is, for targeted edits. */
export type ArgKind = 'int' | 'strlen' | 'memo' | 'other' | 'none';

/** One opcode of a pickle: its position, the position and width of its binary argument. */
export interface Op {
  pos: number;
  code: number;
  /** Offset and width of the fixed-size binary argument (int value, length or memo index). */
  arg: number;
  width: number;
  kind: ArgKind;
  /** Position after the opcode and everything it consumes. */
  end: number;
  /** Text arguments of GLOBAL ('c'), split at the newline. */
  text?: string[];
  /** For string opcodes: the string's bytes. */
  str?: Buffer;
}

const NO_ARG = new Set([..."()]}.012Nlaetdsu" + 'Rb' + 'Q'].map((c) => c.charCodeAt(0)).concat(
  [0x88, 0x89, 0x81, 0x85, 0x86, 0x87, 0x93, 0x94, 0x8f, 0x90, 0x91, 0x97, 0x98, 0x6f /* o */]));

/**
 * Splits a pickle into opcodes, from `start` up to and including STOP. Stops early (without STOP) at
 * an opcode it does not know or at the end of the bytes.
 */
export function scanPickle(buf: Buffer, start = 0): { ops: Op[]; end: number; complete: boolean } {
  const ops: Op[] = [];
  let p = start;
  const fixed = (code: number, width: number, kind: ArgKind): Op => ({ pos: p, code, arg: p + 1, width, kind, end: p + 1 + width });
  while (p < buf.length) {
    const code = buf[p];
    const ch = String.fromCharCode(code);
    let op: Op;
    if (NO_ARG.has(code)) op = { pos: p, code, arg: p + 1, width: 0, kind: 'none', end: p + 1 };
    else if (code === 0x80) op = fixed(code, 1, 'other');
    else if (ch === 'K') op = fixed(code, 1, 'int');
    else if (ch === 'M') op = fixed(code, 2, 'int');
    else if (ch === 'J') op = fixed(code, 4, 'int');
    else if (ch === 'q' || ch === 'h') op = fixed(code, 1, 'memo');
    else if (ch === 'r' || ch === 'j') op = fixed(code, 4, 'memo');
    else if (ch === 'G') op = fixed(code, 8, 'other');
    else if (code === 0x95) op = fixed(code, 8, 'other');
    else if (code === 0x8a || code === 0x8b) {
      const w = code === 0x8a ? 1 : 4;
      if (p + 1 + w > buf.length) break;
      const n = w === 1 ? buf[p + 1] : buf.readUInt32LE(p + 1);
      op = { pos: p, code, arg: p + 1, width: w, kind: 'int', end: p + 1 + w + n };
    } else if (ch === 'U' || ch === 'C' || code === 0x8c || ch === 'X' || ch === 'T' || ch === 'B' ||
               code === 0x8d || code === 0x8e || code === 0x96) {
      const w = ch === 'U' || ch === 'C' || code === 0x8c ? 1 : code === 0x8d || code === 0x8e || code === 0x96 ? 8 : 4;
      if (p + 1 + w > buf.length) break;
      const n = w === 1 ? buf[p + 1] : w === 4 ? buf.readUInt32LE(p + 1) : Number(buf.readBigUInt64LE(p + 1));
      const s = p + 1 + w;
      op = { pos: p, code, arg: p + 1, width: w, kind: 'strlen', end: s + n, str: buf.subarray(s, Math.min(s + n, buf.length)) };
    } else if (ch === 'c' || ch === 'i') {
      const a = buf.indexOf(10, p + 1);
      const b = a < 0 ? -1 : buf.indexOf(10, a + 1);
      if (b < 0) break;
      op = { pos: p, code, arg: p + 1, width: 0, kind: 'other', end: b + 1, text: [buf.toString('latin1', p + 1, a), buf.toString('latin1', a + 1, b)] };
    } else if ('ILFSVPpg'.includes(ch)) {
      const a = buf.indexOf(10, p + 1);
      if (a < 0) break;
      op = { pos: p, code, arg: p + 1, width: 0, kind: 'other', end: a + 1 };
    } else break;
    if (op.end > buf.length) break;
    ops.push(op);
    p = op.end;
    if (ch === '.') return { ops, end: p, complete: true };
  }
  return { ops, end: p, complete: false };
}

/** Reads the integer an int opcode holds (LONG1/LONG4 up to 8 bytes, as a bigint). */
export function intValue(buf: Buffer, op: Op): bigint {
  const c = String.fromCharCode(op.code);
  if (c === 'K') return BigInt(buf[op.arg]);
  if (c === 'M') return BigInt(buf.readUInt16LE(op.arg));
  if (c === 'J') return BigInt(buf.readInt32LE(op.arg));
  const s = op.arg + op.width;
  const n = op.end - s;
  if (n === 0) return 0n;
  let v = 0n;
  for (let i = 0; i < Math.min(n, 8); i++) v |= BigInt(buf[s + i]) << BigInt(8 * i);
  return BigInt.asIntN(Math.min(n, 8) * 8, v);
}

/**
 * The bytes of an int opcode holding v: the same opcode and width when v fits there (so the pickle keeps
 * its length), else LONG1 with 8 bytes.
 */
export function encodeInt(code: number, v: bigint, width: number): Buffer {
  const c = String.fromCharCode(code);
  const fits = (bits: number, signed: boolean) =>
    signed ? v >= -(1n << BigInt(bits - 1)) && v < 1n << BigInt(bits - 1) : v >= 0n && v < 1n << BigInt(bits);
  if (c === 'K' && fits(8, false)) return Buffer.from([code, Number(v)]);
  if (c === 'M' && fits(16, false)) {
    const b = Buffer.alloc(3);
    b[0] = code;
    b.writeUInt16LE(Number(v), 1);
    return b;
  }
  if (c === 'J' && fits(32, true)) {
    const b = Buffer.alloc(5);
    b[0] = code;
    b.writeInt32LE(Number(v), 1);
    return b;
  }
  if (code === 0x8a && width > 0 && width <= 8 && fits(8 * width, true)) {
    const b = Buffer.alloc(2 + width);
    b[0] = 0x8a;
    b[1] = width;
    for (let i = 0; i < width; i++) b[2 + i] = Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn);
    return b;
  }
  return long1(v);
}

/** LONG1 with 8 bytes, two's complement. */
export function long1(v: bigint): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0x8a;
  b[1] = 8;
  b.writeBigInt64LE(BigInt.asIntN(64, v), 2);
  return b;
}

/** A small pickle writer for hand-made files (protocol 2 opcodes, as torch.save writes them). */
export class PickleWriter {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  raw(b: Buffer | number[] | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b));
    return this;
  }
  op(c: string): this {
    return this.raw(c);
  }
  global(module: string, name: string): this {
    return this.raw(`c${module}\n${name}\n`);
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return this.raw(Buffer.concat([h, b]));
  }
  int(v: number | bigint): this {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) return this.raw([0x4b, Number(n)]);
    if (n >= -(2n ** 31n) && n < 2n ** 31n) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(Number(n), 1);
      return this.raw(b);
    }
    return this.raw(long1(n));
  }
  put(i: number): this {
    if (i < 256) return this.raw([0x71, i]);
    const b = Buffer.alloc(5);
    b[0] = 0x72;
    b.writeUInt32LE(i, 1);
    return this.raw(b);
  }
  get(i: number): this {
    if (i < 256) return this.raw([0x68, i]);
    const b = Buffer.alloc(5);
    b[0] = 0x6a;
    b.writeUInt32LE(i, 1);
    return this.raw(b);
  }
  ints(v: (number | bigint)[]): this {
    this.op('(');
    for (const x of v) this.int(x);
    return this.op('t');
  }
  /** A tensor as torch.save pickles it: _rebuild_tensor_v2(persistent storage id, offset, size, stride, ...). */
  tensor(t: { key: string; numel: number | bigint; offset?: number | bigint; size: (number | bigint)[]; stride: (number | bigint)[]; storage?: string }): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op('(');
    this.op('(').str('storage').global('torch', t.storage ?? 'FloatStorage').str(t.key).str('cpu').int(t.numel).op('t').op('Q');
    this.int(t.offset ?? 0).ints(t.size).ints(t.stride).raw([0x89]);
    this.global('collections', 'OrderedDict').op(')').op('R');
    return this.op('t').op('R');
  }
  /** Starts an OrderedDict (collections.OrderedDict()); follow with '(' key value ... 'u'. */
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').op(')').op('R');
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
  done(): Buffer {
    return this.op('.').bytes();
  }
}

// ---- legacy layout ----------------------------------------------------------------------------------

/** A legacy-layout file split into its parts. */
export interface LegacyLayout {
  /** [start, end) of the magic-number, protocol, sys_info, object and key-list pickles. */
  pickles: [number, number][];
  /** One record per storage key: offset of its u64 element count, of its bytes, and their length. */
  records: { key: string; count: number; data: number; bytes: number }[];
}

const ELEMENT_SIZE: Record<string, number> = {
  FloatStorage: 4, DoubleStorage: 8, HalfStorage: 2, BFloat16Storage: 2, LongStorage: 8, IntStorage: 4,
  ShortStorage: 2, CharStorage: 1, ByteStorage: 1, BoolStorage: 1,
};

/** Splits a legacy-layout file (as torch.save(..., _use_new_zipfile_serialization=False) writes it). */
export function parseLegacy(buf: Buffer): LegacyLayout {
  const pickles: [number, number][] = [];
  let p = 0;
  const elem = new Map<string, number>();
  for (let k = 0; k < 5; k++) {
    const s = scanPickle(buf, p);
    if (!s.complete) throw new Error(`legacy pickle ${k} is incomplete`);
    pickles.push([p, s.end]);
    if (k === 3) {
      // persistent ids push 'storage', the storage type (a GLOBAL, or a memo GET of one) and the key:
      // follow the memo to map each key to its element size
      type V = { g?: string; s?: string } | undefined;
      const memo = new Map<number, V>();
      const last: V[] = [];
      for (const o of s.ops) {
        const c = String.fromCharCode(o.code);
        let v: V;
        if (c === 'q' || c === 'r') {
          memo.set(c === 'q' ? buf[o.arg] : buf.readUInt32LE(o.arg), last[last.length - 1]);
          continue;
        }
        if (o.code === 0x94) {
          // MEMOIZE (protocol 4+): the next memo index
          memo.set(memo.size, last[last.length - 1]);
          continue;
        }
        if (o.code === 0x93) {
          // STACK_GLOBAL (protocol 4+): module and name were pushed as strings
          const name = last.pop();
          const module = last.pop();
          last.push(module?.s !== undefined && name?.s !== undefined ? { g: `${module.s}.${name.s}` } : undefined);
          continue;
        }
        if (c === 'h' || c === 'j') v = memo.get(c === 'h' ? buf[o.arg] : buf.readUInt32LE(o.arg));
        else if (o.text) v = { g: `${o.text[0]}.${o.text[1]}` };
        else if (o.str) v = { s: o.str.toString('utf8') };
        else v = undefined;
        last.push(v);
        const n = last.length;
        if (n >= 3 && last[n - 3]?.s === 'storage' && last[n - 2]?.g?.startsWith('torch.') && last[n - 1]?.s !== undefined) {
          const t = last[n - 2]!.g!.slice(6);
          if (t in ELEMENT_SIZE) elem.set(last[n - 1]!.s!, ELEMENT_SIZE[t]);
        }
      }
    }
    p = s.end;
  }
  const keys = scanPickle(buf, pickles[4][0]).ops.filter((o) => o.str).map((o) => o.str!.toString('latin1'));
  const records: LegacyLayout['records'] = [];
  for (const key of keys) {
    const n = Number(buf.readBigUInt64LE(p));
    const es = elem.get(key);
    if (es === undefined) throw new Error(`legacy file: no element size for storage '${key}'`);
    records.push({ key, count: p, data: p + 8, bytes: n * es });
    p += 8 + n * es;
  }
  if (p !== buf.length) throw new Error(`legacy file: ${buf.length - p} bytes after the last storage`);
  return { pickles, records };
}
