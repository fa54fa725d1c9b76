import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { parse, quote } from 'shell-quote';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import sharp from 'sharp';
import { repoDir } from './helpers/python.js';
import { pairedChangeInterval } from '../src/metrics/paired.js';

const cli = join(repoDir, 'bin', 'spurmem.js');

describe('spurmem demo --quick', () => {
  it('runs every step and writes a report whose numbers and plots are sound and whose commands exist', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'spurmem-demo-')), 'demo');
    const r = spawnSync(process.execPath, [cli, 'demo', '--quick', '--out', out], { encoding: 'utf8', env: { ...process.env, SPURMEM_PROGRESS: '0' }, timeout: 900_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toMatch(/report: .*report\.md/);
    for (const f of ['report.md', 'report.html', 'report.json']) expect(existsSync(join(out, f)), f).toBe(true);
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    // --quick is a smoke test and says so; no pattern is called on fewer than 6 images
    expect(rep.smoke_test).toBe(true);
    expect(md).toContain('Smoke test (--quick)');
    expect(r.stdout).toContain('Smoke test (--quick)');
    for (const s of rep.studies) {
      for (const b of s.blocks) {
        const images = Math.abs((b.minority_change_points ?? 0) / 100) * b.minority_samples;
        if (images < 6) expect(md).not.toMatch(new RegExp(`minority groups ${b.minority_change_points > 0 ? 'lose' : 'gain'} ${Math.abs(b.minority_change_points).toFixed(1)} points[^;]*the paper's pattern`));
      }
    }
    // each change of the critical neurons is stated with its paired test, in images; the contact sheet of the flipped images is shown
    for (const s of rep.studies) {
      for (const b of s.blocks) {
        expect(b.minority_flips, s.title).not.toBeNull();
        expect(b.minority_p_holm).toBeGreaterThanOrEqual(b.minority_p_value);
        expect(md).toContain(`${b.minority_flips.to_wrong} right -> wrong and ${b.minority_flips.to_right} wrong -> right of ${b.minority_samples} images`);
        if (b.minority_p_holm >= 0.05 && b.majority_p_holm >= 0.05) expect(md).toContain('no measurable change');
      }
    }
    // every change of the study carries its 95% interval (t over repeats, or Newcombe's paired interval) holding the change, and its test
    for (const s of rep.studies) {
      for (const b of s.blocks) {
        expect(b.interval).toBe(s.mode === 'random_init' ? 't_over_repeats' : 'newcombe_paired');
        for (const w of ['minority', 'majority']) {
          const ci = b[`${w}_change_ci95_points`];
          const x = b[`${w}_change_points`];
          expect(ci, `${s.title} ${w}`).not.toBeNull();
          expect(ci[0]).toBeLessThanOrEqual(x + 1e-9);
          expect(ci[1]).toBeGreaterThanOrEqual(x - 1e-9);
          expect(ci[0]).toBeGreaterThanOrEqual(-100);
          expect(ci[1]).toBeLessThanOrEqual(100);
          expect(b[`${w}_p_value`]).toBeGreaterThanOrEqual(0);
          expect(b[`${w}_p_holm`]).toBeLessThanOrEqual(1);
          expect(md).toContain(`${x >= 0 ? '+' : ''}${x.toFixed(1)} [${ci[0] >= 0 ? '+' : ''}${ci[0].toFixed(1)}, ${ci[1] >= 0 ? '+' : ''}${ci[1].toFixed(1)}]`);
        }
      }
    }
    // the paper-style figure: change against top-k, SVG and PNG
    expect(rep.figure).not.toBeNull();
    expect((await sharp(rep.figure.png).metadata()).format).toBe('png');
    expect(readFileSync(rep.figure.svg, 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    expect((await sharp(rep.figure.svg).metadata()).format).toBe('svg');
    expect(md).toContain(`](${relative(out, rep.figure.png)})`);
    expect(rep.plots).toContain(rep.figure.png);
    // Part II: finetune-prune against ERM, GroupDRO and DFR on test worst-group and average accuracy, each
    // with its bootstrap interval; the numbers are those of the runs' own records
    expect(rep.part2.map((m: { method: string }) => m.method.split(/[ ,]/)[0])).toEqual(['ERM', 'ERM', 'GroupDRO', 'DFR', 'finetune-prune']);
    const records = (dir: string) => readFileSync(join(out, dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const bestOf = (recs: { epoch: number; val: { worst_group_accuracy: number } }[]) =>
      recs.filter((x) => x.epoch >= 0).reduce((a, b) => (b.val.worst_group_accuracy > a.val.worst_group_accuracy ? b : a));
    const drop = bestOf(records('groupdro'));
    expect(rep.part2[2].epoch).toBe(drop.epoch);
    expect(rep.part2[2].worst_group_accuracy).toBe(drop.test.worst_group_accuracy);
    expect(rep.part2[1].epoch).toBe(bestOf(records('erm')).epoch);
    expect(rep.part2[3].worst_group_accuracy).toBe(records('dfr').find((x: { epoch: number }) => x.epoch === 0).test.worst_group_accuracy);
    expect(readFileSync(join(out, 'groupdro', 'config.json'), 'utf8')).toContain('"algorithm": "groupdro"');
    for (const m of rep.part2) {
      for (const k of ['worst_group_accuracy', 'average_accuracy']) {
        const ci = m[`${k}_ci95`];
        expect(ci, `${m.method} ${k}`).not.toBeNull();
        expect(ci[0]).toBeLessThanOrEqual(m[k] + 1e-12);
        expect(ci[1]).toBeGreaterThanOrEqual(m[k] - 1e-12);
      }
      expect(md).toContain(`| ${m.method} |`);
    }
    expect(md).toContain('## 4. Finetune-prune against the baselines');
    if (rep.contact_sheet) {
      // the flipped-image sheet decodes to pixels
      const { info } = await sharp(rep.contact_sheet.file).raw().toBuffer({ resolveWithObject: true });
      expect(info.width * info.height).toBeGreaterThan(0);
      expect((await sharp(rep.contact_sheet.file).metadata()).format).toBe('png');
      expect(md).toContain(`](${relative(out, rep.contact_sheet.file)})`);
    } else {
      expect(md).toContain('No setting flipped any image.');
    }
    // groups too small to read are marked where their accuracy is shown
    for (const g of rep.erm.train.groups) if (g.count < 20) expect(md).toContain(`(n = ${g.count})`);
    expect(rep.groups).toHaveLength(4);
    for (const g of rep.groups) {
      expect(md).toContain(g.name);
      expect(html).toContain(g.name);
    }
    expect(rep.groups.filter((g: { minority: boolean }) => g.minority).map((g: { id: number }) => g.id)).toEqual([1, 2]);
    const metrics = [rep.erm.train, rep.erm.val, rep.erm.test, rep.finetune.start_test, rep.finetune.selected_test];
    for (const m of metrics) {
      expect(m.groups).toHaveLength(4);
      for (const g of m.groups) {
        expect(g.accuracy).toBeGreaterThanOrEqual(0);
        expect(g.accuracy).toBeLessThanOrEqual(1);
      }
      expect(m.worst_group_accuracy).toBeLessThanOrEqual(m.average_accuracy);
    }
    // the study sweep: largest and activated x zero and random_init x top-k {1, 3} (--quick)
    expect(rep.studies).toHaveLength(8);
    expect(rep.studies.map((s: { ranking: string; mode: string; top_k: number }) => `${s.ranking} ${s.mode} ${s.top_k}`).sort()).toEqual(
      ['activated random_init 1', 'activated random_init 3', 'activated zero 1', 'activated zero 3', 'largest random_init 1', 'largest random_init 3', 'largest zero 1', 'largest zero 3'],
    );
    for (const s of rep.studies) if (s.ranking === 'activated') expect(s.blocks.length, s.title).toBeLessThanOrEqual(4); // one block per source group (a skipped one has none)
    for (const s of rep.studies) {
      for (const b of s.blocks) {
        for (const a of [...b.before, ...b.after]) {
          expect(a).toBeGreaterThanOrEqual(0);
          expect(a).toBeLessThanOrEqual(1);
        }
      }
    }
    expect(rep.plots.length).toBeGreaterThanOrEqual(5);
    for (const p of rep.plots as string[]) {
      expect(isAbsolute(p)).toBe(true);
      expect((await sharp(p).metadata()).format, p).toBe('png');
      const svg = p.replace(/\.png$/, '.svg');
      expect(readFileSync(svg, 'utf8'), svg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
      expect((await sharp(svg).metadata()).format, svg).toBe('svg');
    }
    expect(md).toMatch(/!\[[^\]]+\]\(erm\/group_accuracy_test\.png\)/);
    expect(rep.commands.map((c: { step: string }) => c.step)).toEqual(['data', 'erm', 'critical neurons (a sweep)', 'finetune-prune', 'GroupDRO', 'DFR']);
    for (const c of rep.commands as { command: string }[]) {
      // printed the way it runs from any folder: `spurmem` when that is this package on PATH, else node + launcher
      const all = parse(c.command) as string[];
      const prefix = all[0] === 'spurmem' ? 1 : 2;
      if (prefix === 2) {
        expect(all[0]).toBe('node');
        expect(realpathSync(all[1])).toBe(realpathSync(cli));
      }
      const words = all.slice(prefix - 1);
      const sub = words[1] === 'data' ? words.slice(1, 3) : words.slice(1, 2);
      const h = spawnSync('sh', ['-c', `${quote(all.slice(0, prefix))} ${quote(sub)} --help`], { encoding: 'utf8', cwd: tmpdir() });
      expect(h.status, c.command).toBe(0);
      // every flag of the listed command is one the command knows
      for (const flag of words.filter((w) => w.startsWith('--'))) expect(h.stdout, `${c.command}: ${flag}`).toContain(flag);
    }
    console.log(`demo --quick: ${JSON.stringify(rep.timings)}; ERM test gap ${rep.erm.gap_points?.toFixed(1)} points`);
  });
});

describe("Newcombe's paired interval of a change", () => {
  it('matches the published value and holds the change', () => {
    // Cavo et al.'s paired table (59, 6, 16, 80): -0.0621, 95% CI -0.1186 to -0.0046 (R contingencytables)
    const iv = pairedChangeInterval({ n: 161, correctBefore: 65, toWrong: 6, toRight: 16 })!;
    expect(iv[0]).toBeCloseTo(-0.1186, 4);
    expect(iv[1]).toBeCloseTo(-0.0046, 4);
    // nothing flipped: symmetric around 0; the interval of the reverse change is the mirror image
    const z = pairedChangeInterval({ n: 300, correctBefore: 300, toWrong: 0, toRight: 0 })!;
    expect(z[0]).toBeCloseTo(-z[1], 12);
    const a = pairedChangeInterval({ n: 50, correctBefore: 40, toWrong: 7, toRight: 2 })!;
    const b = pairedChangeInterval({ n: 50, correctBefore: 35, toWrong: 2, toRight: 7 })!;
    expect(a[0]).toBeCloseTo(-b[1], 12);
    expect(a[1]).toBeCloseTo(-b[0], 12);
    expect(a[0]).toBeLessThan(0.1);
    expect(a[1]).toBeGreaterThan(0.1);
    expect(pairedChangeInterval({ n: 0, correctBefore: 0, toWrong: 0, toRight: 0 })).toBeNull();
    expect(() => pairedChangeInterval({ n: 10, correctBefore: 5, toWrong: 6, toRight: 0 })).toThrow(/do not fit/);
  });
});
