/**
 * Fuzz test of the safe checkpoint reader (native/checkpoint/): thousands of mutated and truncated
 * variants of real checkpoints written by PyTorch (test/fixtures/make_fuzz.py, make_pth.py), in both
 * layouts (the legacy one also with pickle protocols 3, 4 and 5), and hand-made hostile pickles. Every read must either succeed or reject with a JS Error whose
 * message names the file: never a crash, a hang or a large allocation.
 *
 * The reads run in a child process (test/helpers/read-variants.mjs) so that a crash is seen as the
 * child's death and pinned on the file being read; a read that gives no answer within READ_DEADLINE_MS
 * is a hang; the child reports the growth of its peak RSS during each read.
 *
 * The zip reader checks the CRC-32 of every entry, so most zip variants mutate data.pkl or the storage
 * records and then write the new CRC into the local header and the central directory (or rebuild the
 * container when a length changed): the unpickler and the bounds checks behind it are really reached.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fixturesDir, repoDir, testDir } from './helpers/python.js';
import {
  PickleWriter, buildZip, encodeInt, intValue, parseLegacy, parseZip, patchEntrySameSize, scanPickle, zipContents,
  type Op,
} from './helpers/pth-bytes.js';

const READ_DEADLINE_MS = 5_000;
const PEAK_LIMIT_KB = 256 * 1024;
const MIN_VARIANTS = 5_000;

// ---- the child reader -------------------------------------------------------------------------------

interface ReadResult {
  i: number;
  ok?: boolean;
  error?: boolean;
  message?: string;
  peakKB?: number;
  ms?: number;
  crash?: string;
  hang?: boolean;
}

/** The child imports the compiled package (dist/); compiles it when it is missing or older than src/. */
function ensureDist(): void {
  const out = join(repoDir, 'dist', 'src', 'native.js');
  const src = join(repoDir, 'src', 'native.ts');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return;
  execFileSync(process.execPath, [join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoDir, 'tsconfig.json')], { stdio: 'inherit' });
}

/**
 * Reads every file in a child process; restarts the child after a crash or a hang, pinned on the file it
 * was reading, and goes on with the next one. `env` is passed to the child (self-tests use it).
 */
