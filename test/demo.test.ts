import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { parse, quote } from 'shell-quote';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import sharp from 'sharp';
import { repoDir } from './helpers/python.js';

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
    if (rep.contact_sheet) {
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
    expect(rep.studies).toHaveLength(3);
    expect(rep.studies[2].blocks).toHaveLength(4); // activated: one block per source group
    for (const s of rep.studies) {
      for (const b of s.blocks) {
        for (const a of [...b.before, ...b.after]) {
          expect(a).toBeGreaterThanOrEqual(0);
          expect(a).toBeLessThanOrEqual(1);
        }
      }
    }
    expect(rep.plots.length).toBeGreaterThanOrEqual(8);
    for (const p of rep.plots as string[]) {
      expect(isAbsolute(p)).toBe(true);
      expect((await sharp(p).metadata()).format, p).toBe('png');
      const svg = p.replace(/\.png$/, '.svg');
      expect(readFileSync(svg, 'utf8'), svg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
      expect((await sharp(svg).metadata()).format, svg).toBe('svg');
    }
    expect(md).toMatch(/!\[[^\]]+\]\(erm\/group_accuracy_test\.png\)/);
    expect(rep.commands.length).toBeGreaterThanOrEqual(6);
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
