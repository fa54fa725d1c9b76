/**
 * Readers of the label files: Waterbirds-style `metadata.csv` (Waterbirds as distributed, prepared CelebA
 * folders, users' own datasets) and CelebA's attribute and partition lists (official whitespace-aligned
 * `.txt` files and the Kaggle `.csv` variants).
 *
 * Every reader returns plain rows with the 1-based line number they came from; every bad value is a
 * SpurmemError naming the file, the line, the field and what was expected.
 */
import { readFileSync } from 'node:fs';
import { basename, isAbsolute } from 'node:path';
import { parse } from 'csv-parse/sync';
import { SpurmemError, messageOf } from '../util/errors.js';
import { SPLITS, type Split } from './types.js';

/** One labelled image before file checks: a path relative to the dataset root. */
export interface MetadataRow {
  line: number;
  /** Image path relative to the dataset root, as written in the file. */
  relPath: string;
  y: 0 | 1;
  a: 0 | 1;
  split: Split;
}

/** The columns of Waterbirds' metadata.csv, as distributed. */
export const WATERBIRDS_COLUMNS = ['img_id', 'img_filename', 'y', 'split', 'place', 'place_filename'] as const;

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new SpurmemError(`${path}: no such file`);
    throw new SpurmemError(`${path}: cannot read (${messageOf(e)})`);
  }
}

/** Parses a CSV file with a header line into records with their line numbers (csv-parse). */
export function readCsv(path: string): { columns: string[]; rows: { line: number; record: Record<string, string> }[] } {
  const text = readText(path);
  let parsed: { record: Record<string, string>; info: { lines: number } }[];
  let columns: string[] = [];
  try {
    parsed = parse(text, {
      columns: (header: string[]) => {
        columns = header.map((h) => h.trim());
        return columns;
      },
      info: true,
      bom: true,
      skip_empty_lines: true,
      trim: true,
    }) as { record: Record<string, string>; info: { lines: number } }[];
  } catch (e) {
    throw new SpurmemError(`${path}: not a valid CSV file (${messageOf(e)})`);
  }
  if (columns.length === 0) throw new SpurmemError(`${path}: empty file (expected a header line and one row per image)`);
  return { columns, rows: parsed.map((p) => ({ line: p.info.lines, record: p.record })) };
}

/** Checks that every `wanted` column is in the header; `hint(missing)` may add what to do about it. */
export function requireColumns(path: string, columns: string[], wanted: string[], expected: string, hint?: (missing: string[]) => string): void {
  const missing = wanted.filter((w) => !columns.includes(w));
  if (missing.length > 0) {
    throw new SpurmemError(
      `${path} line 1: missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} ` +
        `(expected ${expected}; found ${columns.map((c) => `'${c}'`).join(', ') || 'no columns'})` +
        (hint?.(missing) ?? ''),
    );
  }
}

/** Parses a 0/1 label field. */
export function binaryField(path: string, line: number, field: string, v: string | undefined): 0 | 1 {
  const s = (v ?? '').trim();
  if (s === '0' || s === '0.0') return 0;
  if (s === '1' || s === '1.0') return 1;
  throw new SpurmemError(`${path} line ${line}: field '${field}' is '${s}', expected 0 or 1`);
}

/** Parses a split code 0/1/2 (train/val/test). */
export function splitField(path: string, line: number, field: string, v: string | undefined): Split {
  const s = (v ?? '').trim();
  const code = s === '0' ? 0 : s === '1' ? 1 : s === '2' ? 2 : -1;
  if (code < 0) throw new SpurmemError(`${path} line ${line}: field '${field}' is '${s}', expected 0 (train), 1 (val) or 2 (test)`);
  return SPLITS[code];
}

/**
 * Reads a Waterbirds-style metadata.csv: columns `img_filename`, `split` (0/1/2), the class column
 * (`target`, default `y`) and the spurious-attribute column (`attribute`, default `place`), each 0/1.
 * Other columns are ignored (the original reads the same four; §1.1 of the reference).
 * @throws SpurmemError for a missing column, an empty file name, or a value outside its range.
 */