async function readInChild(files: string[], dir: string, env: Record<string, string> = {}, deadlineMs = READ_DEADLINE_MS): Promise<ReadResult[]> {
  const manifest = join(dir, `manifest-${Date.now()}.json`);
  writeFileSync(manifest, JSON.stringify(files));
  const results: ReadResult[] = new Array(files.length);
  let next = 0;
  while (next < files.length) {
    next = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [join(testDir, 'helpers', 'read-variants.mjs'), manifest, String(next)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      let current = next;
      let ready = false;
      let last = Date.now();
      let hung = false;
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      createInterface({ input: child.stdout }).on('line', (l) => {
        last = Date.now();
        let r: ReadResult & { ready?: boolean };
        try {
          r = JSON.parse(l) as ReadResult & { ready?: boolean };
        } catch {
          return;
        }
        if (r.ready) {
          ready = true;
          return;
        }
        results[r.i] = r;
        current = r.i + 1;
      });
      const timer = setInterval(() => {
        const limit = ready ? deadlineMs : 60_000;
        if (Date.now() - last > limit) {
          hung = true;
          child.kill('SIGKILL');
        }
      }, 100);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearInterval(timer);
        if (current >= files.length) return resolve(current);
        if (!ready && !hung) return reject(new Error(`the fuzz reader did not start (${code ?? signal}):\n${stderr}`));
        if (hung) results[current] = { i: current, hang: true };
        else results[current] = { i: current, crash: `${signal ?? `exit ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}` };
        resolve(current + 1);
      });
    });
  }
  return results;
}

// ---- deterministic randomness -----------------------------------------------------------------------

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rand {
  private r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

// ---- mutations --------------------------------------------------------------------------------------

interface Variant {
  name: string;
  bytes: Buffer;
}

const splice = (b: Buffer, at: number, del: number, ins: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([b.subarray(0, at), ins, b.subarray(at + del)]);

function flipBytes(b: Buffer, r: Rand): Buffer {
  const out = Buffer.from(b);
  const k = 1 + r.int(4);
  for (let j = 0; j < k; j++) out[r.int(out.length)] ^= 1 + r.int(255);
  return out;
}

function randomRange(b: Buffer, r: Rand): Buffer {
  const out = Buffer.from(b);
  const n = 1 + r.int(Math.min(32, out.length));
  r.bytes(n).copy(out, r.int(out.length - n + 1));
  return out;
}

function insertChunk(b: Buffer, r: Rand): Buffer {
  const at = r.int(b.length + 1);
  const n = 1 + r.int(64);
  const from = r.int(b.length);
  const chunk = r.int(2) ? r.bytes(n) : Buffer.from(b.subarray(from, from + n));
  return splice(b, at, 0, chunk);
}

function deleteChunk(b: Buffer, r: Rand): Buffer {
  const at = r.int(b.length);
  return splice(b, at, 1 + r.int(Math.min(64, b.length - at)));
}

/** What an int of a pickle is, from where it stands around a persistent id (BINPERSID 'Q'). */
type Role = 'numel' | 'offset' | 'size' | 'stride' | 'int';

function intRoles(ops: Op[]): Map<Op, Role> {
  const roles = new Map<Op, Role>();
  const isInt = (o: Op | undefined) => o?.kind === 'int';
  const code = (o: Op | undefined) => (o ? String.fromCharCode(o.code) : '');
  const skipPut = (j: number) => {
    while (j < ops.length && 'qr'.includes(code(ops[j])) && ops[j].kind === 'memo') j++;
    return j;
  };
  const tuple = (j: number, role: Role): number => {
    j = skipPut(j);
    if (code(ops[j]) === ')') return j + 1;
    if (code(ops[j]) === '(') {
      j++;
      while (j < ops.length && code(ops[j]) !== 't') {
        if (isInt(ops[j])) roles.set(ops[j], role);
        j++;
      }
      return j + 1;
    }
    while (isInt(ops[j])) roles.set(ops[j++], role);
    return j + 1;  // TUPLE1/2/3
  };
  for (let i = 0; i < ops.length; i++) {
    if (code(ops[i]) !== 'Q') continue;
    for (let j = i - 1; j >= Math.max(0, i - 4); j--) {
      if (isInt(ops[j])) {
        roles.set(ops[j], 'numel');
        break;
      }
    }
    const j = skipPut(i + 1);
    if (isInt(ops[j])) roles.set(ops[j], 'offset');
    tuple(tuple(j + 1, 'size'), 'stride');
  }
  for (const o of ops) if (isInt(o) && !roles.has(o)) roles.set(o, 'int');
  return roles;
}

const INTERESTING: bigint[] = [0n, 1n, -1n, 2n, 255n, 256n, 65535n, 65536n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 32n - 1n,
  2n ** 32n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n, -(2n ** 63n)];

/** Targeted edits of one pickle: ints by role, string lengths, memo indices, opcodes. */
function pickleEdits(pk: Buffer, r: Rand, counts: Record<string, number>): { name: string; bytes: Buffer }[] {
  const { ops } = scanPickle(pk);
  const out: { name: string; bytes: Buffer }[] = [];
  const roles = intRoles(ops);
  const byRole = new Map<Role, Op[]>();
  for (const [o, role] of roles) byRole.set(role, [...(byRole.get(role) ?? []), o]);
  const roleList = [...byRole.keys()];
  for (let k = 0; k < counts.int && roleList.length; k++) {
    const role = roleList[k % roleList.length];
    const o = r.pick(byRole.get(role)!);
    const orig = intValue(pk, o);
    const v = r.int(3) === 0 ? r.pick([orig + 1n, orig - 1n, orig * 2n, orig * 1000003n, orig ^ (1n << BigInt(r.int(40)))]) : r.pick(INTERESTING);
    out.push({ name: `${role}@${o.pos}=${v}`, bytes: splice(pk, o.pos, o.end - o.pos, encodeInt(o.code, v, o.width)) });
  }
  const strs = ops.filter((o) => o.kind === 'strlen');
  for (let k = 0; k < counts.strlen && strs.length; k++) {
    const o = r.pick(strs);
    const len = o.end - o.arg - o.width;
    const rest = pk.length - (o.arg + o.width);
    const max = o.width === 1 ? 255n : o.width === 4 ? 2n ** 32n - 1n : 2n ** 64n - 1n;
    const cands = [0n, BigInt(len) - 1n, BigInt(len) + 1n, BigInt(len) + 1000n, BigInt(rest), BigInt(rest) + 1n, max, max / 2n + 1n, 2n ** 31n - 1n]
      .filter((v) => v >= 0n && v <= max);
    const v = r.pick(cands);
    const b = Buffer.from(pk);
    for (let i = 0; i < o.width; i++) b[o.arg + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    out.push({ name: `strlen@${o.pos}=${v}`, bytes: b });
  }
  const memo = ops.filter((o) => o.kind === 'memo');
  for (let k = 0; k < counts.memo && memo.length; k++) {
    const o = r.pick(memo);
    const cur = o.width === 1 ? pk[o.arg] : pk.readUInt32LE(o.arg);
    const v = o.width === 1 ? r.pick([0, 1, (cur + 1) & 255, (cur + 255) & 255, 255, r.int(256)])
      : r.pick([0, cur + 1, cur - 1 < 0 ? 0 : cur - 1, 256, 70000, 2 ** 31, 2 ** 32 - 1]);
    const b = Buffer.from(pk);
    if (o.width === 1) b[o.arg] = v;
    else b.writeUInt32LE(v >>> 0, o.arg);
    out.push({ name: `memo@${o.pos}=${v}`, bytes: b });
  }
  const codes = [...'()]}.012NlaetdsuRbQKMJqhrjXcG'].map((c) => c.charCodeAt(0)).concat([0x80, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x93, 0x94, 0x95]);
  for (let k = 0; k < counts.opcode && ops.length; k++) {
    const o = r.pick(ops);
    const b = Buffer.from(pk);
    b[o.pos] = r.pick(codes);
    out.push({ name: `opcode@${o.pos}=0x${b[o.pos].toString(16)}`, bytes: b });
  }
  return out;
}

/** Generic byte-level mutations of a buffer. */
function byteEdits(b: Buffer, r: Rand, n: { flip: number; random: number; insert: number; del: number }): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  for (let k = 0; k < n.flip; k++) out.push({ name: 'flip', bytes: flipBytes(b, r) });
  for (let k = 0; k < n.random; k++) out.push({ name: 'random', bytes: randomRange(b, r) });
  for (let k = 0; k < n.insert; k++) out.push({ name: 'insert', bytes: insertChunk(b, r) });
  for (let k = 0; k < n.del; k++) out.push({ name: 'delete', bytes: deleteChunk(b, r) });
  return out;
}

/** Truncation points of a pickle: before every opcode (up to `max`, evenly spread) and inside arguments. */
function pickleCuts(pk: Buffer, r: Rand, max: number): number[] {
  const { ops } = scanPickle(pk);
  const cuts = new Set<number>();
  const step = Math.max(1, ops.length / max);
  for (let k = 0; k < ops.length; k += step) cuts.add(ops[Math.floor(k)].pos);
  for (const o of ops.filter((x) => x.end - x.pos > 1)) if (r.int(4) === 0) cuts.add(o.pos + 1 + r.int(o.end - o.pos - 1));
  cuts.add(pk.length - 1);
  return [...cuts].sort((a, b) => a - b);
}

function zipVariants(base: string, buf: Buffer, r: Rand): Variant[] {
  const out: Variant[] = [];
  const layout = parseZip(buf);
  const contents = zipContents(buf);
  const pklEntry = layout.entries.find((e) => e.name.endsWith('/data.pkl'))!;
  const pkl = Buffer.from(buf.subarray(pklEntry.data, pklEntry.data + pklEntry.size));
  const withPkl = (p: Buffer) =>
    p.length === pkl.length ? patchEntrySameSize(buf, pklEntry, p) : buildZip(contents.map((c) => (c.name === pklEntry.name ? { name: c.name, data: p } : c)));
  const add = (name: string, bytes: Buffer) => out.push({ name: `${base} ${name}`, bytes });

  // data.pkl mutated, CRC-32 rewritten: the unpickler and the checks behind it see every one
  for (const c of pickleCuts(pkl, r, 220)) add(`data.pkl cut@${c}`, withPkl(pkl.subarray(0, c)));
  for (const v of byteEdits(pkl, r, { flip: 130, random: 60, insert: 60, del: 60 })) add(`data.pkl ${v.name}`, withPkl(v.bytes));
  for (const v of pickleEdits(pkl, r, { int: 220, strlen: 60, memo: 60, opcode: 60 })) add(`data.pkl ${v.name}`, withPkl(v.bytes));

  // storage records and other entries, CRC-32 rewritten
  const records = contents.filter((c) => /\/data\/[^/]+$/.test(c.name));
  for (let k = 0; k < 40; k++) {
    const rec = r.pick(records);
    const kind = r.int(5);
    const entries = contents.map((c) => ({ ...c }));
    const e = entries.find((c) => c.name === rec.name)!;
    let what: string;
    if (kind === 0) { e.data = e.data.subarray(0, r.int(Math.max(1, e.data.length))); what = 'short'; }
    else if (kind === 1) { e.data = Buffer.concat([e.data, r.bytes(1 + r.int(16))]); what = 'long'; }
    else if (kind === 2) { entries.splice(entries.indexOf(e), 1); what = 'missing'; }
    else if (kind === 3) { e.name = e.name + 'x'; what = 'renamed'; }
    else { e.data = flipBytes(e.data, r); what = 'flipped'; }
    add(`${rec.name} ${what}`, buildZip(entries));
  }
  for (const [name, data] of [['byteorder', 'big'], ['byteorder', 'littl'], ['version', '99\n']] as const) {
    add(`${name}=${JSON.stringify(data)}`, buildZip(contents.map((c) => (c.name.endsWith(`/${name}`) ? { name: c.name, data: Buffer.from(data) } : c))));
  }
  add('no data.pkl', buildZip(contents.filter((c) => c !== contents.find((x) => x.name === pklEntry.name))));

  // the container itself, CRCs untouched: headers, truncation at every structure, raw bytes
  const cuts = new Set<number>([1, 3, 4, 21, 22, 29, 30, layout.cdStart, layout.eocd, layout.eocd + 10, layout.eocd + 21, buf.length - 1]);
  for (const e of layout.entries) {
    for (const c of [e.local, e.local + 4, e.local + 26, e.local + 30, e.data - 1, e.data, e.data + (e.size >> 1), e.data + e.size - 1, e.central, e.central + 46]) cuts.add(c);
  }
  for (let k = 0; k < 30; k++) cuts.add(1 + r.int(buf.length - 1));
  for (const c of [...cuts].filter((c) => c > 0 && c < buf.length).sort((a, b) => a - b)) add(`file cut@${c}`, buf.subarray(0, c));
  const u32 = [0, 1, 2 ** 31, 2 ** 32 - 1, buf.length, buf.length + 1];
  for (let k = 0; k < 80; k++) {
    const e = r.pick(layout.entries);
    const fields: [string, number, number][] = [
      ['cd.csize', e.central + 20, 4], ['cd.usize', e.central + 24, 4], ['cd.nameLen', e.central + 28, 2], ['cd.extraLen', e.central + 30, 2],
      ['cd.commentLen', e.central + 32, 2], ['cd.local', e.central + 42, 4], ['cd.method', e.central + 10, 2], ['cd.flags', e.central + 8, 2],
      ['local.nameLen', e.local + 26, 2], ['local.extraLen', e.local + 28, 2],
      ['eocd.count', layout.eocd + 10, 2], ['eocd.cdSize', layout.eocd + 12, 4], ['eocd.cdOffset', layout.eocd + 16, 4],
    ];
    const [fname, at, w] = r.pick(fields);
    const b = Buffer.from(buf);
    const cur = w === 2 ? b.readUInt16LE(at) : b.readUInt32LE(at);
    const v = r.pick([...u32, cur + 1, cur - 1, cur + 64, 0xffff]) >>> 0;
    if (w === 2) b.writeUInt16LE(v & 0xffff, at);
    else b.writeUInt32LE(v, at);
    add(`${e.name} ${fname}=${v}`, b);
  }
  for (const v of byteEdits(buf, r, { flip: 50, random: 20, insert: 20, del: 20 })) add(`file ${v.name}`, v.bytes);
  return out;
}

function legacyVariants(base: string, buf: Buffer, r: Rand): Variant[] {
  const out: Variant[] = [];
  const layout = parseLegacy(buf);
  const add = (name: string, bytes: Buffer) => out.push({ name: `${base} ${name}`, bytes });
  const [objStart, objEnd] = layout.pickles[3];
  const obj = buf.subarray(objStart, objEnd);
  const withObj = (p: Buffer) => Buffer.concat([buf.subarray(0, objStart), p, buf.subarray(objEnd)]);

  // truncation inside every pickle and at every record
  for (const [k, [s, e]] of layout.pickles.entries()) {
    for (const c of pickleCuts(buf.subarray(s, e), r, k === 3 ? 220 : 12)) add(`pickle${k} cut@${s + c}`, buf.subarray(0, s + c));
  }
  for (const rec of layout.records) {
    for (const c of [rec.count, rec.count + 4, rec.data, rec.data + (rec.bytes >> 1), rec.data + rec.bytes - 1]) {
      if (c > 0 && c < buf.length) add(`record ${rec.key} cut@${c}`, buf.subarray(0, c));
    }
  }
  // the object pickle and the small ones
  for (const v of byteEdits(obj, r, { flip: 130, random: 60, insert: 60, del: 60 })) add(`object pickle ${v.name}`, withObj(v.bytes));
  for (const v of pickleEdits(obj, r, { int: 220, strlen: 60, memo: 60, opcode: 60 })) add(`object pickle ${v.name}`, withObj(v.bytes));
  for (const k of [1, 2, 4]) {
    const [s, e] = layout.pickles[k];
    const p = buf.subarray(s, e);
    const edits = [...byteEdits(p, r, { flip: 8, random: 2, insert: 3, del: 3 }), ...pickleEdits(p, r, { int: 6, strlen: 6, memo: 4, opcode: 4 })];
    for (const v of edits) add(`pickle${k} ${v.name}`, Buffer.concat([buf.subarray(0, s), v.bytes, buf.subarray(e)]));
  }
  // record element counts
  const counts = [0n, 1n, 2n ** 31n, 2n ** 40n, 2n ** 62n, 2n ** 64n - 1n];
  for (let k = 0; k < 60; k++) {
    const rec = r.pick(layout.records);
    const b = Buffer.from(buf);
    const cur = b.readBigUInt64LE(rec.count);
    const v = r.pick([...counts, cur + 1n, cur > 0n ? cur - 1n : 0n, cur * 2n]);
    b.writeBigUInt64LE(BigInt.asUintN(64, v), rec.count);
    add(`record ${rec.key} count=${v}`, b);
  }
  for (const v of byteEdits(buf, r, { flip: 60, random: 20, insert: 20, del: 20 })) add(`file ${v.name}`, v.bytes);
  for (let k = 0; k < 20; k++) {
    const c = 1 + r.int(buf.length - 1);
    add(`file cut@${c}`, buf.subarray(0, c));
  }
  return out;
}

// ---- hand-made hostile files ------------------------------------------------------------------------

interface Hostile {
  name: string;
  bytes: Buffer;
  /** What the error must say; null: reading it may also succeed. */
  expect: RegExp | null;
}

function zipOf(pkl: Buffer, storages: Record<string, Buffer> = {}): Buffer {
  return buildZip([
    { name: 'archive/data.pkl', data: pkl },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}

function legacyOf(prefix: Buffer, obj: Buffer, records: { key: string; count: bigint; data: Buffer }[]): Buffer {
  const keys = new PickleWriter().op(']').op('(');
  for (const r of records) keys.str(r.key);
  const parts = [prefix, obj, keys.op('e').done()];
  for (const r of records) {
    const c = Buffer.alloc(8);
    c.writeBigUInt64LE(r.count);
    parts.push(c, r.data);
  }
  return Buffer.concat(parts);
}

function repeat(b: Buffer | number[] | string, n: number): Buffer {
  const one = typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b);
  return Buffer.alloc(one.length * n, one);
}

function hostileFiles(legacyPrefix: Buffer): Hostile[] {
  const P = () => new PickleWriter();
  const oneTensor = (t: Parameters<PickleWriter['tensor']>[0]) => P().orderedDict().op('(').str('w').tensor(t).op('u').done();
  const f32 = (n: number) => Buffer.alloc(4 * n);
  const out: Hostile[] = [];
  const both = (name: string, pkl: Buffer, expect: RegExp | null, storages: Record<string, Buffer> = {}) => {
    out.push({ name: `${name} (zip)`, bytes: zipOf(pkl, storages), expect });
    out.push({
      name: `${name} (legacy)`,
      bytes: legacyOf(legacyPrefix, pkl, Object.entries(storages).map(([key, data]) => ({ key, count: BigInt(data.length / 4), data }))),
      expect,
    });
  };

  // nesting and shared references
  both('1,000,000 nested tuples', P().op(']').raw(repeat([0x85], 1_000_000)).done(), /nested deeper than \d+ levels/);
  both('10,000 nested MARKs', P().raw(repeat('(', 10_000)).op(']').done(), /too many nested MARKs/);
  {
    const w = P().op('}').put(0);
    for (let i = 1; i <= 100_000; i++) w.int(1).op('}').put(i).op('s').op('0').get(i);
    both('100,000 nested dicts', w.op('0').get(0).done(), /nested deeper than \d+ levels/);
  }
  both('a list that holds itself (memo)', P().op(']').put(0).get(0).op('a').done(), /refers to itself/);
  both('a dict that holds itself (memo)', P().op('}').put(0).int(1).get(0).op('s').done(), /refers to itself/);
  both('two lists that hold each other', P().op(']').put(0).op(']').put(1).get(0).op('a').op('0').get(1).op('a').done(), /refers to itself/);
  {
    const w = P().op(']').put(0).op('0');
    for (let i = 1; i <= 64; i++) w.op('(').get(i - 1).get(i - 1).op('l').put(i).op('0');
    both('2^64 paths through shared lists', w.get(64).done(), /more than \d+ nodes/);
  }
  {
    const w = P().op('}').put(0).op('0');
    for (let i = 1; i <= 64; i++) w.op('}').op('(').int(1).get(i - 1).int(2).get(i - 1).op('u').put(i).op('0');
    both('2^64 paths through shared dicts', w.get(64).done(), /more than \d+ nodes/);
  }
  {
    const w = P().op(']').put(0).op('0');
    for (let i = 1; i <= 40; i++) w.op('(').get(i - 1).get(i - 1).op('l').put(i).op('0');
    const pkl = w.orderedDict().op('(').str('w').tensor({ key: '0', numel: 1, size: [1], stride: [1] }).str('tree').get(40).op('u').done();
    both('a state dict with 2^40 paths beside a tensor', pkl, /more than \d+ nodes/, { 0: f32(1) });
  }
  {
    // _rebuild_from_type_v2(_rebuild_from_type_v2, Tensor, (_rebuild_from_type_v2, Tensor, (...)))
    const w = P().global('torch._tensor', '_rebuild_from_type_v2').put(0).op('0').global('torch', 'Tensor').put(1).op('0').op(')').put(2).op('0');
    const depth = 300_000;
    for (let i = 1; i <= depth; i++) w.get(0).get(1).get(i + 1).op('\x87').put(i + 2).op('0');
    both(`_rebuild_from_type_v2 nested ${depth} deep`, w.get(0).get(depth + 2).op('R').done(), /_rebuild_from_type_v2|nested deeper than 512 levels/);
    const two = P().global('torch._tensor', '_rebuild_from_type_v2').put(0).op('0').global('torch', 'Tensor').put(1).op('0');
    two.get(0).get(0).get(1).get(0).get(1).op(')').op('\x87').op('\x87').op('R');
    both('_rebuild_from_type_v2 of itself', two.done(), /_rebuild_from_type_v2 nested in itself/);
  }
  // huge lengths
  both('LONG4 of 2^32-1 bytes', P().raw([0x8b, 0xff, 0xff, 0xff, 0xff]).raw('abc').done(), /wider than 64 bits/);
  both('LONG1 of 255 bytes', P().raw([0x8a, 0xff]).raw(repeat([1], 255)).done(), /wider than 64 bits/);
  both('BINUNICODE8 of 2^62 bytes', P().raw([0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40]).raw('abc').done(), /truncated/);
  both('BINUNICODE8 of 2^64-1 bytes', P().raw([0x8d, ...repeat([0xff], 8)]).raw('abc').done(), /truncated/);
  both('BINUNICODE of 2^32-1 bytes', P().raw([0x58, 0xff, 0xff, 0xff, 0xff]).raw('abc').done(), /truncated/);
  both('BINBYTES8 of 2^63 bytes', P().raw([0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80]).raw('abc').done(), /truncated/);
  both('FRAME of 2^40 bytes', P().raw([0x95, 0, 0, 0, 0, 1, 0, 0, 0]).op('N').done(), /truncated frame/);
  both('memo GET 2^32-1', P().raw([0x6a, 0xff, 0xff, 0xff, 0xff]).done(), /memo key 4294967295 is not defined/);
  both('memo PUT 2^32-1', P().op('N').raw([0x72, 0xff, 0xff, 0xff, 0xff]).done(), null);
  both('2,000,000 items on the stack', P().raw(repeat('N', 2_000_000)).done(), /stack too deep/);
  both('1,000,000 memo entries', P().raw(repeat([0x4e, 0x94, 0x30], 1_000_000)).op('N').done(), null);
  // tensors and storages out of bounds
  both('a tensor whose stride reaches past its storage', oneTensor({ key: '0', numel: 4, size: [2, 2], stride: [4, 1] }), /reaches beyond its storage '0' of 4 elements/, { 0: f32(4) });
  both('a tensor whose offset lies past its storage', oneTensor({ key: '0', numel: 4, offset: 4, size: [1], stride: [1] }), /reaches beyond its storage/, { 0: f32(4) });
  both('a tensor whose extent overflows int64', oneTensor({ key: '0', numel: 4, size: [2n ** 62n, 4], stride: [2n ** 62n, 1] }), /overflows/, { 0: f32(4) });
  both('a tensor with a negative stride', oneTensor({ key: '0', numel: 4, size: [2], stride: [-1] }), /negative tensor stride/, { 0: f32(4) });
  both('a tensor with a negative size', oneTensor({ key: '0', numel: 4, size: [-2], stride: [1] }), /negative tensor size/, { 0: f32(4) });
  both('a tensor with a negative offset', oneTensor({ key: '0', numel: 4, offset: -1, size: [1], stride: [1] }), /negative storage offset/, { 0: f32(4) });
  both('a tensor of 65 dimensions', oneTensor({ key: '0', numel: 1, size: new Array(65).fill(1), stride: new Array(65).fill(1) }), /too many dimensions/, { 0: f32(1) });
  both('an expanded tensor (stride 0) of 2^40 elements', oneTensor({ key: '0', numel: 1, size: [2n ** 40n], stride: [0] }), null, { 0: f32(1) });
  both('an empty tensor far past its storage', oneTensor({ key: '0', numel: 1, offset: 2n ** 40n, size: [0], stride: [1] }), null, { 0: f32(1) });
  out.push({ name: 'a storage of 2^40 elements in a file of a few hundred bytes (zip)', bytes: zipOf(oneTensor({ key: '0', numel: 2n ** 40n, size: [4], stride: [1] }), { 0: f32(4) }), expect: /holds 16 bytes, the storage needs 4398046511104/ });
  out.push({
    name: 'a storage of 2^40 elements in a file of a few hundred bytes (legacy)',
    bytes: legacyOf(legacyPrefix, oneTensor({ key: '0', numel: 2n ** 40n, size: [4], stride: [1] }), [{ key: '0', count: 2n ** 40n, data: f32(4) }]),
    expect: /truncated in the data of storage '0'/,
  });
  both('a storage whose byte size overflows', oneTensor({ key: '0', numel: 2n ** 62n, size: [4], stride: [1] }), /size overflows|truncated|data\.pkl says 4611686018427387904/, { 0: f32(4) });
  out.push({
    name: 'a legacy record whose count differs from the pickle',
    bytes: legacyOf(legacyPrefix, oneTensor({ key: '0', numel: 4, size: [4], stride: [1] }), [{ key: '0', count: 5n, data: f32(5) }]),
    expect: /holds 5 elements, data\.pkl says 4/,
  });
  out.push({ name: 'a storage missing from the zip', bytes: zipOf(oneTensor({ key: '0', numel: 4, size: [4], stride: [1] })), expect: /storage '0' is named in data\.pkl but 'archive\/data\/0' is missing/ });
  // refused globals
  both('os.system through STACK_GLOBAL', P().str('os').str('system').op('\x93').str('touch /tmp/x').op('\x85').op('R').done(), /refused pickle global 'os\.system'/);
  both('builtins.eval through GLOBAL', P().global('builtins', 'eval').str('1').op('\x85').op('R').done(), /refused pickle global 'builtins\.eval'/);
  both('torch.load through GLOBAL', P().global('torch', 'load').done(), /refused pickle global 'torch\.load'/);
  // the zip container
  {
    const good = zipOf(oneTensor({ key: '0', numel: 4, size: [4], stride: [1] }), { 0: f32(4) });
    const { eocd } = parseZip(good);
    const b1 = Buffer.from(good);
    b1.writeUInt16LE(0xfffe, eocd + 10);
    out.push({ name: 'a zip directory that claims 65534 entries', bytes: b1, expect: /entry count does not fit|corrupt central directory/ });
    const b2 = Buffer.from(good);
    b2.writeUInt16LE(0xffff, eocd + 10);
    out.push({ name: 'a zip64 marker without a zip64 record', bytes: b2, expect: /zip64/ });
    const b3 = Buffer.from(good);
    b3.writeUInt32LE(0xfffffff0, eocd + 16);
    out.push({ name: 'a zip directory offset past the end', bytes: b3, expect: /central directory lies outside the file/ });
  }
  return out;
}

// ---- the test ---------------------------------------------------------------------------------------

describe('checkpoint reader under fuzzing', () => {
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

  it(`reads ${MIN_VARIANTS}+ mutated real checkpoints and hostile pickles without a crash, a hang or a large allocation`, async () => {
    ensureDist();
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-fuzz-'));
    let keep = false;
    try {
      const bases: [string, Buffer][] = [
        ['smallnet.zip.pth', readFileSync(join(fixturesDir, 'fuzz', 'smallnet.zip.pth'))],
        ['smallnet.legacy.pth', readFileSync(join(fixturesDir, 'fuzz', 'smallnet.legacy.pth'))],
        ['epoch.zip.pth', readFileSync(join(fixturesDir, 'fuzz', 'epoch.zip.pth'))],
        ['epoch.legacy.pth', readFileSync(join(fixturesDir, 'fuzz', 'epoch.legacy.pth'))],
        ['variety.zip.pth', readFileSync(join(fixturesDir, 'pth', 'variety.zip.pth'))],
        ['variety.legacy.pth', readFileSync(join(fixturesDir, 'pth', 'variety.legacy.pth'))],
        // the legacy layout with pickle protocols 3-5 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL)
        ['epoch.p3.legacy.pth', readFileSync(join(fixturesDir, 'fuzz', 'epoch.p3.legacy.pth'))],
        ['smallnet.p4.legacy.pth', readFileSync(join(fixturesDir, 'fuzz', 'smallnet.p4.legacy.pth'))],
        ['epoch.p5.legacy.pth', readFileSync(join(fixturesDir, 'fuzz', 'epoch.p5.legacy.pth'))],
      ];
      const variants: Variant[] = [];
      for (const [k, [name, buf]] of bases.entries()) {
        variants.push({ name: `${name} unchanged`, bytes: buf });
        const r = new Rand(0x5eed + k);
        variants.push(...(name.includes('.zip.') ? zipVariants(name, buf, r) : legacyVariants(name, buf, r)));
      }
      const legacy = readFileSync(join(fixturesDir, 'fuzz', 'smallnet.legacy.pth'));
      const hostile = hostileFiles(legacy.subarray(0, parseLegacy(legacy).pickles[3][0]));
      const all = [...variants, ...hostile];
      const files = all.map((v, i) => {
        const f = join(dir, `${String(i).padStart(5, '0')}.pth`);
        writeFileSync(f, v.bytes);
        return f;
      });
      const t0 = Date.now();
      const results = await readInChild(files, dir);
      const seconds = (Date.now() - t0) / 1000;

      const problems: string[] = [];
      let ok = 0;
      let rejected = 0;
      let slowest = 0;
      let peak = 0;
      results.forEach((r, i) => {
        const what = `${all[i].name} [${files[i]}]`;
        slowest = Math.max(slowest, r.ms ?? 0);
        peak = Math.max(peak, r.peakKB ?? 0);
        if (r.crash) problems.push(`CRASH ${what}: ${r.crash}`);
        else if (r.hang) problems.push(`HANG (no answer in ${READ_DEADLINE_MS} ms) ${what}`);
        else if ((r.peakKB ?? 0) > PEAK_LIMIT_KB) problems.push(`ALLOCATION of ${Math.round((r.peakKB ?? 0) / 1024)} MB ${what}`);
        else if (r.ok) ok++;
        else if (!r.error) problems.push(`NOT AN Error ${what}: ${r.message}`);
        else if (!r.message?.includes(files[i]) || r.message.length < files[i].length + 8) problems.push(`MESSAGE without the file or the reason ${what}: ${r.message}`);
        else rejected++;
        const h = i >= variants.length ? hostile[i - variants.length] : undefined;
        if (h && !r.crash && !r.hang && h.expect && (r.ok || !h.expect.test(r.message ?? ''))) {
          problems.push(`UNCLEAR ${what}: expected ${h.expect}, got ${r.ok ? 'a successful read' : r.message}`);
        }
      });
      for (const [k] of bases.entries()) {
        const first = variants.findIndex((v) => v.name === `${bases[k][0]} unchanged`);
        if (!results[first].ok) problems.push(`the unchanged file ${bases[k][0]} was not read: ${results[first].message}`);
      }
      console.log(
        `checkpoint fuzz: ${variants.length} variants of ${bases.length} real checkpoints + ${hostile.length} hostile files: ` +
          `${ok} read OK, ${rejected} rejected with a clear error, ${problems.length} problems; ` +
          `slowest read ${slowest.toFixed(1)} ms, largest peak-RSS growth ${(peak / 1024).toFixed(1)} MB, ${seconds.toFixed(1)} s`,
      );
      const top = (key: 'ms' | 'peakKB', unit: (v: number) => string) =>
        results.map((r, i) => ({ v: r[key] ?? 0, i })).sort((x, y) => y.v - x.v).slice(0, 3).map((x) => `${all[x.i].name} (${unit(x.v)})`).join('; ');
      console.log(`slowest: ${top('ms', (v) => `${v.toFixed(0)} ms`)}\nlargest peak RSS: ${top('peakKB', (v) => `${(v / 1024).toFixed(0)} MB`)}`);
      if (problems.length) {
        keep = true;
        console.log(`failing variants kept in ${dir}`);
      }
      expect(problems.slice(0, 40)).toEqual([]);
      expect(variants.length).toBeGreaterThanOrEqual(MIN_VARIANTS);
    } finally {
      if (!keep) rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
