/**
 * Checkpoints as torch.save writes them with every pickle protocol it accepts (2-5) in both layouts: each
 * file is made by Debian's PyTorch in this run and read back value for value against what torch.load
 * gives for the same file.
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
for p in (2, 3, 4, 5):
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

describe('pickle protocols 2-5 in both layouts', () => {
  for (const p of [2, 3, 4, 5]) {
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
