/**
 * The `spurmem` command line: one sub-command per module in src/cli/.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native.js';
import { SpurmemError, messageOf } from '../util/errors.js';
import { removeOwnTempFiles } from '../util/files.js';
import { finetunePruneCommand } from './finetune-prune.js';
import { inspectCommand } from './inspect.js';
import { dataCommand } from './data.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { studyCommand } from './study.js';
import { sweepCommand } from './sweep.js';
import { trainCommand } from './train.js';
import { jttCommand } from './jtt.js';
import { dfrCommand } from './dfr.js';

export function buildProgram(): Command {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const program = new Command('spurmem')
    .description(
      'Spurious memorization studies on PyTorch checkpoints: ERM training, critical-neuron studies and ' +
        'finetuning with a pruned sub-network (arXiv 2501.00961), the baselines GroupDRO, reweighting, subsampling, JTT and DFR, with a libtorch addon.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  program.addCommand(demoCommand());
  program.addCommand(inspectCommand());
  program.addCommand(dataCommand());
  program.addCommand(evalCommand());
  program.addCommand(trainCommand());
  program.addCommand(studyCommand());
  program.addCommand(finetunePruneCommand());
  program.addCommand(jttCommand());
  program.addCommand(dfrCommand());
  program.addCommand(sweepCommand());
  // usage errors of sub-commands (a bad choice, a missing option) come back here too: exit status 2
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  program.commands.forEach(override);
  return program;
}

/**
 * For the `spurmem` process itself: on SIGINT or SIGTERM, removes the checkpoint files being written
 * (nothing half-written stays), says what is kept and exits with 130 or 143.
 */
export function handleInterrupts(): void {
  // an interrupted run keeps its finished epochs; what it was writing is removed, not left half-written
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      removeOwnTempFiles();
      process.stderr.write(`\nspurmem: interrupted (${signal}); what finished is kept (train and finetune-prune continue with --resume; a sweep run again skips finished settings)\n`);
      process.exit(code);
    });
  }
}

/** Runs the CLI; errors become one line on stderr and exit status 1 (2 for usage errors). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
        process.exitCode = 0;
        return;
      }
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`spurmem: ${messageOf(e)}\n`);
    process.exitCode = e instanceof SpurmemError ? e.exitCode : 1;
  }
}
