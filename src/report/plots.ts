/**
 * Plots as SVG (vega-lite compiled and rendered by vega, headless) and PNG (the SVG rasterised by sharp).
 */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
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

/** Dash patterns in order of first appearance: solid, dashed, dotted, dash-dot. */
const DASHES = [[1, 0], [7, 4], [2, 3], [7, 3, 2, 3]];

/**
 * Line chart of y against x, one line per series (colour); rows with a `dash` value are also told apart
 * by the line's dash pattern, in order of first appearance (solid, dashed, dotted; say which is which in
 * `subtitle`).
 */
export function lineChart(o: {
  title: string;
  rows: { x: number; y: number | null; series: string; dash?: string }[];
  xTitle: string;
  yTitle: string;
  yDomain?: [number, number];
  subtitle?: string;
  /** A horizontal rule at this y (e.g. 0 for a change). */
  rule?: number;
}): VlSpec {
  const dashed = o.rows.some((r) => r.dash !== undefined);
  const dashes = [...new Set(o.rows.map((r) => r.dash).filter((d): d is string => d !== undefined))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title,
    width: 480,
    height: 280,
    background: 'white',
    data: { values: o.rows.filter((r) => r.y !== null && Number.isFinite(r.y)) },
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'x', type: 'quantitative', title: o.xTitle, axis: { tickMinStep: 1 } },
          y: { field: 'y', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}) },
          color: { field: 'series', type: 'nominal', title: null },
          ...(dashed ? { strokeDash: { field: 'dash', type: 'nominal', scale: { domain: dashes, range: DASHES.slice(0, dashes.length) }, legend: null }, detail: { field: 'dash', type: 'nominal' } } : {}),
        },
      },
      ...(o.rule !== undefined ? [{ data: { values: [{ y: o.rule }] }, mark: { type: 'rule', color: 'gray', strokeWidth: 1 }, encoding: { y: { field: 'y', type: 'quantitative' } } }] : []),
    ],
  };
}

/**
 * Grouped bar chart: one column per category (e.g. group), one bar per series (e.g. before / after),
 * with an optional error bar (e.g. the standard deviation over repeats).
 */
export function groupedBars(o: {
  title: string;
  rows: { category: string; series: string; value: number | null; error?: number }[];
  yTitle: string;
  yDomain?: [number, number];
}): VlSpec {
  const values = o.rows
    .filter((r) => r.value !== null && Number.isFinite(r.value))
    .map((r) => ({ ...r, lo: r.value! - (r.error ?? 0), hi: r.value! + (r.error ?? 0) }));
  const y = { field: 'value', type: 'quantitative', title: o.yTitle, ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}) };
  const x = { field: 'series', type: 'nominal', axis: null, sort: null };
  const categories = [...new Set(values.map((v) => v.category))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: o.title,
    background: 'white',
    data: { values },
    facet: {
      column: { field: 'category', type: 'nominal', title: null, sort: categories, header: { labelOrient: 'bottom', labelLimit: 140, labelFontSize: 11 } },
    },
    spec: {
      width: { step: 56 },
      height: 260,
      layer: [
        { mark: 'bar', encoding: { x, y, color: { field: 'series', type: 'nominal', title: null, sort: null } } },
        { mark: { type: 'rule', color: 'black' }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
      ],
    },
  };
}