export function readMetadataCsv(path: string, o: { target?: string; attribute?: string } = {}): MetadataRow[] {
  const target = o.target ?? 'y';
  const attribute = o.attribute ?? 'place';
  const { columns, rows } = readCsv(path);
  requireColumns(path, columns, ['img_filename', target, 'split', attribute], `the Waterbirds columns ${WATERBIRDS_COLUMNS.join(',')}` +
    (target !== 'y' || attribute !== 'place' ? ` with '${target}' as the class and '${attribute}' as the spurious attribute` : ''),
    (missing) => {
      const flags = [...(missing.includes(attribute) ? ['--attribute COLUMN names the spurious attribute\'s 0/1 column'] : []), ...(missing.includes(target) ? ['--target COLUMN names the class\'s 0/1 column'] : [])];
      return flags.length ? `; ${flags.join(', ')}` : '';
    });
  return rows.map(({ line, record }) => {
    const relPath = (record.img_filename ?? '').trim();
    if (relPath === '') throw new SpurmemError(`${path} line ${line}: field 'img_filename' is empty, expected an image path relative to the dataset folder`);
    if (isAbsolute(relPath) || relPath.split(/[\\/]/).includes('..')) {
      throw new SpurmemError(`${path} line ${line}: field 'img_filename' is '${relPath}', expected a path inside the dataset folder (relative, without '..')`);
    }
    return {
      line,
      relPath,
      y: binaryField(path, line, target, record[target]),
      a: binaryField(path, line, attribute, record[attribute]),
      split: splitField(path, line, 'split', record.split),
    };
  });
}

/** CelebA's attribute table: the attribute names and, per image, its line and ±1 values of two attributes. */
export interface CelebaAttributes {
  names: string[];
  rows: { line: number; image: string; y: 0 | 1; a: 0 | 1 }[];
}

function pm1(path: string, line: number, field: string, v: string | undefined): 0 | 1 {
  const s = (v ?? '').trim();
  if (s === '1' || s === '+1') return 1;
  if (s === '-1') return 0;
  throw new SpurmemError(`${path} line ${line}: field '${field}' is '${s}', expected -1 or 1`);
}

function attributeIndex(path: string, line: number, names: string[], name: string, role: string): number {
  const i = names.indexOf(name);
  if (i < 0) {
    throw new SpurmemError(`${path} line ${line}: no attribute '${name}' (the ${role}); expected one of ${names.join(', ')}`);
  }
  return i;
}

/**
 * Reads CelebA's official `list_attr_celeba.txt`: line 1 the image count, line 2 the 40 attribute names,
 * then `<file> v1 ... v40` with values -1/1 separated by runs of spaces. Returns y = `target` and
 * a = `attribute` mapped to 0/1.
 * @throws SpurmemError for a missing header, an unknown attribute name, a short row or a value other than ±1.
 */
export function readCelebaAttrTxt(path: string, target: string, attribute: string): CelebaAttributes {
  const text = readText(path);
  const lines = lineBounds(text);
  const lineText = (k: number) => text.slice(lines[k], lines[k + 1]).replace(/\r?\n$/, '');
  const count = Number(lineText(0).trim());
  if (!Number.isInteger(count) || count < 0) {
    throw new SpurmemError(`${path} line 1: '${lineText(0).trim()}' is not an image count (expected the official list_attr_celeba.txt: a count, a line of 40 attribute names, then one row per image)`);
  }
  const names = lines.length > 2 ? lineText(1).trim().split(/\s+/).filter((s) => s !== '') : [];
  if (names.length === 0) throw new SpurmemError(`${path} line 2: no attribute names (expected the 40 CelebA attribute names)`);
  const ti = attributeIndex(path, 2, names, target, 'target');
  const ai = attributeIndex(path, 2, names, attribute, 'spurious attribute');
  const rows: CelebaAttributes['rows'] = [];
  // 202,599 rows of 41 fields: scanned in place (a split per row made 8 million strings)
  const fields = new Int32Array(2 * (names.length + 2));
  for (let k = 2; k + 1 < lines.length; k++) {
    const n = scanFields(text, lines[k], lines[k + 1], fields);
    if (n === 0) continue;
    const line = k + 1;
    if (n !== names.length + 1) {
      throw new SpurmemError(`${path} line ${line}: ${n} fields, expected ${names.length + 1} (an image name and ${names.length} values of -1 or 1)`);
    }
    const field = (i: number) => text.slice(fields[2 * i], fields[2 * i + 1]);
    rows.push({ line, image: field(0), y: pm1(path, line, target, field(ti + 1)), a: pm1(path, line, attribute, field(ai + 1)) });
  }
  if (rows.length !== count) {
    throw new SpurmemError(`${path} line 1: says ${count} images, but the file has ${rows.length} rows`);
  }
  return { names, rows };
}

