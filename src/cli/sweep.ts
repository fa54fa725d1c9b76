/**
 * `spurmem sweep CONFIG` and `spurmem sweep collect DIR`: grids of study settings on one base.
 */
import { Command } from 'commander';
import type { SweepSummary, TrainingSweepSummary } from '../sweep/index.js';
import { UsageError } from '../util/errors.js';
import { addOptions } from '../options/derive.js';
import type { EpochSelection, SweepSelection } from '../options/enums.js';
import { SWEEP_KEYS, SWEEP_TABLE_KEYS } from '../options/table.js';
import { SETTING_KEYS, SWEEP_BASE_VALUES, trainingSweepKeys } from '../options/sweep-keys.js';
import { toSnake } from '../util/case.js';

/** The base keys and grid keys the example configuration of --help shows. */
const BASE_SHOWN = ['run', 'epoch', 'checkpoint', 'dataset', 'root', 'rewind_checkpoint'];
const GRID_SHOWN = ['ranking', 'mode', 'top_k', 'std', 'repeats'];

/** The keys besides `shown`, in the table's order, as comment lines of at most 100 characters. */
function keyLines(shown: readonly string[], keys: readonly string[], first: string, next: string): string {
  const items = keys.filter((k) => !shown.includes(k)).map((k, i, all) => (i < all.length - 1 ? `${k},` : k));
  const lines: string[] = [];
  let line = first + items[0];
  for (const item of items.slice(1)) {
    if (line.length + 1 + item.length > 100) {
      lines.push(line);
      line = next + item;
    } else line += ' ' + item;
  }
  return [...lines, line].join('\n');
}

const HELP = `
Configuration (.json or .yaml; relative paths are relative to the file):
  base:                      # what every setting studies
    run: experiments/resnet50_waterbirds_erm   # a spurmem train folder (last epoch unless epoch: E)
    # or: checkpoint: FILE, dataset: waterbirds|celeba|folder, root: DIR [, rewind_checkpoint: FILE]
${keyLines(BASE_SHOWN, Object.keys(SWEEP_BASE_VALUES), '    # also: ', '    #       ')}
  grid:                      # lists (or single values), crossed; first key outermost
    ranking: [largest]
    mode: [random_init, random_noise]
    top_k: [1, 2, 3]
    std: [0.02, 0.1]
${keyLines(GRID_SHOWN, SETTING_KEYS, '    repeats: 10              # also: ', '                             # ')}
  exclude:                   # grid settings matching an entry are dropped
    - {mode: random_noise, std: 0.1}
  include:                   # extra settings; missing keys take the grid's lists
    - {mode: zero, top_k: [1, 2, 3, 4, 5]}
  out: sweeps/largest        # default: next to the file, named after it
  minority_groups: [1, 2]    # default: within each class, the group with fewer training samples

Each setting keeps only the keys that apply to it (std, repeats, distribution: random modes;
rewind_epochs: rewind modes; top_k: not threshold; fraction, smallest, dropout_p: threshold;
poorest_limit, activated_loss: activated; seed: where something is random), and duplicates are dropped, so the list
is exactly the distinct experiments (--list prints it).

Outputs in OUT: settings/<setting>/ (result.json, result.csv, the original's .txt, plots) per setting;
sweep.csv and sweep.json (one row per setting x group: accuracy_unmodified, accuracy_mean,
accuracy_std over the repeats, change = unmodified - mean; plus worst_group, average, mean,
minority and majority rows); plots/change_<ranking>_<split>_<mode>.svg|png (minority and majority
change against top-k). Minority groups: within each class y the group with fewer training samples
(Waterbirds: 1 landbird on water and 2 waterbird on land; CelebA: 1 and 3); minority accuracy =
correct / count over all minority-group samples.

A sweep started again skips the settings whose result.json is there and runs failed ones again.
Backends: in one process (default; the base is loaded once); --workers N or --devices cuda:0,cuda:1
(one process per worker, a shared queue); --slurm (a job array, task i = --index i; then
spurmem sweep collect OUT).

Sweeps of training runs (command: train or finetune-prune; the default command is study):
  command: train
  base: {dataset: waterbirds, root: data/waterbird_complete95_forest2water2, epochs: 40}
  grid: {seed: [0, 1, 2], lr: [1.0e-3, 1.0e-4], weight_decay: [1.0e-4, 1.0e-2]}
  # base and grid take every option of the command, snake_case:
${keyLines([], trainingSweepKeys('train').map(toSnake), '  #   train: ', '  #     ')}
${keyLines([], trainingSweepKeys('finetune-prune').map(toSnake), '  #   finetune-prune: ', '  #     ')}
  # a finetune-prune sweep may start from a train sweep: base: {sweep: DIR, select: best} = each
  # seed's run of its selected setting, at that run's selected epoch (grid seeds default to its seeds)
  group_by: [dataset, arch]  # one table row per value (default: command, dataset, arch)
  select: val_wga            # per row: val_wga (default) | val_avg | oracle (test; labelled)
  epoch_select: val_wga      # per run: val_wga (default) | val_avg | last
One run folder per setting (OUT/settings/<setting>/run/, what spurmem train writes), always resumed:
a run stopped by SIGTERM (Slurm pre-emption, time limit with --signal, scontrol requeue) continues after
its last complete epoch; for Slurm: --sbatch-args "--requeue --signal=B:TERM@120". Outputs: sweep.csv,
sweep.json (one row per run), table.md, table.csv, table.tex (one row per setting group: test
worst-group, average, mean and overall accuracy, mean +- std over seeds (ddof 1), standard error, seeds;
the selected hyperparameters named); spurmem sweep table OUT redraws them. collect says which runs are
finished, running, requeued, failed or missing.`;

