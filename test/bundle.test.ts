/**
 * The offline bundle (`npm run bundle`): made here, unpacked into an empty folder, its addon built with
 * `./build-addon` against the system libtorch and `./spurmem demo --quick` run, with no Node.js on PATH.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers/datasets.js';
import { repoDir } from './helpers/python.js';

const version = (JSON.parse(readFileSync(join(repoDir, 'package.json'), 'utf8')) as { version: string }).version;

function check(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}):\n${(r.stdout ?? '').slice(-3000)}\n${(r.stderr ?? '').slice(-3000)}`);
  return r.stdout;
}

/** A folder of links to every program of the system's bin folders except Node.js and its package managers. */
function pathWithoutNode(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      if (['node', 'nodejs', 'npm', 'npx', 'corepack'].includes(f) || existsSync(join(dir, f))) continue;
      symlinkSync(join(d, f), join(dir, f));
    }
  }
  return dir;
}

describe('offline bundle', () => {
  it('is under 60 MiB, has only production dependencies, builds its addon and runs the demo with no Node.js on PATH', () => {
    const dir = tempDir('spurmem-bundle-');
    const out = check(spawnSync('bash', [join(repoDir, 'scripts', 'bundle.sh'), dir], { encoding: 'utf8', timeout: 1_200_000 }), 'npm run bundle');
    const name = `spurmem-${version}-linux-${process.arch}`;
    const tarball = join(dir, `${name}.tar.xz`);
    expect(out).toContain(`wrote ${tarball}`);
    expect(statSync(tarball).size).toBeLessThan(60 * 1024 * 1024);

    const unpacked = join(dir, 'empty');
    mkdirSync(unpacked);
    check(spawnSync('tar', ['xf', tarball], { cwd: unpacked, encoding: 'utf8' }), 'tar xf');
    const root = join(unpacked, name);
    for (const f of ['spurmem', 'build-addon', 'node/bin/node', 'dist/src/index.js', 'native/addon.cc', 'CMakeLists.txt', 'scripts/gpu-check.sh',
      'third_party/node-api-headers/include/node_api.h', 'node_modules/node-addon-api/napi.h', 'node_modules/sharp/package.json', 'node_modules/@img/sharp-libvips-linux-x64/package.json']) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    for (const dev of ['vitest', 'typescript', 'cmake-js', 'vite', 'node-api-headers']) expect(existsSync(join(root, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(root, 'build'))).toBe(false);

    const env = { HOME: process.env.HOME ?? '/root', PATH: pathWithoutNode(join(dir, 'bin')), TMPDIR: dir };
    expect(spawnSync('sh', ['-c', 'command -v node'], { env, encoding: 'utf8' }).stdout).toBe('');
    // before the build: the launcher runs and says how to build the addon
    const before = spawnSync('./spurmem', ['inspect', tarball], { cwd: root, env, encoding: 'utf8' });
    expect(before.status).not.toBe(0);
    expect(before.stderr).toContain('build-addon');
    check(spawnSync('./build-addon', [], { cwd: root, env, encoding: 'utf8', timeout: 2_400_000 }), './build-addon');
    expect(check(spawnSync('./spurmem', ['--version'], { cwd: root, env, encoding: 'utf8' }), './spurmem --version').trim()).toBe(version);
    check(spawnSync('./spurmem', ['demo', '--quick', '--out', join(dir, 'demo')], { cwd: root, env, encoding: 'utf8', timeout: 900_000 }), './spurmem demo --quick');
    expect(existsSync(join(dir, 'demo', 'report.md'))).toBe(true);
  }, 3_600_000);
});
