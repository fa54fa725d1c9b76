import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDataset, PUBLISHED_COUNTS, type Dataset } from '../src/data/index.js';
import { tempDir, writeJpeg } from './helpers/datasets.js';
import { testDir } from './helpers/python.js';

/** The 40 attribute names of CelebA's list_attr_celeba.txt, in its order (shared with bench/eval-e2e.mjs). */
const ATTRS = readFileSync(join(testDir, 'fixtures', 'celeba_attributes.txt'), 'utf8').trim().split(' ');

interface Row { image: string; values: number[]; partition: number }

let rows: Row[];
let official: string;

/** The official layout: img_align_celeba/, list_attr_celeba.txt (count, names, aligned ±1 rows), list_eval_partition.txt. */
function writeOfficial(root: string, rs: Row[], o: { count?: number } = {}): void {
  const lines = [String(o.count ?? rs.length), ATTRS.join(' ') + ' '];
  for (const r of rs) lines.push(r.image + ' ' + r.values.map((v) => (v === 1 ? ' 1' : String(v))).join(' '));
  writeFileSync(join(root, 'list_attr_celeba.txt'), lines.join('\r\n') + '\r\n');
  writeFileSync(join(root, 'list_eval_partition.txt'), rs.map((r) => `${r.image} ${r.partition}`).join('\n') + '\n');
}

function copyOfficial(edit: (rs: Row[]) => Row[], o: { count?: number } = {}): string {
  const root = tempDir();
  cpSync(join(official, 'img_align_celeba'), join(root, 'img_align_celeba'), { recursive: true });
  writeOfficial(root, edit(rows.map((r) => ({ ...r, values: [...r.values] }))), o);
  return root;
}

beforeAll(async () => {
  official = tempDir();
  rows = [];
  // 18 images: partitions 0,1,2 in turn; Blond_Hair (9) and Male (20) cycle through the four groups
  for (let i = 0; i < 18; i++) {
    const values = ATTRS.map((_, k) => ((i * 7 + k * 3) % 5 < 2 ? 1 : -1));
    values[9] = (i >> 1) % 2 ? 1 : -1;
    values[20] = i % 2 ? 1 : -1;
    rows.push({ image: `${String(i + 1).padStart(6, '0')}.jpg`, values, partition: Math.floor(i / 6) });
    await writeJpeg(join(official, 'img_align_celeba', rows[i].image), 18, 22, 500 + i);
  }
  writeOfficial(official, rows);
});

function expectedSamples(ds: Dataset, imgDir: string) {
  const split = ['train', 'val', 'test'] as const;
  return rows.map((r, i) => {
    const y = r.values[9] === 1 ? 1 : 0;
    const a = r.values[20] === 1 ? 1 : 0;
    return { file: join(ds.root, imgDir, r.image), y, a, group: 2 * y + a, split: split[r.partition], index: i % 6 };
  });
}

