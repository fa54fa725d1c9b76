/**
 * Result files in the original code's text formats, so that scripts written for the original keep working.
 */
import type { GroupMetrics } from '../metrics/groups.js';

function fmt(a: number | null, digits: number): string {
  return a === null || !Number.isFinite(a) ? 'nan' : a.toFixed(digits);
}

/**
 * `group_accuracy_evolution_in_<split>_set.txt` (original-behaviour §3.1): one line per group
 * `group<j>, a_0, a_1, ...` with 4 decimals, then the line `averag, ...` (the original's spelling) with
 * the average weighted by the training split's group counts. Column e is the model after epoch e (the
 * original's train/test columns were the model before epoch e; spurmem lines every split up).
 */
export function evolutionText(perEpoch: GroupMetrics[]): string {
  if (perEpoch.length === 0) return '';
  const nGroups = perEpoch[0].groups.length;
  const lines: string[] = [];
  for (let g = 0; g < nGroups; g++) {
    lines.push([`group${g}`, ...perEpoch.map((m) => fmt(m.groups[g].accuracy, 4))].join(', '));
  }
  lines.push(['averag', ...perEpoch.map((m) => fmt(m.average_accuracy, 4))].join(', '));
  return lines.join('\n') + '\n';
}

/** One result line of a study file: `a0, a1, a2, a3` with 8 decimals (original-behaviour §3.2, Q16). */
export function accuracyLine(m: GroupMetrics): string {
  return m.groups.map((g) => fmt(g.accuracy, 8)).join(', ');
}

/**
 * A number as Python prints a float (`repr`): the shortest text that reads back to the same double,
 * e.g. 4.643474578857422, 1e-05, 0.02.
 */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  const s = x.toString();
  const m = /^(-?)(\d(?:\.\d+)?)e([+-])(\d+)$/.exec(s);
  if (m) {
    // JS: 1e-7 / 1.5e+21; Python: 1e-07 / 1.5e+21
    return `${m[1]}${m[2]}e${m[3]}${m[4].padStart(2, '0')}`;
  }
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e16) {
    // Python switches to exponent notation below 1e-4 and from 1e16; JS only below 1e-6 and from 1e21
    const e = x.toExponential();
    const mm = /^(-?)(\d(?:\.\d+)?)e([+-])(\d+)$/.exec(e)!;
    return `${mm[1]}${mm[2]}e${mm[3]}${mm[4].padStart(2, '0')}`;
  }
  return s;
}
