import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon } from '../src/native.js';
import { createModel, loadWeights } from '../src/model/index.js';
import { fixture, numbers, read } from './helpers/native.js';
import { pythonCode } from './helpers/python.js';

const variety = JSON.parse(readFileSync(fixture('variety.json'), 'utf8')) as {
  tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  epoch: number; loss: number; best_acc: number; adam_exp_avg_0: number[]; adam_lr: number;
};

describe('checkpoint reader', () => {
  for (const format of ['zip', 'legacy'] as const) {
    it(`reads every dtype, view and container of a ${format} file as PyTorch wrote it`, async () => {
      const ck = await read(`variety.${format}.pth`);
      expect(ck.format).toBe(format);
      for (const [key, want] of Object.entries(variety.tensors)) {
        const t = ck.tensor(['model_state_dict', key]);
        expect(t.dtype, key).toBe(want.dtype);
        expect(t.shape, key).toEqual(want.shape);
        expect(numbers(t), key).toEqual(want.values.map((v) => (want.dtype === 'float32' ? Math.fround(v) : v)));
      }
      const obj = ck.toObject([]) as Record<string, unknown>;
      expect(obj.epoch).toBe(40);
      expect(obj.loss).toBeCloseTo(0.3133, 12);
      expect(obj.best_acc).toBe(0.875);
      expect(obj.args).toEqual({ lr: 5e-6, arch: 'resnet50' });
      expect(obj.names).toEqual(['a', 'b']);
      expect(obj.flags).toEqual([true, false, null]);
      const opt = ck.toObject(['optimizer_state_dict']) as { param_groups: { lr: number; betas: number[] }[] };
      expect(opt.param_groups[0].lr).toBe(0.01);
      expect(opt.param_groups[0].betas).toEqual([0.9, 0.999]);
      const ea = ck.tensor(['optimizer_state_dict', 'state', '0', 'exp_avg']);
      expect(numbers(ea)).toEqual(variety.adam_exp_avg_0.map(Math.fround));
      const entries = ck.entries();
      expect(entries.find((e) => e.key === 'model_state_dict.view_column')).toMatchObject({ kind: 'tensor', shape: [4] });
      expect(entries.find((e) => e.key === 'epoch')).toMatchObject({ kind: 'int', value: 40 });
      // the dotted key and the array path name the same tensor
      const ex = entries.find((e) => e.key === 'optimizer_state_dict.state.0.exp_avg')!;
      expect(ex.path).toEqual(['optimizer_state_dict', 'state', '0', 'exp_avg']);
      expect(numbers(ck.tensor('optimizer_state_dict.state.0.exp_avg'))).toEqual(numbers(ea));
      expect(() => ck.tensor('optimizer_state_dict.state.7')).toThrow(/no key path 'optimizer_state_dict\.state\.7' \(nothing matches '7' under 'optimizer_state_dict\.state'\)/);
    });
  }

  it('reads the same weights from both layouts to identical tensors', async () => {
    for (const name of ['resnet18', 'resnet50']) {
      const z = await read(`${name}.zip.pth`);
      const l = await read(`${name}.legacy.pth`);
      const keys = z.keys([]);
      expect(l.keys([])).toEqual(keys);
      for (const k of keys) {
        const a = z.tensor([k]);
        const b = l.tensor([k]);
        expect(b.shape).toEqual(a.shape);
        expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)), k).toBe(true);
      }
    }
  });

  it('refuses a pickle that would run a command, naming the global and the file', async () => {
    for (const f of ['evil.zip.pth', 'evil.legacy.pth']) {
      await expect(read(f)).rejects.toThrow(/refused pickle global 'posix\.system'/);
      await expect(read(f)).rejects.toThrow(f);
    }
    expect(existsSync(fixture('PWNED'))).toBe(false);
  });

  it('says clearly what is wrong with a missing, empty or foreign file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-ck-'));
    await expect(read(join(dir, 'nope.pth'))).rejects.toThrow(/nope\.pth: cannot open/);
    writeFileSync(join(dir, 'empty.pth'), '');
    await expect(read(join(dir, 'empty.pth'))).rejects.toThrow(/empty\.pth: empty file/);
    writeFileSync(join(dir, 'text.pth'), 'hello world, not a checkpoint');
    await expect(read(join(dir, 'text.pth'))).rejects.toThrow(/not a PyTorch checkpoint/);
  });
});