/**
 * Where each line of `text` starts, then text.length: line k is text[b[k], b[k + 1]), its line break
 * included, for k < b.length - 1.
 */
function lineBounds(text: string): number[] {
  const b = [0];
  for (let i = text.indexOf('\n'); i >= 0 && i + 1 < text.length; i = text.indexOf('\n', i + 1)) b.push(i + 1);
  b.push(text.length);
  return b;
}

/** Whether a character code is whitespace as JavaScript's `\s` (and String.prototype.trim) defines it. */
function isSpace(c: number): boolean {
  if (c < 128) return c === 32 || (c >= 9 && c <= 13);
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * Finds the whitespace-separated fields of text[start, end): writes [from, to) of the first fields.length / 2
 * into `fields` and returns how many there are (as `line.trim().split(/\s+/)` counts them, 0 for a blank line).
 */
function scanFields(text: string, start: number, end: number, fields: Int32Array): number {
  const most = fields.length >> 1;
  let n = 0;
  let i = start;
  for (;;) {
    while (i < end && isSpace(text.charCodeAt(i))) i++;
    if (i >= end) return n;
    const from = i;
    while (i < end && !isSpace(text.charCodeAt(i))) i++;
    if (n < most) {
      fields[2 * n] = from;
      fields[2 * n + 1] = i;
    }
    n++;
  }
}

/**
 * Reads the Kaggle variant `list_attr_celeba.csv`: header `image_id,<40 attribute names>`, values -1/1.
 * @throws SpurmemError as {@link readCelebaAttrTxt}.
 */
export function readCelebaAttrCsv(path: string, target: string, attribute: string): CelebaAttributes {
  const { columns, rows } = readCsv(path);
  requireColumns(path, columns, ['image_id'], "the Kaggle CelebA columns 'image_id' and the 40 attribute names");
  const names = columns.filter((c) => c !== 'image_id');
  attributeIndex(path, 1, names, target, 'target');
  attributeIndex(path, 1, names, attribute, 'spurious attribute');
  return {
    names,
    rows: rows.map(({ line, record }) => {
      const image = (record.image_id ?? '').trim();
      if (image === '') throw new SpurmemError(`${path} line ${line}: field 'image_id' is empty, expected an image file name`);
      return { line, image, y: pm1(path, line, target, record[target]), a: pm1(path, line, attribute, record[attribute]) };
    }),
  };
}

/**
 * Reads CelebA's partition list: `list_eval_partition.txt` (`<file> <0|1|2>` per line) or the Kaggle
 * `list_eval_partition.csv` (`image_id,partition`). Returns image name -> split.
 * @throws SpurmemError for a malformed row, a partition other than 0/1/2 or an image listed twice.
 */
export function readCelebaPartition(path: string): Map<string, Split> {
  const out = new Map<string, Split>();
  const add = (line: number, image: string, v: string | undefined, field: string) => {
    const split = splitField(path, line, field, v);
    if (out.has(image)) throw new SpurmemError(`${path} line ${line}: image '${image}' is listed twice (expected one partition per image)`);
    out.set(image, split);
  };
  if (basename(path).toLowerCase().endsWith('.csv')) {
    const { columns, rows } = readCsv(path);
    requireColumns(path, columns, ['image_id', 'partition'], "the Kaggle columns 'image_id,partition'");
    for (const { line, record } of rows) add(line, (record.image_id ?? '').trim(), record.partition, 'partition');
    return out;
  }
  const text = readText(path);
  const lines = lineBounds(text);
  const fields = new Int32Array(6);
  for (let k = 0; k + 1 < lines.length; k++) {
    const n = scanFields(text, lines[k], lines[k + 1], fields);
    if (n === 0) continue;
    if (n !== 2) throw new SpurmemError(`${path} line ${k + 1}: ${n} fields, expected 2 (an image name and its partition 0, 1 or 2)`);
    add(k + 1, text.slice(fields[0], fields[1]), text.slice(fields[2], fields[3]), 'partition');
  }
  return out;
}
