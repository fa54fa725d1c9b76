import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoDir } from './helpers/python.js';

const nativeDir = join(repoDir, 'native');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(cc|h)$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe('native/ layout', () => {
  it('keeps the algorithm folders free of N-API: only the glue files include napi.h', () => {
    const algorithms = ['ops', 'models', 'checkpoint', 'image', 'metrics', 'data'].flatMap((d) => sources(join(nativeDir, d)));
    expect(algorithms.length).toBeGreaterThan(10);
    const withNapi = algorithms.filter((f) => /#include\s*[<"]napi\.h[>"]/.test(readFileSync(f, 'utf8'))).map((f) => relative(nativeDir, f));
    expect(withNapi).toEqual([]);
  });

  it('names no architecture: TypeScript resolves names into families and sizes', () => {
    const named = sources(nativeDir).filter((f) => /"(resnet\d+|deit_\w+|vit_large)"/.test(readFileSync(f, 'utf8'))).map((f) => relative(nativeDir, f));
    expect(named).toEqual([]);
  });

  it('has no file over 500 lines but the unpickler', () => {
    const long = sources(nativeDir)
      .filter((f) => !f.endsWith(join('checkpoint', 'pickle.cc')))
      .filter((f) => readFileSync(f, 'utf8').split('\n').length > 500)
      .map((f) => relative(nativeDir, f));
    expect(long).toEqual([]);
  });
});