describe('checkpoint writer', () => {
  it('writes epoch checkpoints that PyTorch loads and load_state_dict accepts strictly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-w-'));
    const m = createModel({ arch: 'resnet18', device: 'cpu' });
    await loadWeights(m, await read('resnet18.zip.pth'));
    m.setOptimizer({ type: 'adam', lr: 5e-6 });
    const x = await read('inputs.pth');
    const xt = x.tensor([]);
    await m.trainStep({ tensor: xt.data as Float32Array, shape: xt.shape as [number, 3, number, number] }, { targets: new Int32Array([0, 1, 1]) });
    const path = join(dir, 'epoch_0_checkpoints.pth.tar');
    await m.save(path, { epoch: 0, loss: 0.6931471805599453, extra: { arch: 'resnet18' } });
    // state dict alone (no floats): even torch 1.13's weights_only loader reads it
    const sdPath = join(dir, 'state_dict.pth');
    const ck = await addon().readCheckpoint(path);
    const sd: Record<string, unknown> = {};
    for (const k of ck.keys(['model_state_dict'])) sd[k] = ck.tensor(['model_state_dict', k]);
    await addon().writeCheckpoint(sdPath, { __ordered__: sd });
    const out = pythonCode(`
import json, pickletools, torch, torchvision, zipfile
ck = torch.load(${JSON.stringify(path)}, map_location='cpu')
assert list(ck.keys())[:4] == ['epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'], list(ck.keys())
assert isinstance(ck['epoch'], int) and isinstance(ck['loss'], float)
m = torchvision.models.resnet18()
m.fc = torch.nn.Sequential(torch.nn.Linear(512, 2), torch.nn.Softmax(dim=1))
m.load_state_dict(ck['model_state_dict'], strict=True)
opt = torch.optim.Adam(m.parameters(), lr=1.0)
opt.load_state_dict(ck['optimizer_state_dict'])
assert abs(opt.param_groups[0]['lr'] - 5e-6) < 1e-18
sd = torch.load(${JSON.stringify(sdPath)}, weights_only=True)
m.load_state_dict(sd, strict=True)
# every opcode and global of our pickle is one torch.load(weights_only=True) accepts (torch >= 2.0 reads BINFLOAT;
# 1.13's loader refuses floats altogether, even in its own optimizer state dicts)
ops = set(); globs = set()
with zipfile.ZipFile(${JSON.stringify(path)}) as z:
    data = z.read('archive/data.pkl')
for op, arg, pos in pickletools.genops(data):
    ops.add(op.name)
    if op.name == 'GLOBAL': globs.add(arg)
print(json.dumps({'ops': sorted(ops), 'globals': sorted(globs), 'epoch': ck['epoch'], 'loss': ck['loss'], 'meta': ck['spurmem']}))
`);
    const r = JSON.parse(out) as { ops: string[]; globals: string[]; epoch: number; loss: number; meta: unknown };
    expect(r.epoch).toBe(0);
    expect(r.loss).toBe(0.6931471805599453);
    expect(r.meta).toEqual({ arch: 'resnet18' });
    const weightsOnlyOps = new Set(['PROTO', 'GLOBAL', 'MARK', 'TUPLE', 'BINUNICODE', 'BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT', 'NEWTRUE', 'NEWFALSE', 'NONE', 'EMPTY_LIST', 'APPENDS', 'EMPTY_DICT', 'SETITEMS', 'REDUCE', 'EMPTY_TUPLE', 'BINPERSID', 'STOP']);
    for (const op of r.ops) expect(weightsOnlyOps.has(op), op).toBe(true);
    for (const g of r.globals) expect(g, g).toMatch(/^(collections OrderedDict|torch\._utils _rebuild_tensor_v2|torch (Float|Long|Int|Byte|Bool|Double|Half|BFloat16|Short|Char)Storage)$/);
  });

  it('round-trips JS values through PyTorch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-w-'));
    const path = join(dir, 'v.pth');
    await addon().writeCheckpoint(path, {
      epoch: 3,
      loss: { __float__: 2 },
      name: 'x',
      list: [1, 2.5, null, true],
      pair: { __tuple__: [1, 2] },
      t: { dtype: 'int64', shape: [2, 2], data: new BigInt64Array([1n, -2n, 3n, 4n]) },
      h: { dtype: 'float16', shape: [2], data: new Float32Array([0.5, -1]) },
    });
    const out = pythonCode(`
import json, torch
d = torch.load(${JSON.stringify(path)})
print(json.dumps({'epoch': d['epoch'], 'loss': d['loss'], 'lossType': type(d['loss']).__name__, 'name': d['name'], 'list': d['list'],
  'pair': list(d['pair']), 'pairType': type(d['pair']).__name__, 't': d['t'].tolist(), 'tdtype': str(d['t'].dtype), 'h': d['h'].tolist(), 'hdtype': str(d['h'].dtype)}))
`);
    expect(JSON.parse(out)).toEqual({
      epoch: 3, loss: 2, lossType: 'float', name: 'x', list: [1, 2.5, null, true], pair: [1, 2], pairType: 'tuple',
      t: [[1, -2], [3, 4]], tdtype: 'torch.int64', h: [0.5, -1], hdtype: 'torch.float16',
    });
  });
});
