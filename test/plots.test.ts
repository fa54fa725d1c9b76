/**
 * Every plot the project draws shows what it holds: full labels (nothing cut to "…"), no series drawn
 * exactly over another in the same panel, only measured top-k values on the x axis (no "3.000000"),
 * 0-based epochs, and error bars inside [0, 1]. Each check renders the plot with vega as the commands do.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withIntervals, type GroupMetrics } from '../src/metrics/groups.js';
import { groupedBars, lineChart, mergeCoincidingSeries, renderSvg, writeBeforeAfterPlot, type LinePoint, type VlSpec } from '../src/report/plots.js';
import { writeSweepPlots, type SweepRow } from '../src/sweep/report.js';
import { SETTING_KEYS } from '../src/sweep/config.js';
import { RunDir } from '../src/train/run-dir.js';

const dir = mkdtempSync(join(tmpdir(), 'spurmem-plots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NAMES = ['landbird on land', 'landbird on water', 'waterbird on land', 'waterbird on water'];

function metrics(split: 'train' | 'val' | 'test', acc: number[], counts = [100, 20, 10, 80]): GroupMetrics {
  const groups = acc.map((a, id) => ({ id, name: NAMES[id], count: counts[id], correct: Math.round(a * counts[id]), accuracy: a }));
  return { split, groups, worst_group_accuracy: Math.min(...acc), average_accuracy: acc.reduce((s, a, i) => s + a * counts[i], 0) / 210, mean_accuracy: acc.reduce((s, a) => s + a, 0) / 4 };
}

/** The text of every <text> element of an SVG. */
function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>(.*?)<\/text>/g)].map((m) =>
    m[1].replace(/<tspan[^>]*>/g, ' ').replace(/<\/tspan>/g, '').trim().replace(/&amp;/g, '&'),
  );
}

