/**
 * A sweep worker process (forked by src/sweep/worker-pool.ts): loads the base once, then runs the settings
 * the parent sends, one at a time, and answers each with its outcome.
 */
import { prepareStudy, type StudyContext } from '../neurons/study.js';
import { messageOf } from '../util/errors.js';
import { runPlannedSetting } from './run-setting.js';
import type { FromWorker, ToWorker } from './worker-pool.js';

let ctx: StudyContext | null = null;
let out = '';
const send = (m: FromWorker) => new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));

process.on('message', (m: ToWorker) => {
  void (async () => {
    if (m.type === 'init') {
      try {
        ctx = await prepareStudy(m.base);
        out = m.out;
        await send({ type: 'ready' });
      } catch (e) {
        process.exitCode = 1;
        await send({ type: 'fatal', message: messageOf(e) });
        process.disconnect();
      }
    } else if (m.type === 'run') {
      await send({ type: 'done', outcome: await runPlannedSetting(ctx!, out, m.setting) });
    } else {
      process.disconnect();
      process.exit(0);
    }
  })();
});
process.on('disconnect', () => process.exit(process.exitCode ?? 0));