/** The sweep modules, loaded when a sweep command runs (not for every command's start). */
const sweeps = () => import('../sweep/index.js');

async function report(s: SweepSummary | TrainingSweepSummary, json: boolean | undefined): Promise<void> {
  const { sweepTable, trainingSweepText } = await sweeps();
  if ('command' in s) {
    process.stdout.write(json ? JSON.stringify(s) + '\n' : trainingSweepText(s));
    if (s.failed.length || s.missing.length || s.running.length || s.requeued.length) process.exitCode = 1;
    return;
  }
  process.stdout.write(json ? JSON.stringify(s) + '\n' : sweepTable(s));
  for (const st of s.settings) {
    if (st.status === 'failed') process.stderr.write(`failed: #${st.index} ${st.key}: ${st.message}\n`);
    if (st.status === 'missing' && st.message) process.stderr.write(`missing: #${st.index} ${st.key}: ${st.message}\n`);
  }
  if (s.missing.length) process.stderr.write(`missing: ${s.missing.join(', ')} (no result yet)\n`);
  if (s.failed.length || s.missing.length) process.exitCode = 1;
}

export function sweepCommand(): Command {
  const cmd = new Command('sweep')
    .description('run a grid of study settings on one trained model: in one process, on worker processes or devices, or as a Slurm job array')
    .argument('<config>', 'sweep configuration (.json, .yaml or .yml)');
  addOptions(cmd, 'sweep', SWEEP_KEYS)
    .option('--list', 'print the expanded settings and exit')
    .option('--json', 'print sweep.json instead of the table')
    .addHelpText('after', HELP)
    .action(async (config: string, o: Record<string, unknown>) => {
      if (o.sbatchArgs !== undefined && !o.slurm) throw new UsageError('--sbatch-args goes with --slurm');
      const { loadSweepConfigFile, planSweep, planTrainingSweep, readTrainingConfigFile, runSweepIndex, settingLabel, sweep, trainingSettingLabel } = await sweeps();
      if (o.list) {
        const training = readTrainingConfigFile(config);
        if (training) {
          const plan = await planTrainingSweep(training.config, training.file);
          if (o.json) process.stdout.write(JSON.stringify(plan) + '\n');
          else {
            for (const p of plan.settings) process.stdout.write(`${String(p.index).padStart(4)}  ${trainingSettingLabel(p.setting)}\n`);
            process.stdout.write(`${plan.settings.length} ${plan.command} runs\n`);
          }
          return;
        }
        const loaded = loadSweepConfigFile(config);
        const plan = planSweep(loaded);
        if (o.json) process.stdout.write(JSON.stringify(plan) + '\n');
        else {
          for (const p of plan.settings) process.stdout.write(`${String(p.index).padStart(4)}  ${settingLabel(p.setting)}\n`);
          process.stdout.write(`${plan.settings.length} settings on ${plan.checkpoint}\n`);
        }
        return;
      }
      const opts = {
        out: o.out as string | undefined,
        device: o.device as string | undefined,
        threads: o.threads as number | undefined,
        force: o.force === true,
      };
      if (o.index !== undefined) {
        if (o.workers !== undefined || o.devices || o.slurm) throw new UsageError('--index runs one setting here; it does not take --workers, --devices or --slurm');
        const r = await runSweepIndex(config, o.index as number, opts);
        if (r && !r.ok) process.exitCode = 1;
        return;
      }
      const s = await sweep(config, {
        ...opts,
        workers: o.workers as number | undefined,
        devices: o.devices as string[] | undefined,
        slurm: o.slurm === true,
        sbatchArgs: o.sbatchArgs as string | undefined,
      });
      if (s.slurm) {
        process.stdout.write(o.json ? JSON.stringify(s.slurm) + '\n' : `submitted Slurm job ${s.slurm.job_id}: array ${s.slurm.array} (${s.slurm.indices.length} task${s.slurm.indices.length === 1 ? '' : 's'}), script ${s.slurm.script}\nwhen it has finished: spurmem sweep collect ${s.out}\n`);
        return;
      }
      await report(s, o.json as boolean | undefined);
    });
  cmd
    .command('collect')
    .description('merge the result folders of a sweep (after a Slurm array) into sweep.csv, sweep.json and plots; report missing and failed settings')
    .argument('<dir>', 'the sweep output folder')
    .option('--json', 'print sweep.json instead of the table')
    .action(async (dir: string, o: { json?: boolean }, c: Command) => {
      // `sweep collect DIR --json`: the parent command, which has --json too, may have taken the flag
      const json = o.json ?? (c.parent?.opts().json as boolean | undefined);
      const { collectSweep, collectTrainingSweep, isTrainingSweep } = await sweeps();
      await report(isTrainingSweep(dir) ? await collectTrainingSweep(dir) : await collectSweep(dir), json);
    });
  addOptions(
    cmd
      .command('table')
      .description("redraw a training sweep's tables (table.md, table.csv, table.tex, sweep.csv, sweep.json) with other groups or another selection")
      .argument('<dir>', 'the sweep output folder'),
    'sweepTable',
    SWEEP_TABLE_KEYS,
  )
    .option('--json', 'print sweep.json instead of the table')
    .action(async (dir: string, o: { groupBy?: string[]; select?: SweepSelection; epochSelect?: EpochSelection; json?: boolean }, c: Command) => {
      const { collectTrainingSweep, isTrainingSweep } = await sweeps();
      if (!isTrainingSweep(dir)) throw new UsageError(`${dir}: not the folder of a train or finetune-prune sweep (spurmem sweep table draws their tables)`);
      const json = o.json ?? (c.parent?.opts().json as boolean | undefined);
      await report(await collectTrainingSweep(dir, { groupBy: o.groupBy, select: o.select, epochSelect: o.epochSelect }), json);
    });
  return cmd;
}