/** The x axis's values, from the axis description vega writes into the SVG. */
function xAxisValues(svg: string): string[] {
  const m = /aria-label="X-axis[^"]*values?: ([^"]*)"/.exec(svg);
  return m ? m[1].split(', ') : [];
}

/** Pairs of series with the same points in the same panel, in a line chart's data. */
function coinciding(spec: VlSpec): string[][] {
  const values = (spec.data as { values: LinePoint[] }).values;
  const sig = new Map<string, string[]>();
  const bySeries = new Map<string, LinePoint[]>();
  for (const v of values) {
    const k = `${v.column ?? ''}|${v.row ?? ''}|${v.series}`;
    if (!bySeries.has(k)) bySeries.set(k, []);
    bySeries.get(k)!.push(v);
  }
  for (const [k, pts] of bySeries) {
    const panel = k.split('|').slice(0, 2).join('|');
    const s = panel + '#' + pts.sort((a, b) => a.x - b.x).map((p) => `${p.x}:${p.y}`).join(',');
    if (!sig.has(s)) sig.set(s, []);
    sig.get(s)!.push(k);
  }
  return [...sig.values()].filter((v) => v.length > 1);
}

describe('plots', () => {
  it('a run folder plots groups apart from the worst-group line, 0-based epochs, labels in full', async () => {
    const run = new RunDir(join(dir, 'run'));
    run.prepare({}, { resume: false, force: false, mayChange: [], command: 'train' });
    // group 2 is the worst group at every epoch: its line and the worst-group line have the same values
    const accs = [[0.9, 0.5, 0.2, 0.95], [0.95, 0.6, 0.3, 0.97], [0.97, 0.7, 0.4, 0.99]];
    accs.forEach((a, epoch) => run.append({ epoch, loss: 1 / (epoch + 1), lr: 1e-3, seconds: 1, eval_seconds: 1, train: metrics('train', a), val: metrics('val', a), test: metrics('test', a) }));
    await run.writeSummaries();
    const svg = readFileSync(run.path('group_accuracy_test.svg'), 'utf8');
    if (process.env.SPURMEM_KEEP_PLOTS) copyFileSync(run.path('group_accuracy_test.png'), join(process.env.SPURMEM_KEEP_PLOTS, 'group_accuracy_test.png'));
    const texts = svgTexts(svg);
    expect(texts.some((t) => t.includes('…'))).toBe(false);
    for (const n of NAMES.map((n, i) => `${i} ${n}`)) expect(texts).toContain(n);
    expect(texts).toContain('worst group');
    expect(texts).toContain('groups');
    expect(texts).toContain('worst group and average');
    // epochs 0, 1, 2 as the checkpoint names; no 3 (the old 1-based axis)
    expect(texts).toContain('epochs count from 0, as the checkpoint names');
    expect(texts).toContain('0');
    expect(texts).not.toContain('3');
    const loss = svgTexts(readFileSync(run.path('loss.svg'), 'utf8'));
    expect(loss.some((t) => /\.\d{3,}/.test(t) && /^\d/.test(t) && !/^0\.\d+$/.test(t))).toBe(false);
  });

  it('series with the same values in one panel are drawn once, named together', async () => {
    const rows: LinePoint[] = [0, 1, 2].flatMap((x) => [
      { x, y: 0.5, series: 'a' },
      { x, y: 0.5, series: 'b' },
      { x, y: x / 3, series: 'c' },
    ]);
    const spec = lineChart({ title: 't', rows, xTitle: 'x', yTitle: 'y', xKind: 'integer' });
    expect(coinciding(spec)).toEqual([]);
    expect(svgTexts(await renderSvg(spec))).toContain('a = b');
    // the same values in different panels are not merged
    const panels = mergeCoincidingSeries(rows.map((r) => ({ ...r, column: r.series })));
    expect(new Set(panels.map((r) => r.series))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('a single top-k value is a tick "3", and top-k 1 and 3 are not joined through 2', async () => {
    const oneSvg = await renderSvg(lineChart({ title: 't', rows: [{ x: 3, y: 1, series: 's' }], xTitle: 'top-k', yTitle: 'y', xKind: 'measured' }));
    expect(xAxisValues(oneSvg)).toEqual(['3']);
    expect(svgTexts(oneSvg).some((t) => /^3\.0+$/.test(t))).toBe(false);
    const two = await renderSvg(lineChart({ title: 't', rows: [{ x: 1, y: 1, series: 's' }, { x: 3, y: 2, series: 's' }], xTitle: 'top-k', yTitle: 'y', xKind: 'measured' }));
    expect(xAxisValues(two)).toEqual(['1', '3']);
  });

  it('bar labels are whole and error bars stay in [0, 1]', async () => {
    const spec = groupedBars({
      title: 't',
      rows: [
        { category: '3 waterbird on water (n = 1057)', series: 'before', value: 0.98 },
        { category: '3 waterbird on water (n = 1057)', series: 'after', value: 0.95, error: 0.2 },
        { category: '1 landbird on water (n = 184)', series: 'after', value: 0.05, error: 0.2 },
      ],
      yTitle: 'accuracy',
      yDomain: [0, 1],
    });
    const values = (spec.data as { values: { lo: number; hi: number }[] }).values;
    for (const v of values) {
      expect(v.lo).toBeGreaterThanOrEqual(0);
      expect(v.hi).toBeLessThanOrEqual(1);
    }
    const texts = svgTexts(await renderSvg(spec));
    expect(texts.some((t) => t.includes('…'))).toBe(false);
    expect(texts.join(' ')).toContain('waterbird on water');
  });

  it('the study plot says what its error bars are', async () => {
    const before = metrics('train', [1, 1, 1, 0.9]);
    const after = metrics('train', [0.98, 0.02, 0.5, 0.9]);
    const stem = join(dir, 'before_after');
    await writeBeforeAfterPlot(stem, 'largest random_noise', before, after, [0.01, 0.3, 0.1, 0]);
    const texts = svgTexts(readFileSync(`${stem}.svg`, 'utf8'));
    expect(texts.join(' ')).toContain('standard deviation over the repeats, clipped to [0, 1]');
    expect(texts.some((t) => t.includes('…'))).toBe(false);
  });

  it('confidence intervals: the study plot draws the before interval, a run plot its error bars inside [0, 1]', async () => {
    const before = withIntervals(metrics('train', [1, 0.5, 0.3, 0.9]), [100, 20, 10, 80], { bootstrap: 0 });
    const after = metrics('train', [0.98, 0.02, 0.5, 0.9]);
    const stem = join(dir, 'before_after_ci');
    await writeBeforeAfterPlot(stem, 'largest zero', before, after, [0, 0, 0, 0]);
    const texts = svgTexts(readFileSync(`${stem}.svg`, 'utf8'));
    expect(texts.join(' ')).toContain('error bars: before, the 95% Wilson score interval, clipped to [0, 1]');
    const spec = lineChart({
      title: 't', xTitle: 'epoch', yTitle: 'accuracy', yDomain: [0, 1], xKind: 'integer',
      rows: [{ x: 0, y: 0.98, series: 'g', lo: 0.9, hi: 1.02 }, { x: 1, y: 0.5, series: 'g', lo: 0.3, hi: 0.7 }, { x: 2, y: 0.6, series: 'g' }],
    });
    const values = (spec.data as { values: LinePoint[] }).values;
    expect(values.map((v) => [v.lo, v.hi])).toEqual([[0.9, 1], [0.3, 0.7], [undefined, undefined]]);
    expect(svgTexts(await renderSvg(spec)).some((t) => t.includes('…'))).toBe(false);
  });

  it("the sweep's change plot has one panel per source group and minority/majority, labels in full", async () => {
    const rows: SweepRow[] = [];
    for (const src of [0, 1, 2, 3]) {
      for (const k of [1, 3]) {
        for (const group of ['minority', 'majority'] as const) {
          const base = Object.fromEntries(SETTING_KEYS.map((key) => [key, null])) as Record<string, unknown>;
          rows.push({
            ...base,
            index: 0, key: 'k', split: 'train', ranking: 'activated', mode: 'random_noise', top_k: k, std: 0.02, repeats: 10, seed: 0,
            block: src, source_group: src, group, name: group, count: 100, minority: null,
            accuracy_unmodified: 1, accuracy_mean: group === 'minority' ? 1 - 0.01 * k * src : 1, accuracy_std: 0,
            change: group === 'minority' ? 0.01 * k * src : 0,
          } as SweepRow);
        }
      }
    }
    const files = await writeSweepPlots(join(dir, 'sweep'), rows, [1, 2], [0, 1, 2, 3]);
    const svg = readFileSync(files.find((f) => f.endsWith('.svg'))!, 'utf8');
    const texts = svgTexts(svg);
    expect(texts.some((t) => t.includes('…'))).toBe(false);
    for (const g of [0, 1, 2, 3]) expect(texts).toContain(`gradients of group ${g}`);
    expect(texts).toContain('minority groups (1, 2)');
    expect(texts).toContain('majority groups (0, 3)');
    expect(texts).toContain('std 0.02, R 10');
    expect(xAxisValues(svg)).toEqual(['1', '3']); // top-k 1 and 3 measured, nothing drawn at 2
  });
});
