/**
 * Plots as SVG (vega-lite compiled and rendered by vega, headless) and PNG (the SVG rasterised by sharp).
 *
 * Every plot shows what it holds in full: legend and header labels are never cut, a series that would be
 * drawn exactly over another in the same panel is drawn once with both names ("a = b"), x axes of
 * measured settings (top-k, fraction) show only the values measured, and error bars stay inside the
 * accuracy range.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { GroupMetrics } from '../metrics/groups.js';
import { ciKey, type Interval } from '../metrics/intervals.js';
import { writeFileAtomic } from '../util/files.js';

/** A vega-lite specification (loosely typed: vega-lite validates it). */
export type VlSpec = Record<string, unknown>;

/** Renders a vega-lite spec to SVG text. */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes `<stem>.svg` and `<stem>.png` (at 2x scale) atomically; returns both paths. */
export async function writePlot(stem: string, spec: VlSpec): Promise<{ svg: string; png: string }> {
  const svg = await renderSvg(spec);
  const png = await sharp(Buffer.from(svg), { density: 144 }).flatten({ background: '#ffffff' }).png().toBuffer();
  writeFileAtomic(`${stem}.svg`, svg);
  writeFileAtomic(`${stem}.png`, png);
  return { svg: `${stem}.svg`, png: `${stem}.png` };
}

/**
 * One point of a line chart: `series` is the line (colour); `column` and `row` name its panel; `lo` and
 * `hi` (both or neither) an error bar, e.g. a confidence interval of the accuracy.
 */
export interface LinePoint {
  x: number;
  y: number | null;
  series: string;
  column?: string;
  row?: string;
  lo?: number;
  hi?: number;
}

/**
 * Joins series that have the same points (same x values, same y values) in the same panel into one
 * series named "a = b", so that no line is drawn exactly over another and hidden. Rows with a null or
 * non-finite y are dropped first.
 */
export function mergeCoincidingSeries(rows: LinePoint[]): LinePoint[] {
  const finite = rows.filter((r) => r.y !== null && Number.isFinite(r.y));
  const panelOf = (r: LinePoint) => `${r.column ?? ''}\u0000${r.row ?? ''}`;
  const byPanel = new Map<string, Map<string, LinePoint[]>>();
  for (const r of finite) {
    const p = panelOf(r);
    if (!byPanel.has(p)) byPanel.set(p, new Map());
    const m = byPanel.get(p)!;
    if (!m.has(r.series)) m.set(r.series, []);
    m.get(r.series)!.push(r);
  }
  const rename = new Map<string, string>(); // panel + series -> merged name ('' for dropped duplicates)
  for (const [p, series] of byPanel) {
    const sig = new Map<string, string[]>();
    for (const [name, pts] of series) {
      const key = [...pts].sort((a, b) => a.x - b.x).map((q) => `${q.x}:${q.y}`).join(',');
      if (!sig.has(key)) sig.set(key, []);
      sig.get(key)!.push(name);
    }
    for (const names of sig.values()) {
      if (names.length < 2) continue;
      const merged = names.join(' = ');
      rename.set(`${p}\u0000${names[0]}`, merged);
      for (const n of names.slice(1)) rename.set(`${p}\u0000${n}`, '');
    }
  }
  const out: LinePoint[] = [];
  for (const r of finite) {
    const to = rename.get(`${panelOf(r)}\u0000${r.series}`);
    if (to === '') continue;
    out.push(to === undefined ? r : { ...r, series: to });
  }
  return out;
}

/**
 * Line chart of y against x, one line per series (colour), optionally in panels (`column`, `row` of the
 * points; each panel titled by its value in full). `xKind` 'measured' (top-k, fractions) puts only the
 * measured x values on the axis, evenly spaced in order, so no line passes over a value never measured;
 * 'integer' (epochs) is a numeric axis with whole-number ticks. Series that coincide in a panel are drawn
 * once ({@link mergeCoincidingSeries}). Points with `lo` and `hi` get an error bar in their series' colour,
 * clipped to `yDomain` (say what the bars are in `subtitle`).
 */
