// The ImageCache at work: the time of a second evaluation of the same split relative to the first
// (a study evaluates one split 11+ times, ERM every epoch). Measured for the loader alone and for a whole
// evaluateSplit with a ResNet-18 on the CPU.
//
//   npm run build:ts && node bench/eval-cache.mjs [--resolution R] [--images N]
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { demoJpegs, dist } from './common.mjs';

const { values } = parseArgs({ options: { resolution: { type: 'string', default: '64' }, images: { type: 'string', default: '400' } } });
const R = Number(values.resolution);
const root = await demoJpegs(500, 375, 0.06);
const { openDataset, loadBatches, ImageCache } = await dist('data/index.js');
const { evaluateSplit } = await dist('eval/evaluate-split.js');
const { createModel } = await dist('model/index.js');
const full = await openDataset({ dataset: 'folder', root });
const ds = { ...full, samples: { ...full.samples, test: full.samples.test.slice(0, Number(values.images)) } };
const n = ds.samples.test.length;
console.log(`${n} test images of 500x375, R = ${R}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)}`);

async function loaderPass(cache) {
  const t0 = performance.now();
  for await (const b of loadBatches(ds.samples.test, { resolution: R, batchSize: 64, cache })) void b;
  return (performance.now() - t0) / 1000;
}
await loaderPass(undefined); // page cache
let cache = new ImageCache();
const l1 = await loaderPass(cache);
const l2 = await loaderPass(cache);
console.log(`  loader alone:  first pass ${l1.toFixed(2)} s (${(n / l1).toFixed(0)} images/s), second ${l2.toFixed(3)} s; second/first = ${(l2 / l1).toFixed(3)} (hits ${cache.hits}, misses ${cache.misses})`);

const model = createModel({ arch: 'resnet18', device: 'cpu' });
cache = new ImageCache();
const e1 = await evaluateSplit(model, ds, 'test', { resolution: R, batchSize: 64, cache });
const e2 = await evaluateSplit(model, ds, 'test', { resolution: R, batchSize: 64, cache });
const e0 = await evaluateSplit(model, ds, 'test', { resolution: R, batchSize: 64 });
console.log(`  evaluateSplit (resnet18, cpu): first pass ${e1.seconds.toFixed(2)} s, second ${e2.seconds.toFixed(2)} s; second/first = ${(e2.seconds / e1.seconds).toFixed(3)}; without a cache a pass takes ${e0.seconds.toFixed(2)} s`);
