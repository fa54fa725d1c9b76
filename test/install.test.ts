/**
 * Using spurmem outside its clone, as the README's Quick start says: `npm link` (the same link that
 * `npm install -g .` makes) puts the `spurmem` command on PATH, and `npm install <path to the clone>`
 * lets a project's scripts `import { ... } from 'spurmem'`. Both run with --offline: they need nothing
 * from the package registry.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliPrefix } from '../src/demo/run.js';
import { tempDir } from './helpers/datasets.js';
import { repoDir } from './helpers/python.js';

const npmFlags = ['--offline', '--no-audit', '--no-fund'];

function npm(args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const r = spawnSync('npm', [...args, ...npmFlags], { cwd: o.cwd, env: { ...process.env, ...o.env }, encoding: 'utf8', timeout: 300_000 });
  expect(r.status, `npm ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

describe('spurmem outside the clone', () => {
  it('npm link puts spurmem on PATH; it runs from any folder and the demo prints commands as `spurmem ...`', () => {
    const prefix = tempDir('spurmem-global-');
    npm(['link'], { cwd: repoDir, env: { npm_config_prefix: prefix } });
    const bin = join(prefix, 'bin');
    const PATH = `${bin}${delimiter}${process.env.PATH}`;
    const elsewhere = tempDir('spurmem-elsewhere-');
    const v = spawnSync('sh', ['-c', 'spurmem --version && spurmem demo --help'], { cwd: elsewhere, env: { ...process.env, PATH }, encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+\n/);
    expect(v.stdout).toContain('Usage: spurmem demo');
    expect(realpathSync(join(bin, 'spurmem'))).toBe(realpathSync(join(repoDir, 'bin', 'spurmem.js')));
    expect(cliPrefix({ PATH })).toEqual(['spurmem']);
  });

  it("npm install <clone> lets a project's script import spurmem and run the addon, and npx spurmem runs the local one", () => {
    const project = tempDir('spurmem-project-');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-sweeps', private: true, type: 'module' }));
    npm(['install', repoDir], { cwd: project });
    mkdirSync(join(project, 'scripts'));
    writeFileSync(
      join(project, 'scripts', 'try.mjs'),
      [
        "import { createModel, sweepTable, MODES } from 'spurmem';",
        "const m = createModel({ arch: 'resnet18', head: 'linear', device: 'cpu', seed: 0, imageSize: 32 });",
        'console.log(JSON.stringify({ params: m.info().parameters.length, modes: MODES, sweepTable: typeof sweepTable }));',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, ['scripts/try.mjs'], { cwd: project, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { params: number; modes: string[]; sweepTable: string };
    expect(out.params).toBeGreaterThan(50);
    expect(out.modes).toContain('random_noise');
    expect(out.sweepTable).toBe('function');
    // npx finds the installed package's bin (no registry look-up with --no-install)
    const x = spawnSync('npx', ['--no-install', 'spurmem', '--version'], { cwd: project, encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    expect(x.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
