import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { fixture } from './helpers/native.js';
import { pythonCode } from './helpers/python.js';

/** Every tensor of a torch.load'ed object with its key path, as PyTorch sees it. */
function torchLeaves(file: string): { key: string; dtype: string; shape: number[] }[] {
  return JSON.parse(pythonCode(`
import json, torch
out = []
def walk(v, path):
    if isinstance(v, torch.Tensor):
        out.append({'key': '.'.join(path), 'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape)})
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, path + [str(k)])
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v): walk(x, path + [str(i)])
walk(torch.load(${JSON.stringify(file)}, map_location='cpu'), [])
print(json.dumps(out))
`)) as { key: string; dtype: string; shape: number[] }[];
}

describe('spurmem inspect', () => {
  for (const format of ['zip', 'legacy'] as const) {
    it(`lists the tensors PyTorch finds in a ${format} file, with counts, in text and --json`, async () => {
      const file = fixture(`variety.${format}.pth`);
      const want = torchLeaves(file);
      const j = await runCli(['inspect', file, '--json']);
      expect(j.code).toBe(0);
      const r = JSON.parse(j.stdout) as { format: string; entries: { key: string; path: string[]; dtype?: string; shape?: number[]; value?: unknown }[]; tensors: number; elements: number };
      expect(r.format).toBe(format);
      const tensors = r.entries.filter((e) => e.shape);
      expect(tensors.map((e) => ({ key: e.key, dtype: e.dtype, shape: e.shape }))).toEqual(want);
      expect(tensors.every((e) => e.path.join('.') === e.key)).toBe(true);
      expect(r.tensors).toBe(want.length);
      expect(r.elements).toBe(want.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0));
      expect(r.entries.find((e) => e.key === 'epoch')?.value).toBe(40);
      const t = await runCli(['inspect', file]);
      expect(t.stdout.split('\n')[0]).toBe(`${file}: ${format} format`);
      expect(t.stdout).toMatch(/\n  epoch: 40\n/);
      expect(t.stdout).toContain(`  ${want[0].key}  ${want[0].dtype}  [${want[0].shape.join(', ')}]`);
    });
  }

  it('a file that is not a checkpoint: exit status 1 and the file named', async () => {
    const r = await runCli(['inspect', fixture('variety.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/variety\.json: /);
  });
});