export function lineChart(o: {
  title: string;
  rows: LinePoint[];
  xTitle: string;
  yTitle: string;
  xKind?: 'integer' | 'measured';
  yDomain?: [number, number];
  subtitle?: string;
  /** A horizontal rule at this y (e.g. 0 for a change). */
  rule?: number;
  /** Panels with their own y scale (e.g. loss terms of different sizes). */
  independentY?: boolean;
}): VlSpec {
  const [dlo, dhi] = o.yDomain ?? [-Infinity, Infinity];
  const clipY = (v: number) => Math.min(dhi, Math.max(dlo, v));
  const values = mergeCoincidingSeries(o.rows).map((r) => (r.lo !== undefined && r.hi !== undefined ? { ...r, lo: clipY(r.lo), hi: clipY(r.hi) } : r));
  const bars = values.some((r) => r.lo !== undefined && r.hi !== undefined);
  const color = { field: 'series', type: 'nominal', title: null, sort: null, legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical', columns: 2 } };
  const columns = [...new Set(values.map((r) => r.column).filter((c): c is string => c !== undefined))];
  const rowsFacet = [...new Set(values.map((r) => r.row).filter((c): c is string => c !== undefined))];
  const faceted = columns.length > 0 || rowsFacet.length > 0;
  const xs = [...new Set(values.map((r) => r.x))].sort((a, b) => a - b);
  const x =
    o.xKind === 'measured'
      ? { field: 'x', type: 'ordinal', title: o.xTitle, sort: xs, axis: { labelAngle: 0 } }
      : { field: 'x', type: 'quantitative', title: o.xTitle, axis: { tickMinStep: 1, format: 'd' }, scale: { zero: false } };
  const layer = [
    {
      mark: { type: 'line', point: true },
      encoding: {
        x,
        y: { field: 'y', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}) },
        color,
      },
    },
    ...(bars
      ? [{ transform: [{ filter: 'isValid(datum.lo) && isValid(datum.hi)' }], mark: { type: 'rule', opacity: 0.6 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color } }]
      : []),
    ...(o.rule !== undefined ? [{ mark: { type: 'rule', color: 'gray', strokeWidth: 1 }, encoding: { y: { datum: o.rule } } }] : []),
  ];
  const header = { labelLimit: 0, labelFontSize: 12, title: null };
  const spec = { width: columns.length > 2 ? 220 : faceted ? 320 : 480, height: faceted ? 220 : 280, layer };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title,
    background: 'white',
    data: { values },
    ...(faceted
      ? {
          facet: {
            ...(columns.length ? { column: { field: 'column', type: 'nominal', sort: columns, header } } : {}),
            ...(rowsFacet.length ? { row: { field: 'row', type: 'nominal', sort: rowsFacet, header } } : {}),
          },
          resolve: { scale: { x: 'shared', y: o.independentY ? 'independent' : 'shared' } },
          spec,
        }
      : spec),
  };
}

/** Splits a label into lines of at most `width` characters at spaces (header labels of narrow columns). */
export function wrapLabel(label: string, width = 14): string[] {
  const lines: string[] = [];
  for (const word of label.split(' ')) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines;
}

/**
 * Grouped bar chart: one column per category (e.g. group, its label in full on as many lines as it
 * needs), one bar per series (e.g. before / after), with an optional error bar, symmetric (`error`, e.g.
 * the standard deviation over repeats) or an interval (`interval`, e.g. a confidence interval), clipped
 * to `yDomain` (say what the bars are in `subtitle`).
 */
export function groupedBars(o: {
  title: string;
  rows: { category: string; series: string; value: number | null; error?: number; interval?: Interval | null }[];
  yTitle: string;
  yDomain?: [number, number];
  subtitle?: string;
}): VlSpec {
  const [lo, hi] = o.yDomain ?? [-Infinity, Infinity];
  const clip = (v: number) => Math.min(hi, Math.max(lo, v));
  const values = o.rows
    .filter((r) => r.value !== null && Number.isFinite(r.value))
    .map((r) => (r.interval ? { ...r, lo: clip(r.interval[0]), hi: clip(r.interval[1]) } : { ...r, lo: clip(r.value! - (r.error ?? 0)), hi: clip(r.value! + (r.error ?? 0)) }));
  const y = { field: 'value', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}) };
  const x = { field: 'series', type: 'nominal', axis: null, sort: null };
  const categories = [...new Set(values.map((v) => v.category))];
  const lines = Object.fromEntries(categories.map((c) => [c, wrapLabel(c)]));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title,
    background: 'white',
    data: { values },
    facet: {
      column: {
        field: 'category',
        type: 'nominal',
        title: null,
        sort: categories,
        header: { labelOrient: 'bottom', labelLimit: 0, labelFontSize: 11, labelExpr: `${JSON.stringify(lines)}[datum.value]` },
      },
    },
    spec: {
      width: { step: 56 },
      height: 260,
      layer: [
        { mark: 'bar', encoding: { x, y, color: { field: 'series', type: 'nominal', title: null, sort: null, legend: { labelLimit: 0 } } } },
        { mark: { type: 'rule', color: 'black' }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      ],
    },
  };
}

