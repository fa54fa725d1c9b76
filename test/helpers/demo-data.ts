/** A small Fashion-Waterbirds dataset for end-to-end tests, made once per test process. */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDemoDataset } from '../../src/data/index.js';
import { fixturesDir, repoDir } from './python.js';

const made = new Map<string, Promise<string>>();

/** Builds (or reuses) test/.fixtures/demo-<scale>-<size>; returns its root. */
export function smallDemo(scale = 0.04, size = 32): Promise<string> {
  const key = `${scale}-${size}`;
  let p = made.get(key);
  if (!p) {
    // the folder name carries a hash of the generator, so a changed construction is rebuilt
    const gen = createHash('sha256').update(readFileSync(join(repoDir, 'src', 'data', 'fashion-waterbirds.ts'))).digest('hex').slice(0, 8);
    const root = join(fixturesDir, `demo-${key}-${gen}`);
    p = (async () => {
      if (!existsSync(join(root, 'metadata.csv'))) {
        mkdirSync(fixturesDir, { recursive: true });
        await makeDemoDataset({ out: root, scale, width: size, height: size, seed: 0, force: true });
      }
      return root;
    })();
    made.set(key, p);
  }
  return p;
}
