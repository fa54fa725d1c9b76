/**
 * One planned setting of a sweep, run on a prepared base: its folder, its result line, and its outcome
 * (what the in-process loop, a worker process and a Slurm task all report).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  evaluateStudySettings, finishStudySetting, prepareStudySetting, releaseStudySetting, runStudySetting, type PreparedStudySetting, type StudyContext, type StudyResult,
} from '../neurons/study.js';
import { messageOf } from '../util/errors.js';
import { writeJsonAtomic } from '../util/files.js';
import { studySetting, type PlannedSetting } from './config.js';
import { settingFolder } from './report.js';

/** The outcome of one setting. */
export type SettingOutcome = { index: number; ok: true; line: string; seconds: number } | { index: number; ok: false; line: string; message: string };

function resultLine(r: StudyResult): string {
  const bi = Math.max(0, r.blocks.findIndex((b) => b.status === 'ran'));
  const b = r.blocks[bi];
  const skipped = r.blocks.filter((x) => x.status === 'skipped').length;
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  return (
    `worst-group ${f(b.worst_group_accuracy.unmodified)} -> ${f(b.worst_group_accuracy.mean)}${r.blocks.length > 1 ? ` (block ${bi} of ${r.blocks.length})` : ''}` +
    `${skipped ? `; ${skipped} block${skipped > 1 ? 's' : ''} skipped (result.json says why)` : ''} (${r.seconds.toFixed(1)} s)`
  );
}

/**
 * Runs one planned setting on a prepared base and writes its folder; a failure is written to
 * error.json and returned, not thrown.
 */
export async function runPlannedSetting(ctx: StudyContext, out: string, p: PlannedSetting): Promise<SettingOutcome> {
  const folder = settingFolder(out, p.key);
  rmSync(join(folder, 'error.json'), { force: true });
  try {
    const r = await runStudySetting(ctx, { ...studySetting(p.setting), out: folder, quiet: true }, () => undefined);
    return { index: p.index, ok: true, line: `#${p.index} ${p.key}: ${resultLine(r)}`, seconds: r.seconds };
  } catch (e) {
    const message = messageOf(e);
    writeJsonAtomic(join(folder, 'error.json'), { index: p.index, key: p.key, message, time: new Date().toISOString() });
    return { index: p.index, ok: false, line: `#${p.index} ${p.key}: FAILED: ${message}`, message };
  }
}

/**
 * Runs planned settings on a prepared base together: each is prepared (validated, ranked, its repeats'
 * edits drawn and saved), then all are evaluated in one pass over each split (the unchanged prefix of the
 * network once per batch, each repeat of each setting from the first block it touches), then each writes
 * its folder. A setting that fails to prepare or to write is written to error.json and reported, not
 * thrown; a failed pass fails every setting in it. `onOutcome` is called for each setting in the
 * planned order, after the pass.
 */
export async function runPlannedSettings(ctx: StudyContext, out: string, planned: PlannedSetting[], onOutcome: (o: SettingOutcome) => void): Promise<SettingOutcome[]> {
  const failure = (p: PlannedSetting, e: unknown): SettingOutcome => {
    const message = messageOf(e);
    writeJsonAtomic(join(settingFolder(out, p.key), 'error.json'), { index: p.index, key: p.key, message, time: new Date().toISOString() });
    return { index: p.index, ok: false, line: `#${p.index} ${p.key}: FAILED: ${message}`, message };
  };
  // prepared settings, or the outcome of one that failed to prepare
  const steps: (PreparedStudySetting | SettingOutcome)[] = [];
  for (const p of planned) {
    const folder = settingFolder(out, p.key);
    rmSync(join(folder, 'error.json'), { force: true });
    try {
      steps.push(await prepareStudySetting(ctx, { ...studySetting(p.setting), out: folder, quiet: true }, () => undefined));
    } catch (e) {
      steps.push(failure(p, e));
    }
  }
  const ready = steps.filter((x): x is PreparedStudySetting => 'state' in x);
  let passError: unknown;
  try {
    await evaluateStudySettings(ctx, ready);
  } catch (e) {
    passError = e;
    for (const r of ready) releaseStudySetting(r);
  }
  // outcomes in the planned order
  const outcomes: SettingOutcome[] = [];
  for (const [i, p] of planned.entries()) {
    const step = steps[i];
    let o: SettingOutcome;
    if (!('state' in step)) o = step;
    else if (passError !== undefined) o = failure(p, passError);
    else {
      try {
        const r = await finishStudySetting(step);
        o = { index: p.index, ok: true, line: `#${p.index} ${p.key}: ${resultLine(r)}`, seconds: r.seconds };
      } catch (e) {
        o = failure(p, e);
      }
    }
    outcomes.push(o);
    onOutcome(o);
  }
  return outcomes;
}
