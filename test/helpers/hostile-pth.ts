/**
 * Hand-made hostile checkpoints for the fuzz test: pickles and containers built to reach every bounds
 * check of the safe reader (sizes, offsets, strides, element counts, recursion, memo, opcodes), each with
 * what its error must say.
 */
import { PickleWriter, buildZip, parseZip } from './pth-bytes.js';

// ---- hand-made hostile files ------------------------------------------------------------------------

export interface Hostile {
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

export function hostileFiles(legacyPrefix: Buffer): Hostile[] {
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