/**
 * Before/after bar chart of per-group accuracy (the study's reports): the "before" bars carry the
 * per-group confidence interval of `before` (when its metrics have intervals), the "after" bars
 * `afterErr` (the standard deviation over the repeats); every error bar is clipped to [0, 1].
 */
export async function writeBeforeAfterPlot(stem: string, title: string, before: GroupMetrics, after: GroupMetrics, afterErr?: (number | null)[]): Promise<void> {
  const key = before.ci && before.ci.method !== 'none' ? ciKey(before.ci.level) : null;
  const rows = [];
  for (let g = 0; g < before.groups.length; g++) {
    const category = `${before.groups[g].id} ${before.groups[g].name} (${before.groups[g].count} images)`;
    rows.push({ category, series: 'before', value: before.groups[g].accuracy, interval: key ? before.groups[g][key] : undefined });
    rows.push({ category, series: 'after', value: after.groups[g].accuracy, error: afterErr?.[g] ?? undefined });
  }
  const bars = afterErr?.some((e) => e !== null && e !== undefined && e > 0);
  const parts: string[] = [];
  if (key && before.groups.some((g) => g[key])) parts.push(`before, the ${intervalWords(before)}`);
  if (bars) parts.push(`${parts.length ? 'after, ' : ''}standard deviation over the repeats`);
  await writePlot(stem, groupedBars({ title, rows, yTitle: 'accuracy', yDomain: [0, 1], subtitle: parts.length ? `error bars: ${parts.join('; ')}, clipped to [0, 1]` : undefined }));
}

/** "95% Wilson score interval" / "90% Clopper-Pearson interval" of metrics with intervals. */
export function intervalWords(m: GroupMetrics): string {
  const level = `${Number(((m.ci?.level ?? 0.95) * 100).toFixed(10))}%`;
  return `${level} ${m.ci?.method === 'clopper-pearson' ? 'Clopper-Pearson' : 'Wilson score'} interval`;
}

/**
 * One point of the critical-neuron figure: the change (points, accuracy before - after; positive: lost)
 * of a set of groups (`series`, e.g. "minority groups (1, 2)") at top-k `k`, with its 95% interval
 * (`lo`, `hi`, both or neither), in the panel of `ranking` (row) and `mode` (column).
 */
export interface ChangePoint {
  k: number;
  change: number;
  lo?: number;
  hi?: number;
  series: string;
  ranking: string;
  mode: string;
}

/**
 * The paper-style figure of a critical-neuron study: minority and majority change against top-k, one
 * panel per ranking (row; an activated ranking one row per source group) and mode (column), with error
 * bars for the 95% intervals (clipped to the possible changes, -100 to 100 points) and a rule at 0; the x axis holds only the measured top-k values `ks`.
 * Writes `<stem>.svg` and `<stem>.png`.
 */
export async function writeChangeCurves(stem: string, points: ChangePoint[], o: { split: string; ks: number[] }): Promise<{ svg: string; png: string }> {
  // a change of accuracy lies in [-100, 100] points: a t-interval of few repeats can reach beyond, the bars stop there
  const clip = (v: number) => Math.min(100, Math.max(-100, v));
  const rows: LinePoint[] = points.map((p) => ({ x: p.k, y: p.change, series: p.series, column: p.mode, row: p.ranking, ...(p.lo !== undefined && p.hi !== undefined ? { lo: clip(p.lo), hi: clip(p.hi) } : {}) }));
  return writePlot(
    stem,
    lineChart({
      title: `Changing the top-k critical neurons: accuracy change on the ${o.split} split (top-k ${o.ks.join(', ')})`,
      subtitle: 'change = accuracy before - after, percentage points (positive: accuracy lost); bars: 95% intervals',
      rows,
      xTitle: 'top-k channels (measured values)',
      yTitle: 'change (points)',
      xKind: 'measured',
      rule: 0,
    }),
  );
}
