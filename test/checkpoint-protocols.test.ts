/**
 * Checkpoints as torch.save writes them with every pickle protocol torch.load reads back (1-5) in both
 * layouts, and the numpy scalars found in real checkpoints: each file is made by Debian's PyTorch in this
 * run and read back value for value against what torch.load gives for the same file.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint } from '../src/checkpoint.js';
import type { NativeCheckpoint } from '../src/native.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { numbers } from './helpers/native.js';
import { pythonCode } from './helpers/python.js';

/** A leaf as the Python side describes it: a tensor or a plain value (numpy scalars as Python numbers, a complex one as (real, imag)). */
type Leaf = { path: string[]; tensor?: { dtype: string; shape: number[]; values: number[] }; value?: unknown };

/** Python that walks what torch.load gives and prints every leaf as JSON (dict keys as text, like spurmem's key paths). */
const WALK = String.raw`
import json, numpy as np, torch
def walk(v, path, out):
    if isinstance(v, dict):
        for k, x in v.items(): walk(x, path + [str(k)], out)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v): walk(x, path + [str(i)], out)
    elif isinstance(v, torch.Tensor):
        out.append({"path": path, "tensor": {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape),
                                             "values": v.detach().double().flatten().tolist()}})
    elif isinstance(v, np.generic):
        x = v.item()
        if isinstance(x, complex):  # spurmem reads a complex scalar as (real, imag)
            out += [{"path": path + ["0"], "value": x.real}, {"path": path + ["1"], "value": x.imag}]
        else:
            out.append({"path": path, "value": x})
    else:
        out.append({"path": path, "value": v})
    return out
`;

let dir: string;

beforeAll(() => {
  dir = tempDir();
  pythonCode(
    WALK +
      String.raw`
import os
torch.manual_seed(0)
out = ${JSON.stringify(dir)}
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(2, 3, 8, 8)
net(x).sum().backward()
opt.step()
checkpoint = {"epoch": 7, "model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict(), "loss": 0.25,
              "names": ("a", "b"), "best_acc": np.float64(0.875)}
refs = {}
for p in (1, 2, 3, 4, 5):
    for layout in ("zip", "legacy"):
        for what, obj in (("state_dict", net.state_dict()), ("checkpoint", checkpoint)):
            f = os.path.join(out, f"{what}.p{p}.{layout}.pth")
            torch.save(obj, f, pickle_protocol=p, _use_new_zipfile_serialization=(layout == "zip"))
            refs[os.path.basename(f)] = walk(torch.load(f), [], [])
json.dump(refs, open(os.path.join(out, "refs.json"), "w"))
`,
  );
}, 120_000);

/** Compares every leaf of a checkpoint with the Python side's, in order. */
function expectSameLeaves(ck: NativeCheckpoint, want: Leaf[]): void {
  const entries = ck.entries();
  expect(entries.map((e) => e.path)).toEqual(want.map((l) => l.path));
  want.forEach((l, i) => {
    const e = entries[i];
    if (l.tensor) {
      expect(e.kind, e.key).toBe('tensor');
      const t = ck.tensor(l.path);
      expect(t.dtype, e.key).toBe(l.tensor.dtype);
      expect(t.shape, e.key).toEqual(l.tensor.shape);
      expect(numbers(t), e.key).toEqual(l.tensor.values);
    } else {
      expect(e.value, e.key).toEqual(l.value);
    }
  });
}

