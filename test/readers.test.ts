import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countsTable, openDataset, PUBLISHED_COUNTS } from '../src/data/index.js';
import { tempDir, tinyDataset, writeMetadata, type TinyRow } from './helpers/datasets.js';

let base: { root: string; rows: TinyRow[] };

beforeAll(async () => {
  base = await tinyDataset({ perGroup: [3, 2, 1, 2], w: 16, h: 12 });
});

/** A copy of the tiny dataset whose metadata.csv is rewritten by `edit`. */
function variant(edit: (rows: TinyRow[]) => TinyRow[], header?: string): string {
  const root = tempDir();
  cpSync(base.root, root, { recursive: true });
  writeMetadata(root, edit(base.rows.map((r) => ({ ...r }))), header);
  return root;
}

describe('Waterbirds-style metadata.csv', () => {
  it('reads splits in file order with group = 2y + place, line numbers and absolute paths', async () => {
    const ds = await openDataset({ dataset: 'waterbirds', root: base.root });
    expect(ds.kind).toBe('waterbirds');
    expect(ds.groupNames).toEqual(['landbird on land', 'landbird on water', 'waterbird on land', 'waterbird on water']);
    expect(ds.samples.train.length).toBe(8);
    expect(ds.samples.val.length).toBe(8);
    expect(ds.samples.test.length).toBe(8);
    expect(ds.trainGroupCounts).toEqual([3, 2, 1, 2]);
    const s = ds.samples.val[5];
    const row = base.rows[8 + 5];
    expect(s).toEqual({ index: 5, line: 8 + 5 + 2, file: join(base.root, row.file), y: row.y, a: row.place, group: 2 * Number(row.y) + Number(row.place), split: 'val' });
    expect(ds.skipped).toBe(0);
  });

  it('warns when the counts differ from the published Waterbirds counts, naming both', async () => {
    const ds = await openDataset({ dataset: 'waterbirds', root: base.root });
    // one warning, said once, for all three splits
    expect(ds.warnings).toHaveLength(1);
    expect(ds.warnings[0]).toMatch(/^waterbirds: group counts \(groups 0\/1\/2\/3\) differ from the published ones: train 3\/2\/1\/2 \(published /);
    expect(ds.warnings[0]).toContain(`train 3/2/1/2 (published ${PUBLISHED_COUNTS.waterbirds.train.join('/')})`);
    expect(ds.warnings[0]).toContain(`, val `);
    expect(ds.warnings[0]).toContain(`, test `);
    expect(ds.warnings[0]).toMatch(/a subset of the dataset cannot match them$/);
    const folder = await openDataset({ dataset: 'folder', root: base.root });
    expect(folder.warnings).toEqual([]);
  });

  it('prints the counts per split and group', async () => {
    const t = countsTable(await openDataset({ dataset: 'waterbirds', root: base.root }));
    const lines = t.split('\n');
    expect(lines[1]).toMatch(/^group\s+name\s+train\s+val\s+test$/);
    expect(lines[2]).toMatch(/^0\s+landbird on land\s+3\s+3\s+3$/);
    expect(lines[4]).toMatch(/^2\s+waterbird on land\s+1\s+1\s+1$/);
    expect(lines[6]).toMatch(/^all\s+8\s+8\s+8$/);
  });

  it('folder datasets: generic group names, dataset.json names, other columns as target and attribute', async () => {
    const root = variant((r) => r, 'img_filename,y,split,place,img_id');
    expect((await openDataset({ dataset: 'folder', root })).groupNames).toEqual(['y=0, place=0', 'y=0, place=1', 'y=1, place=0', 'y=1, place=1']);
    writeFileSync(join(root, 'dataset.json'), JSON.stringify({ groupNames: ['a', 'b', 'c', 'd'] }));
    expect((await openDataset({ dataset: 'folder', root })).groupNames).toEqual(['a', 'b', 'c', 'd']);
    writeFileSync(join(root, 'dataset.json'), JSON.stringify({ groupNames: ['a'] }));
    await expect(openDataset({ dataset: 'folder', root })).rejects.toThrow(/dataset\.json: key 'groupNames' must be a list of 4 strings/);
    // place as the class and y as the attribute
    const swapped = await openDataset({ dataset: 'folder', root: base.root, target: 'place', attribute: 'y' });
    expect(swapped.samples.train[3]).toMatchObject({ y: 1, a: 0, group: 2 });
    // dataset.json names the groups of y and place, not of other columns
    writeFileSync(join(root, 'dataset.json'), JSON.stringify({ groupNames: ['a', 'b', 'c', 'd'] }));
    expect((await openDataset({ dataset: 'folder', root, target: 'place', attribute: 'y' })).groupNames).toEqual(['place=0, y=0', 'place=0, y=1', 'place=1, y=0', 'place=1, y=1']);
  });

  it('warns about a group that a split lacks: its accuracy is "no samples" and worst-group leaves it out', async () => {
    const root = variant((r) => r.filter((x) => !(Number(x.split) === 2 && Number(x.y) === 1 && Number(x.place) === 0)));
    const ds = await openDataset({ dataset: 'folder', root });
    expect(ds.warnings).toEqual(['the test split has no samples of group 2 (y=1, place=0): its accuracy is reported as "no samples" and worst-group accuracy leaves it out']);
  });
});

describe('bad input: file, line, field and what was expected', () => {
  const cases: [string, () => string, RegExp][] = [
    ['a missing column', () => variant((r) => r, 'img_id,img_filename,y,split'), /metadata\.csv line 1: missing column 'place' \(expected the Waterbirds columns img_id,img_filename,y,split,place,place_filename; found 'img_id', 'img_filename', 'y', 'split'\)/],
    ['a split other than 0/1/2', () => variant((r) => { r[4].split = 3; return r; }), /metadata\.csv line 6: field 'split' is '3', expected 0 \(train\), 1 \(val\) or 2 \(test\)/],
    ['a y that is not 0/1', () => variant((r) => { r[2].y = 2; return r; }), /metadata\.csv line 4: field 'y' is '2', expected 0 or 1/],
    ['a place that is not 0/1', () => variant((r) => { r[9].place = 'water'; return r; }), /metadata\.csv line 11: field 'place' is 'water', expected 0 or 1/],
    ['an empty file name', () => variant((r) => { r[0].file = ''; return r; }), /metadata\.csv line 2: field 'img_filename' is empty/],
    ['a file name outside the folder', () => variant((r) => { r[1].file = '../../etc/passwd'; return r; }), /metadata\.csv line 3: field 'img_filename' is '\.\.\/\.\.\/etc\/passwd', expected a path inside the dataset folder/],
    ['an empty split', () => variant((r) => r.filter((x) => Number(x.split) !== 1)), /metadata\.csv: the val split is empty \(expected rows with split 1 for val\)/],
    ['a missing image', () => variant((r) => { r[7].file = 'nowhere/x.jpg'; return r; }), /metadata\.csv line 9: image 'nowhere\/x\.jpg' does not exist .*expected an image file relative to .*--skip-bad-images/],
    ['a file name holding a NUL character (no file can have it)', () => variant((r) => { r[7].file = `${r[7].file}\0`; return r; }), /metadata\.csv line 9: image '.*' does not exist/],
    ['a row with too few fields', () => { const root = variant((r) => r); writeFileSync(join(root, 'metadata.csv'), readFileSync(join(root, 'metadata.csv'), 'utf8') + '99,a.jpg,1\n'); return root; }, /metadata\.csv: not a valid CSV file \(Invalid Record Length: columns length is 6, got 3 on line 26\)/],
    ['no metadata.csv', () => { const root = variant((r) => r); rmSync(join(root, 'metadata.csv')); return root; }, /no metadata\.csv \(expected the Waterbirds layout/],
  ];
  for (const [what, make, want] of cases) {
    it(what, async () => {
      await expect(openDataset({ dataset: 'waterbirds', root: make() })).rejects.toThrow(want);
    });
  }

  it('an unknown dataset kind or a missing folder', async () => {
    await expect(openDataset({ dataset: 'imagenet' as 'folder', root: base.root })).rejects.toThrow(/--dataset must be one of waterbirds, celeba, folder, got 'imagenet'/);
    await expect(openDataset({ dataset: 'folder', root: join(base.root, 'nope') })).rejects.toThrow(/nope: no such folder/);
  });

  it('--skip-bad-images skips and counts rows with missing images', async () => {
    const root = variant((r) => { r[7].file = 'nowhere/x.jpg'; r[20].file = 'nowhere/y.jpg'; return r; });
    const ds = await openDataset({ dataset: 'folder', root, skipBadImages: true });
    expect(ds.skipped).toBe(2);
    expect(ds.skippedImages.map((s) => [s.line, s.split, s.reason])).toEqual([[9, 'train', 'no such file'], [22, 'test', 'no such file']]);
    expect(ds.samples.train.length).toBe(7);
    expect(ds.samples.train.map((s) => s.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(ds.warnings).toContain('2 rows skipped: image file missing');
    expect(countsTable(ds)).toMatch(/skipped: 2 rows with a missing image/);
  });
});

describe('which image files exist (the addon lists each folder once)', () => {
  it('a file or a link counts, a folder or a missing name does not; a folder listed ahead is used as listed', async () => {
    const { mkdirSync, symlinkSync } = await import('node:fs');
    const { addon } = await import('../src/native.js');
    const d = tempDir('present-');
    const img = join(d, 'imgs');
    mkdirSync(join(img, 'sub.jpg'), { recursive: true });
    writeFileSync(join(img, 'a.jpg'), 'x');
    symlinkSync(join(img, 'a.jpg'), join(img, 'link.jpg'));
    const paths = ['a.jpg', 'sub.jpg', 'link.jpg', 'none.jpg'].map((n) => join(img, n)).concat([join(d, 'no-folder', 'a.jpg'), join(d, 'imgs')]);
    const want = [1, 0, 1, 0, 0, 0];
    expect(Array.from(await addon().presentFiles(paths.join('\0'), paths.length))).toEqual(want);
    // listed ahead, then changed: the listing is what counts, and folders it does not hold are read
    const listing = await addon().listFolders({ dirs: [img] });
    rmSync(join(img, 'a.jpg'));
    expect(Array.from(await addon().presentFiles(paths.join('\0'), paths.length, listing))).toEqual(want);
    expect(Array.from(await addon().presentFiles(paths.join('\0'), paths.length))).toEqual([0, 0, 1, 0, 0, 0]); // a link counts by its entry, as readdir types it
    expect(() => addon().presentFiles(paths.join('\0'), 2)).toThrow(/6 paths, count 2/);
    // an empty path (what a path holding a NUL is sent as) names no file; no paths, no answers
    expect(Array.from(await addon().presentFiles(['', join(img, 'link.jpg'), ''].join('\0'), 3))).toEqual([0, 1, 0]);
    expect(Array.from(await addon().presentFiles('', 0))).toEqual([]);
  });
});
