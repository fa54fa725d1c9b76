import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import ts from 'typescript';
import { makeDemoDataset } from '../src/data/fashion-waterbirds.js';
import { evaluate } from '../src/eval/evaluate.js';
import { UsageError } from '../src/util/errors.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { fixturesDir, repoDir } from './helpers/python.js';
import { buildDist } from './helpers/sweep.js';

describe('the Node API', () => {
  beforeAll(() => buildDist());

  it("import 'spurmem' gives the commands, the schemas and the data and metric functions", async () => {
    // the package's own name resolves through package.json "exports" to dist/src/index.js
    const api = (await import('spurmem' as string)) as Record<string, unknown>;
    for (const name of ['evaluate', 'train', 'jtt', 'dfr', 'study', 'finetunePrune', 'sweep', 'readCheckpoint', 'inspectCheckpoint', 'makeDemoDataset', 'openDataset', 'groupMetrics', 'collectSweep', 'prepareStudy', 'runStudySetting']) {
      expect(typeof api[name], name).toBe('function');
    }
    for (const name of ['evaluateSchema', 'trainSchema', 'studyBaseSchema', 'studySettingSchema', 'finetuneSchema', 'sweepConfigSchema']) {
      expect(typeof (api[name] as { safeParse?: unknown }).safeParse, name).toBe('function');
    }
  });

  it('every export of src/index.ts has TSDoc', () => {
    const file = join(repoDir, 'src', 'index.ts');
    const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true });
    const checker = program.getTypeChecker();
    const mod = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
    const exports = checker.getExportsOfModule(mod);
    expect(exports.length).toBeGreaterThan(80);
    const undocumented = exports
      .filter((e) => {
        const sym = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
        return ts.displayPartsToString(sym.getDocumentationComment(checker)).trim() === '';
      })
      .map((e) => e.name);
    expect(undocumented).toEqual([]);
  });

  it('evaluate() returns what `spurmem eval --json` prints; bad options name the option', async () => {
    const root = join(tempDir(), 'demo');
    await makeDemoDataset({ out: root, scale: 0.01, width: 40, height: 30, seed: 2 });
    const checkpoint = join(fixturesDir, 'evalnet', 'epoch_3_checkpoints.pth.tar');
    const r = await evaluate({ checkpoint, arch: 'resnet18', dataset: 'folder', root, split: 'val', resolution: 32, threads: 1 });
    const cli = await runCli(['eval', '--checkpoint', checkpoint, '--arch', 'resnet18', '--dataset', 'folder', '--root', root, '--split', 'val', '--resolution', '32', '--threads', '1', '--json']);
    expect(cli.code).toBe(0);
    expect(r).toEqual(JSON.parse(cli.stdout));
    expect(r.groups.map((g) => g.count)).toEqual([5, 5, 1, 1]);
    expect(r.split).toBe('val');
    await expect(evaluate({ checkpoint, dataset: 'folder', root, batchSize: 0 })).rejects.toThrow(UsageError);
    await expect(evaluate({ checkpoint, dataset: 'folder', root, batchSize: 0 })).rejects.toThrow(/option --batch-size \(batchSize\): Too small/);
    await expect(evaluate({ checkpoint, dataset: 'folder', root, spilt: 'val' } as never)).rejects.toThrow(/spilt/);
  });
});