describe('CelebA readers', () => {
  it('official lists: y = Blond_Hair, a = Male, -1/1 -> 0/1, partitions as splits, line numbers of the attribute file', async () => {
    const ds = await openDataset({ dataset: 'celeba', root: official });
    expect(ds.metadataFile).toBe(join(official, 'list_attr_celeba.txt'));
    expect(ds.groupNames).toEqual(['non-blond female', 'non-blond male', 'blond female', 'blond male']);
    const got = [...ds.samples.train, ...ds.samples.val, ...ds.samples.test];
    expect(got.map(({ file, y, a, group, split, index }) => ({ file, y, a, group, split, index }))).toEqual(expectedSamples(ds, 'img_align_celeba'));
    expect(got.map((s) => s.line)).toEqual(rows.map((_, i) => i + 3));
    expect(ds.trainGroupCounts).toEqual([2, 2, 1, 1]);
    expect(ds.warnings[0]).toContain(`celeba: group counts (groups 0/1/2/3) differ from the published ones: train 2/2/1/1 (published ${PUBLISHED_COUNTS.celeba.train.join('/')})`);
  });

  it('the lists split their fields on any whitespace (runs of spaces, tabs, CRLF, blank lines), as the official files are read', async () => {
    const root = copyOfficial((r) => r);
    const seps = [' ', '  ', '\t', ' \t ', '\u00a0'];
    const attr = [String(rows.length), '\t' + ATTRS.join('  ') + ' ', ''];
    rows.forEach((r, i) => attr.push(`${i % 2 ? '  ' : ''}${r.image}${seps[i % seps.length]}${r.values.map((v) => String(v)).join(seps[(i + 1) % seps.length])}  `));
    writeFileSync(join(root, 'list_attr_celeba.txt'), attr.join('\r\n'));
    writeFileSync(join(root, 'list_eval_partition.txt'), '\n' + rows.map((r, i) => `${r.image}${seps[i % seps.length]}${r.partition}\t`).join('\r\n'));
    const ds = await openDataset({ dataset: 'celeba', root });
    const got = [...ds.samples.train, ...ds.samples.val, ...ds.samples.test];
    expect(got.map(({ file, y, a, group, split, index }) => ({ file, y, a, group, split, index }))).toEqual(expectedSamples(ds, 'img_align_celeba'));
    // a blank line after the names: the rows' line numbers count it
    expect(got.map((s) => s.line)).toEqual(rows.map((_, i) => i + 4));
    // a value glued to the next one is one field too few, on its line
    attr[5] = attr[5].replace(/(-?1)\s+(-?1)\s*$/, '$1$2');
    writeFileSync(join(root, 'list_attr_celeba.txt'), attr.join('\r\n'));
    await expect(openDataset({ dataset: 'celeba', root })).rejects.toThrow(/list_attr_celeba\.txt line 6: 40 fields, expected 41/);
  });

  it('Kaggle CSVs and the nested img_align_celeba/img_align_celeba/ folder give the same samples', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'img_align_celeba'));
    cpSync(join(official, 'img_align_celeba'), join(root, 'img_align_celeba', 'img_align_celeba'), { recursive: true });
    writeFileSync(join(root, 'list_attr_celeba.csv'), ['image_id,' + ATTRS.join(','), ...rows.map((r) => `${r.image},${r.values.join(',')}`)].join('\n') + '\n');
    writeFileSync(join(root, 'list_eval_partition.csv'), ['image_id,partition', ...rows.map((r) => `${r.image},${r.partition}`)].join('\n') + '\n');
    const ds = await openDataset({ dataset: 'celeba', root });
    expect(ds.metadataFile).toBe(join(root, 'list_attr_celeba.csv'));
    const got = [...ds.samples.train, ...ds.samples.val, ...ds.samples.test];
    expect(got.map(({ file, y, a, group, split, index }) => ({ file, y, a, group, split, index }))).toEqual(expectedSamples(ds, 'img_align_celeba/img_align_celeba'));
    expect(got[0].line).toBe(2);
  });

  it('a prepared metadata.csv is used as it is; another target or attribute reads the lists by name', async () => {
    const root = copyOfficial((r) => r);
    const meta = ['img_filename,y,place,split', ...rows.map((r) => `img_align_celeba/${r.image},${r.values[9] === 1 ? 1 : 0},${r.values[20] === 1 ? 1 : 0},${r.partition}`)];
    writeFileSync(join(root, 'metadata.csv'), meta.join('\n') + '\n');
    const ds = await openDataset({ dataset: 'celeba', root });
    expect(ds.metadataFile).toBe(join(root, 'metadata.csv'));
    expect([...ds.samples.train, ...ds.samples.val, ...ds.samples.test].map((s) => s.group)).toEqual(expectedSamples(ds, 'img_align_celeba').map((s) => s.group));
    const sm = await openDataset({ dataset: 'celeba', root, target: 'Smiling', attribute: 'Young' });
    expect(sm.metadataFile).toBe(join(root, 'list_attr_celeba.txt'));
    expect(sm.groupNames).toEqual(['not Smiling, not Young', 'not Smiling, Young', 'Smiling, not Young', 'Smiling, Young']);
    expect(sm.samples.train.map((s) => [s.y, s.a])).toEqual(rows.slice(0, 6).map((r) => [r.values[31] === 1 ? 1 : 0, r.values[39] === 1 ? 1 : 0]));
    expect(sm.warnings).toEqual([]); // published counts are for Blond_Hair/Male only
  });

  it('a prepared metadata.csv with bare file names finds them in img_align_celeba/ (or the nested Kaggle folder), and says where it looked when not', async () => {
    const meta = ['img_filename,y,place,split', ...rows.map((r) => `${r.image},${r.values[9] === 1 ? 1 : 0},${r.values[20] === 1 ? 1 : 0},${r.partition}`)];
    const root = copyOfficial((r) => r);
    writeFileSync(join(root, 'metadata.csv'), meta.join('\n') + '\n');
    const ds = await openDataset({ dataset: 'celeba', root });
    expect(ds.metadataFile).toBe(join(root, 'metadata.csv'));
    const got = (d: Dataset) => [...d.samples.train, ...d.samples.val, ...d.samples.test].map(({ file, y, a, group, split, index }) => ({ file, y, a, group, split, index }));
    expect(got(ds)).toEqual(expectedSamples(ds, 'img_align_celeba'));
    expect(ds.skipped).toBe(0);

    const kaggle = tempDir();
    mkdirSync(join(kaggle, 'img_align_celeba'));
    cpSync(join(official, 'img_align_celeba'), join(kaggle, 'img_align_celeba', 'img_align_celeba'), { recursive: true });
    writeFileSync(join(kaggle, 'metadata.csv'), meta.join('\n') + '\n');
    const k = await openDataset({ dataset: 'celeba', root: kaggle });
    expect(got(k)).toEqual(expectedSamples(k, 'img_align_celeba/img_align_celeba'));

    const elsewhere = copyOfficial((r) => r);
    renameSync(join(elsewhere, 'img_align_celeba'), join(elsewhere, 'images'));
    mkdirSync(join(elsewhere, 'img_align_celeba'));
    writeFileSync(join(elsewhere, 'metadata.csv'), meta.join('\n') + '\n');
    await expect(openDataset({ dataset: 'celeba', root: elsewhere })).rejects.toThrow(
      `${join(elsewhere, 'metadata.csv')} line 2: image '000001.jpg' does not exist (${join(elsewhere, '000001.jpg')}); expected an image file ` +
        `named relative to one of ${elsewhere}, ${join(elsewhere, 'img_align_celeba')} (looked in each) (17 more rows name missing files)`,
    );
  });

  const bad: [string, () => string, RegExp][] = [
    ['an unknown attribute name', () => official, /list_attr_celeba\.txt line 2: no attribute 'Blonde' \(the target\); expected one of 5_o_Clock_Shadow, /],
    ['a value other than -1/1', () => copyOfficial((r) => { r[4].values[20] = 0; return r; }), /list_attr_celeba\.txt line 7: field 'Male' is '0', expected -1 or 1/],
    ['a short row', () => copyOfficial((r) => { r[2].values.pop(); return r; }), /list_attr_celeba\.txt line 5: 40 fields, expected 41 \(an image name and 40 values of -1 or 1\)/],
    ['a wrong image count', () => copyOfficial((r) => r, { count: 20 }), /list_attr_celeba\.txt line 1: says 20 images, but the file has 18 rows/],
    ['a row without a partition', () => { const root = copyOfficial((r) => r); writeFileSync(join(root, 'list_eval_partition.txt'), rows.slice(0, 17).map((r) => `${r.image} ${r.partition}`).join('\n')); return root; }, /list_attr_celeba\.txt line 20: image '000018\.jpg' has no partition in .*list_eval_partition\.txt \(expected every image to have a partition 0, 1 or 2\)/],
    ['a partition other than 0/1/2', () => copyOfficial((r) => { r[3].partition = 5; return r; }), /list_eval_partition\.txt line 4: field 'partition' is '5', expected 0 \(train\), 1 \(val\) or 2 \(test\)/],
    ['no label files', () => { const root = copyOfficial((r) => r); rmSync(join(root, 'list_eval_partition.txt')); return root; }, /no CelebA labels found \(expected list_attr_celeba\.txt or \.csv and list_eval_partition\.txt or \.csv, or a prepared metadata\.csv .*missing: list_eval_partition\)/],
    ['no image folder', () => { const root = copyOfficial((r) => r); renameSync(join(root, 'img_align_celeba'), join(root, 'images')); return root; }, /no folder img_align_celeba\/ \(expected the CelebA folder that holds img_align_celeba\/\)/],
    ['a missing image', () => { const root = copyOfficial((r) => r); rmSync(join(root, 'img_align_celeba', '000009.jpg')); return root; }, /list_attr_celeba\.txt line 11: image 'img_align_celeba\/000009\.jpg' does not exist/],
  ];
  for (const [what, make, want] of bad) {
    it(`bad input: ${what}`, async () => {
      await expect(openDataset({ dataset: 'celeba', root: make(), target: what === 'an unknown attribute name' ? 'Blonde' : undefined })).rejects.toThrow(want);
    });
  }
});
