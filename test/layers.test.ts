/**
 * The import graph of src/ keeps its layers (.dependency-cruiser.cjs, docs/architecture.md): no import
 * runs back up a layer, there is no import cycle, and every source file belongs to a layer. A failure
 * names each offending import (or cycle) and the rule it breaks.
 */
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoDir } from './helpers/python.js';

interface Layer {
  name: string;
  says: string;
  paths: string[];
}

const config = createRequire(import.meta.url)(join(repoDir, '.dependency-cruiser.cjs')) as IConfiguration & { LAYERS: Layer[] };

/** Every .ts file under src/, as a path from the repository root. */
function sourceFiles(dir = join(repoDir, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(repoDir, join(dir, e.name))] : [],
  );
}

describe('layers of src/', () => {
  let result: ICruiseResult;
  beforeAll(async () => {
    const cwd = process.cwd();
    process.chdir(repoDir); // the rules' paths, the tsconfig and src are relative to the repository root
    try {
      const r = await cruise(['src'], { ...config.options, validate: true, ruleSet: { forbidden: config.forbidden } });
      result = r.output as ICruiseResult;
    } finally {
      process.chdir(cwd);
    }
  }, 120_000);

  it('no import runs back up a layer, and there is no import cycle', () => {
    const offences = result.summary.violations.map((v) =>
      v.cycle?.length ? `${v.rule.name}: ${[v.from, ...v.cycle.map((c) => c.name)].join(' -> ')}` : `${v.rule.name}: ${v.from} imports ${v.to}`,
    );
    expect(offences).toEqual([]);
    // the graph was really read: the .js specifiers of the sources resolved to their .ts files
    expect(result.summary.totalDependenciesCruised).toBeGreaterThan(100);
    expect(result.modules.filter((m) => m.source.startsWith('src/') && m.dependencies.some((d) => d.couldNotResolve)).map((m) => m.source)).toEqual([]);
  });

  it('every source file belongs to exactly one layer', () => {
    const layerOf = (f: string) => config.LAYERS.filter((l) => l.paths.some((p) => new RegExp(p).test(f))).map((l) => l.name);
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(40);
    expect(files.map((f) => ({ f, layers: layerOf(f) })).filter((x) => x.layers.length !== 1)).toEqual([]);
  });
});