describe('pickle protocols 1-5 in both layouts', () => {
  // torch.save writes protocols 1 to 5 (2 by default); torch.load cannot read what protocol 0 gives
  for (const p of [1, 2, 3, 4, 5]) {
    for (const layout of ['zip', 'legacy'] as const) {
      for (const what of ['state_dict', 'checkpoint'] as const) {
        it(`protocol ${p}, ${layout} layout, ${what === 'checkpoint' ? 'a training checkpoint with Adam state' : 'a state dict'}: the values torch.load gives`, async () => {
          const name = `${what}.p${p}.${layout}.pth`;
          const refs = JSON.parse(readFileSync(join(dir, 'refs.json'), 'utf8')) as Record<string, Leaf[]>;
          const ck = await readCheckpoint(join(dir, name));
          expect(ck.format).toBe(layout);
          expect(refs[name].length).toBeGreaterThan(what === 'checkpoint' ? 20 : 5);
          expectSameLeaves(ck, refs[name]);
        });
      }
    }
  }

  it('spurmem inspect reads a legacy protocol-4 file (the reported command)', async () => {
    const f = join(tempDir(), 'p4.pth');
    pythonCode(`import torch; torch.save({'w': torch.ones(2)}, ${JSON.stringify(f)}, pickle_protocol=4, _use_new_zipfile_serialization=False)`);
    const r = await runCli(['inspect', f]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${f}: legacy format\n  w  float32  [2]\n1 tensor, 2 elements\n`);
  });
});

describe('numpy scalars', () => {
  const DTYPES = ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1', 'c8', 'c16'];

  it('every scalar dtype torch.load can meet, anywhere in a checkpoint, in both layouts and protocols 2 and 4', async () => {
    const out = tempDir();
    const refs = JSON.parse(
      pythonCode(
        WALK +
          String.raw`
import os
vals = {"f2": np.float16(0.1), "f4": np.float32(-3.25e-3), "f8": np.float64(1 / 3), "i1": np.int8(-7), "i2": np.int16(-300),
        "i4": np.int32(-70000), "i8": np.int64(-2**40), "u1": np.uint8(250), "u2": np.uint16(65000), "u4": np.uint32(4000000000),
        "u8": np.uint64(2**40 + 3), "b1": np.bool_(True), "c8": np.complex64(1.5 - 2j), "c16": np.complex128(0.1 + 0.2j)}
assert [np.dtype(type(v)).str[1:] for v in vals.values()] == ${JSON.stringify(DTYPES)}, [np.dtype(type(v)).str for v in vals.values()]
obj = {"epoch": 3, "best_acc1": np.float16(0.7314), "history": [np.float32(0.5), {"acc": np.float64(0.25)}], "scalars": vals,
       "state_dict": {"w": torch.arange(3.0)}}
refs = {}
for p in (2, 4):
    for layout in ("zip", "legacy"):
        f = os.path.join(${JSON.stringify(out)}, f"np.p{p}.{layout}.pth")
        torch.save(obj, f, pickle_protocol=p, _use_new_zipfile_serialization=(layout == "zip"))
        refs[f] = walk(torch.load(f), [], [])
print(json.dumps(refs))
`,
      ),
    ) as Record<string, Leaf[]>;
    for (const [f, want] of Object.entries(refs)) {
      const ck = await readCheckpoint(f);
      expectSameLeaves(ck, want);
      const obj = ck.toObject([]) as { best_acc1: number; scalars: Record<string, unknown> };
      expect(Object.keys(obj.scalars)).toEqual(DTYPES);
      expect(obj.best_acc1).toBe(want.find((l) => l.path.join('.') === 'best_acc1')!.value);
    }
  });

  it('a big-endian numpy dtype is read in its byte order', async () => {
    // numpy pickles scalars in the machine's order; these are pickled with big-endian dtypes, as numpy
    // would on a big-endian machine, and both numpy (pickle.loads) and torch.load read them back
    const f = join(tempDir(), 'be.pth');
    const want = JSON.parse(
      pythonCode(String.raw`
import json, pickle, numpy as np, torch
class BigEndian:
    """numpy.core.multiarray.scalar(dtype('>..'), big-endian bytes), pickled as numpy pickles scalars."""
    def __init__(self, dt, v): self.dt, self.v = dt, v
    def __reduce__(self): return (np.core.multiarray.scalar, (np.dtype(self.dt), np.array(self.v, dtype=self.dt).tobytes()))
be = pickle.dumps({"acc": BigEndian(">f4", 0.8125), "n": BigEndian(">i8", -123456789)}, protocol=2)
assert b"X\x01\x00\x00\x00>" in be
loaded = pickle.loads(be)
with open(${JSON.stringify(f)}, "wb") as fh:
    for o in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(o, fh, protocol=2)
    fh.write(be)
    pickle.dump([], fh, protocol=2)
t = torch.load(${JSON.stringify(f)})
assert {k: v.item() for k, v in t.items()} == {k: v.item() for k, v in loaded.items()}
print(json.dumps({k: v.item() for k, v in t.items()}))
`),
    ) as Record<string, number>;
    expect(want).toEqual({ acc: 0.8125, n: -123456789 });
    const ck = await readCheckpoint(f);
    expect(ck.toObject([])).toEqual(want);
  });

  it('a value that cannot be read names its key path, and torch.load reads the same file', async () => {
    const f = join(tempDir(), 'dt.pth');
    const loaded = pythonCode(String.raw`
import numpy as np, torch
torch.save({"epoch": 1, "meta": {"history": [0.5, np.datetime64("2020-01-02")]}, "state_dict": {"w": torch.ones(2)}}, ${JSON.stringify(f)})
print(torch.load(${JSON.stringify(f)})["meta"]["history"][1])
`);
    expect(loaded.trim()).toBe('2020-01-02');
    await expect(readCheckpoint(f)).rejects.toThrow(
      new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: data\\.pkl: the value at key path 'meta\\.history\\.1' cannot be read: numpy scalar of unsupported dtype 'M8'`),
    );
  });
});
