/**
 * `spurmem demo`: the whole study on the built-in Fashion-Waterbirds dataset, on a CPU, in minutes.
 *
 * 1. build Fashion-Waterbirds from Debian's Fashion-MNIST (unless it is there);
 * 2. ERM training of a torchvision ResNet at a small resolution;
 * 3. the critical-neuron study on the ERM model, on the training split: a sweep (one process, the split
 *    decoded once) of largest and activated x zero and random_init (std 0.15, the original's value;
 *    10 repeats) x top-k in {1, 2, 3, 5, 10} (`--quick`: top-k in {1, 3}, 3 repeats);
 * 4. finetune-prune from the ERM model;
 * 5. the baselines of Part II: GroupDRO (trained like ERM, with `--algorithm groupdro`) and DFR (the
 *    ERM model's last layer retrained on group-balanced validation subsets);
 * 6. report.md / report.html / report.json in the demo folder.
 * Every step calls the same functions as the standalone commands with options the demo chooses, keeps
 * its own folder, and the report lists the equivalent commands. Running the demo again resumes (the
 * steps already done are read back, not redone).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { packageRoot } from '../native.js';
import { makeDemoDataset } from '../data/index.js';
import type { StudyResult } from '../neurons/study.js';
import { settingLabel, sweep, type Setting, type SweepConfigInput, type SweepSummary } from '../sweep/index.js';
import { writeJsonAtomic } from '../util/files.js';
import { writeDemoReport, type DemoReport } from './report.js';
import { train } from '../train/erm.js';
import { finetunePrune, type FinetuneSummary } from '../train/finetune-prune.js';
import { dfr } from '../train/dfr.js';
import { RunDir } from '../train/run-dir.js';
import type { GroupMetrics } from '../metrics/groups.js';
import type { TrainInput } from '../train/options.js';
import type { FinetuneInput } from '../train/finetune-prune.js';
import { z } from 'zod';
import { schemaFields } from '../options/derive.js';
import type { DemoArch } from '../options/enums.js';
import { DEMO_KEYS } from '../options/table.js';

/**
 * The options of {@link demo} with their defaults (those of `spurmem demo`), derived from the option
 * table; demo() takes its defaults from it.
 */
export const demoSchema = z.object(schemaFields('demo', DEMO_KEYS));
const DEMO_DEFAULTS = demoSchema.parse({});

export interface DemoOptions {
  /** Demo folder (default experiments/demo). */
  out?: string;
  /** A smaller dataset and fewer epochs and repeats: a smoke test whose report says its numbers are not to be read. */
  quick?: boolean;
  /** Architecture (default resnet18). */
  arch?: DemoArch;
  /** cpu, cuda or cuda:N (default cpu). */
  device?: string;
  /** Seed of the data, the initialisation, shuffling and the studies (default 0). */
  seed?: number;
  /** CPU threads for libtorch (default: all cores). */
  threads?: number;
  log?: (line: string) => void;
}

/** The sizes the demo runs at; `quick` for tests. */
export function demoPlan(quick: boolean) {
  return quick
    ? { scale: 0.05, size: 32, resolution: 32, epochs: 4, batchSize: 32, repeats: 3, finetuneEpochs: 1, topK: [1, 3], std: 0.15, evalBatchSize: 512 }
    : { scale: 0.1, size: 32, resolution: 32, epochs: 8, batchSize: 32, repeats: 10, finetuneEpochs: 3, topK: [1, 2, 3, 5, 10], std: 0.15, evalBatchSize: 512 };
}

/** The rankings and modes of the demo's study sweep (the panels of its figure), in their order. */
export const DEMO_RANKINGS = ['largest', 'activated'] as const;
export const DEMO_MODES = ['zero', 'random_init'] as const;

/**
 * The demo's study sweep: largest and activated x zero and random_init x top-k on the training split of
 * the ERM run `ermDir` (snake_case keys, as a sweep file; `out` the sweep folder).
 */
export function demoSweepConfig(o: { ermDir: string; out: string; plan: ReturnType<typeof demoPlan>; seed: number; device: string; threads?: number }): SweepConfigInput {
  return {
    base: { run: o.ermDir, device: o.device, ...(o.threads !== undefined ? { threads: o.threads } : {}), batch_size: o.plan.evalBatchSize },
    grid: {
      split: 'train',
      ranking: [...DEMO_RANKINGS],
      mode: [...DEMO_MODES],
      top_k: o.plan.topK,
      std: o.plan.std,
      repeats: o.plan.repeats,
      seed: o.seed,
    },
    out: o.out,
  };
}

