// Eval-transform throughput on Waterbirds-sized JPEGs (500 x 375): spurmem's pipeline (the default, exact
// path reads, decodes (libjpeg, as PIL) and resizes (PIL's algorithm) each batch in one native call on the
// addon's threads; `--resize sharp` decodes and resizes with libvips, many images at a time; batches of uint8 pixels, /255 and Normalize happen later on the device) vs
// the original's torchvision + PIL pipeline in one Python process (DataLoader with num_workers=0, as the
// original).
// Both decode the same files from the page cache; each side runs 3 times and the best run counts.
// Wall-clock images/s is the figure that matters; CPU ms per image is printed as well, since other
// processes on a busy machine take cores away from the parallel pipeline.
//
//   npm run build:ts && node bench/eval-transform.mjs [--images N] [--resolution R]
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { demoJpegs, dist, runPython, workDir } from './common.mjs';

const { values } = parseArgs({ options: { images: { type: 'string', default: '600' }, resolution: { type: 'string', default: '224' } } });
const N = Number(values.images);
const R = Number(values.resolution);
const root = await demoJpegs(500, 375, 0.06);
const { openDataset, loadBatches } = await dist('data/index.js');
const ds = await openDataset({ dataset: 'folder', root });
const samples = [...ds.samples.train, ...ds.samples.val, ...ds.samples.test].slice(0, N);
const files = samples.map((s) => s.file);

async function ours(resize) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let n = 0;
  for await (const b of loadBatches(samples, { resolution: R, batchSize: 64, resize })) n += b.shape[0];
  const c = process.cpuUsage(c0);
  return { rate: n / ((performance.now() - t0) / 1000), cpuMs: (c.user + c.system) / 1000 / n };
}

const py = `
import sys, time, json, torch, torchvision.transforms as T
from PIL import Image
files = json.load(open(sys.argv[1])); R = int(sys.argv[2]); s = round(R * 256 / 224)
tf = T.Compose([T.Resize((s, s)), T.CenterCrop(R), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
class D(torch.utils.data.Dataset):
    def __len__(self): return len(files)
    def __getitem__(self, i): return tf(Image.open(files[i]).convert('RGB'))
runs = []
for k in range(3):
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for x in torch.utils.data.DataLoader(D(), batch_size=64, shuffle=False, num_workers=0): n += x.shape[0]
    runs.append({"rate": n / (time.perf_counter() - t0), "cpuMs": (time.process_time() - c0) * 1000 / n})
print(json.dumps(runs))
`;
const list = join(workDir, 'files.json');
writeFileSync(list, JSON.stringify(files));

const load0 = loadavg()[0];
await ours('pil'); // warm-up: page cache, thread pool, the addon
await ours('sharp');
const exact = [await ours('pil'), await ours('pil')];
const fast = [await ours('sharp')];
const theirs = JSON.parse(runPython(py, [list, String(R)]));
exact.push(await ours('pil'));
fast.push(await ours('sharp'));
const best = (rs) => rs.reduce((a, b) => (b.rate > a.rate ? b : a));
const o = best(exact);
const f = best(fast);
const t = best(theirs);

console.log(`eval transform, ${files.length} JPEGs of 500x375 -> ${R}x${R}, ${cpus().length} cores, load average ${load0.toFixed(1)} at start`);
console.log(`  spurmem, PIL-exact resize (default):           ${o.rate.toFixed(0)} images/s, ${o.cpuMs.toFixed(2)} CPU ms/image (runs: ${exact.map((r) => r.rate.toFixed(0)).join(', ')})`);
console.log(`  spurmem, --resize sharp:                       ${f.rate.toFixed(0)} images/s, ${f.cpuMs.toFixed(2)} CPU ms/image (runs: ${fast.map((r) => r.rate.toFixed(0)).join(', ')})`);
console.log(`  torchvision + PIL (DataLoader, num_workers=0): ${t.rate.toFixed(0)} images/s, ${t.cpuMs.toFixed(2)} CPU ms/image (runs: ${theirs.map((r) => r.rate.toFixed(0)).join(', ')})`);
console.log(`  ratio spurmem (exact) / torchvision: ${(o.rate / t.rate).toFixed(2)}x images/s, ${(t.cpuMs / o.cpuMs).toFixed(2)}x less CPU per image`);
console.log(`  ratio spurmem (--resize sharp) / torchvision: ${(f.rate / t.rate).toFixed(2)}x images/s, ${(t.cpuMs / f.cpuMs).toFixed(2)}x less CPU per image`);
