/**
 * The layers of src/ and the rules of its import graph, checked by test/layers.test.ts (in `npm test`)
 * and by `npm run check:layers`. docs/architecture.md draws the same picture.
 *
 * Imports only point DOWN this list; imports inside one layer are allowed where they make no cycle. A
 * layer is a set of folders and files, so a new file falls into the layer of its folder. A source file
 * under src/ that no layer names is an error too: give it a layer here.
 */
const LAYERS = [
  { name: 'util', says: 'errors, files, random numbers, case conversion, progress', paths: ['^src/util/'] },
  { name: 'data-metrics-native', says: 'datasets, images, loaders; group metrics and statistics; the addon loader', paths: ['^src/data/', '^src/metrics/', '^src/native\\.ts$'] },
  { name: 'model', says: 'the model, its architecture table, checkpoints and their spurmem entry, pretrained weights', paths: ['^src/model/', '^src/model\\.ts$', '^src/checkpoint\\.ts$', '^src/checkpoint-meta\\.ts$', '^src/weights\\.ts$'] },
  { name: 'options', says: 'the option table and every enum constant', paths: ['^src/options/'] },
  { name: 'report', says: 'plots and original-compatible text: draws, never orchestrates', paths: ['^src/report/'] },
  { name: 'algorithms', says: 'evaluation, critical neurons, training; resolving a base', paths: ['^src/eval/', '^src/neurons/', '^src/train/', '^src/base\\.ts$'] },
  { name: 'orchestration', says: 'sweeps and the demo', paths: ['^src/sweep/', '^src/demo/'] },
  { name: 'entry', says: 'the command line and the Node API', paths: ['^src/cli/', '^src/index\\.ts$'] },
];

const anyLayer = LAYERS.flatMap((l) => l.paths);

/** One rule per layer: nothing in it imports a layer above it. */
const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer.name}-imports-up`,
  comment: `layer ${i} (${layer.name}: ${layer.says}) imports only the layers below it`,
  severity: 'error',
  from: { path: layer.paths },
  to: { path: LAYERS.slice(i + 1).flatMap((l) => l.paths) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      comment: 'no import cycle, inside a layer either',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-in-a-layer',
      comment: 'every source file under src/ belongs to a layer (see LAYERS)',
      severity: 'error',
      from: { path: '^src/', pathNot: anyLayer },
      to: {},
    },
    {
      name: 'imports-a-file-in-no-layer',
      comment: 'every source file under src/ belongs to a layer (see LAYERS)',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: anyLayer },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    // type-only imports count: a type from a higher layer is an arrow running back up too
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
// for test/layers.test.ts, out of the configuration's own keys (which dependency-cruiser validates)
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS, enumerable: false });