/** A setting's title in the report: `largest, random_init std 0.15 (10 repeats), top-3`. */
export function settingTitle(s: Setting): string {
  const random = s.mode === 'random_init' || s.mode === 'random_noise';
  return `${s.ranking}, ${s.mode}${random ? ` std ${s.std} (${s.repeats} repeats)` : ''}, top-${s.top_k}`;
}

/**
 * How to run this spurmem from a shell: `spurmem` when the `spurmem` on PATH is this package's launcher
 * (after `npm link`, `npm install -g`), else `node <this package>/bin/spurmem.js`, which runs from any
 * folder.
 */
export function cliPrefix(env: NodeJS.ProcessEnv = process.env): string[] {
  const launcher = join(packageRoot(), 'bin', 'spurmem.js');
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const target = real(launcher);
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const found = real(join(dir, 'spurmem'));
    if (found !== undefined) return found === target ? ['spurmem'] : ['node', launcher];
  }
  return ['node', launcher];
}

/** Shell words of a command line, quoted where needed. */
function commandLine(words: (string | number)[]): string {
  return words.map((w) => (/^[\w./:=,-]+$/.test(String(w)) ? String(w) : `'${String(w).replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs the demo and writes its report; returns the report's content. */
export async function demo(o: DemoOptions = {}): Promise<DemoReport> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = Date.now();
  const out = resolve(o.out ?? DEMO_DEFAULTS.out);
  const plan = demoPlan(Boolean(o.quick ?? DEMO_DEFAULTS.quick));
  const arch = o.arch ?? DEMO_DEFAULTS.arch;
  const seed = o.seed ?? DEMO_DEFAULTS.seed;
  const device = o.device ?? DEMO_DEFAULTS.device;
  const dataDir = join(out, 'data');
  const ermDir = join(out, 'erm');
  const ftDir = join(out, 'finetune-prune');
  const commands: { step: string; command: string }[] = [];
  const timings: Record<string, number> = {};
  const cli = cliPrefix();

  // 1. data
  let t = Date.now();
  const dataArgs = [...cli, 'data', 'make-demo', '--out', dataDir, '--scale', plan.scale, '--size', plan.size, '--seed', seed];
  commands.push({ step: 'data', command: commandLine(dataArgs) });
  if (!existsSync(join(dataDir, 'metadata.csv'))) {
    log(`1/6 data: building Fashion-Waterbirds in ${dataDir}`);
    await makeDemoDataset({ out: dataDir, scale: plan.scale, width: plan.size, height: plan.size, seed });
  } else {
    log(`1/6 data: using ${dataDir}`);
  }
  timings.data = (Date.now() - t) / 1000;

  // 2. ERM. The demo chooses what lets a few CPU minutes reach the memorisation regime: the clean head
  // (logits and cross-entropy, output c = class c; the original's softmax head saturates on confidently
  // misclassified samples), Adam 1e-3 with a cosine schedule, small batches and no augmentation.
  t = Date.now();
  const trainIn: TrainInput = {
    dataset: 'folder',
    root: dataDir,
    arch,
    resolution: plan.resolution,
    epochs: plan.epochs,
    optimizer: 'adam',
    lr: 1e-3,
    scheduler: 'cosine',
    augment: false,
    head: 'linear',
    labelOrder: 'natural',
    batchSize: plan.batchSize,
    evalBatchSize: plan.evalBatchSize,
    seed,
    device,
    threads: o.threads,
    out: ermDir,
    evalInitial: false,
    keepCheckpoints: 1,
    resume: existsSync(join(ermDir, 'config.json')),
  };
  const ermCommand = [
    ...cli, 'train', '--dataset', 'folder', '--root', dataDir, '--arch', arch, '--resolution', plan.resolution, '--epochs', plan.epochs,
    '--optimizer', 'adam', '--lr', '1e-3', '--scheduler', 'cosine', '--no-augment', '--head', 'linear', '--label-order', 'natural',
    '--batch-size', plan.batchSize, '--eval-batch-size', plan.evalBatchSize, '--seed', seed, '--device', device, '--no-eval-initial', '--keep-checkpoints', 1,
  ];
  commands.push({ step: 'erm', command: commandLine([...ermCommand, '--out', ermDir]) });
  log(`2/6 ERM: ${arch} at ${plan.resolution} px, ${plan.epochs} epochs -> ${ermDir}`);
  await train(trainIn, { log: (l) => log(`  ${l}`) });
  timings.erm = (Date.now() - t) / 1000;

  // 3. the study sweep on the final ERM epoch, training split (where memorisation lives; the original's
  // default); the settings are fixed before the run (the original's std, the paper's top-k range)
  t = Date.now();
  const sweepDir = join(out, 'study');
  const sweepFile = join(out, 'study-sweep.json');
  const cfg = demoSweepConfig({ ermDir, out: sweepDir, plan, seed, device, threads: o.threads });
  writeJsonAtomic(sweepFile, cfg);
  commands.push({ step: 'critical neurons (a sweep)', command: commandLine([...cli, 'sweep', sweepFile]) });
  log(`3/6 critical neurons (training split): ${DEMO_RANKINGS.join(', ')} x ${DEMO_MODES.join(', ')} x top-k ${plan.topK.join(', ')} -> ${sweepDir}`);
  // the file written above is a study sweep's, so its summary is a SweepSummary
  const summary = (await sweep(sweepFile, { log: (l) => log(`  ${l}`) })) as SweepSummary;
  const studies: { title: string; setting: Setting; result: StudyResult }[] = [];
  for (const st of summary.settings) {
    if (st.status !== 'finished') {
      log(`  ${settingLabel(st.setting)}: ${st.status}${st.message ? `: ${st.message}` : ''}`);
      continue;
    }
    const result = JSON.parse(readFileSync(join(st.folder, 'result.json'), 'utf8')) as StudyResult;
    studies.push({ title: settingTitle(st.setting), setting: st.setting, result });
  }
  timings.study = (Date.now() - t) / 1000;

  // 4. finetune-prune from the final ERM epoch
  t = Date.now();
  const ftIn: FinetuneInput = {
    run: ermDir,
    epochs: plan.finetuneEpochs,
    evalBatchSize: plan.evalBatchSize,
    augment: false,
    seed,
    device,
    threads: o.threads,
    keepCheckpoints: 1,
    out: ftDir,
    resume: existsSync(join(ftDir, 'config.json')),
  };
  commands.push({
    step: 'finetune-prune',
    command: commandLine([...cli, 'finetune-prune', '--run', ermDir, '--epochs', plan.finetuneEpochs, '--no-augment', '--keep-checkpoints', 1, '--eval-batch-size', plan.evalBatchSize, '--seed', seed, '--device', device, '--out', ftDir]),
  });
  log(`4/6 finetune-prune: ${plan.finetuneEpochs} epoch(s) -> ${ftDir}`);
  const ft: FinetuneSummary = await finetunePrune(ftIn, { log: (l) => log(`  ${l}`) });
  timings.finetune = (Date.now() - t) / 1000;

  // 5. GroupDRO: the ERM run's options with the group-DRO objective (group_DRO's default step size)
  t = Date.now();
  const droDir = join(out, 'groupdro');
  commands.push({ step: 'GroupDRO', command: commandLine([...ermCommand, '--algorithm', 'groupdro', '--out', droDir]) });
  log(`5/6 GroupDRO: ${arch} at ${plan.resolution} px, ${plan.epochs} epochs -> ${droDir}`);
  await train({ ...trainIn, algorithm: 'groupdro', out: droDir, resume: existsSync(join(droDir, 'config.json')) }, { log: (l) => log(`  ${l}`) });
  timings.groupdro = (Date.now() - t) / 1000;

  // 6. DFR on the ERM model of the last epoch (the one studied and finetuned)
  t = Date.now();
  const dfrDir = join(out, 'dfr');
  commands.push({ step: 'DFR', command: commandLine([...cli, 'dfr', '--run', ermDir, '--batch-size', plan.evalBatchSize, '--seed', seed, '--device', device, '--out', dfrDir]) });
  log(`6/6 DFR: the ERM model's last layer retrained on group-balanced validation subsets -> ${dfrDir}`);
  // dfr.json is written last: a DFR folder that has it is done and read back; one without it is redone
  const dfrTest: GroupMetrics = existsSync(join(dfrDir, 'dfr.json'))
    ? new RunDir(dfrDir).records().find((r) => r.epoch === 0)!.test
    : (await dfr({ run: ermDir, seed, device, batchSize: plan.evalBatchSize, threads: o.threads, out: dfrDir, force: existsSync(join(dfrDir, 'config.json')), quiet: true }, { log: (l) => log(`  ${l}`) })).dfr.test;
  timings.dfr = (Date.now() - t) / 1000;

  timings.total = (Date.now() - t0) / 1000;
  return writeDemoReport({ out, quick: Boolean(o.quick ?? DEMO_DEFAULTS.quick), arch, plan, ermDir, sweepDir, studies, ft, ftDir, droDir, dfrTest, dfrDir, dataDir, commands, timings, groupNames: summary.group_names, trainCounts: summary.train_group_counts, failedSettings: summary.failed.length + summary.missing.length });
}
