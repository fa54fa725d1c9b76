/**
 * `spurmem inspect <file> [--json]`: what a checkpoint holds, read safely.
 */
import { Command } from 'commander';
import { inspectCheckpoint, readCheckpoint } from '../checkpoint.js';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list every tensor (key path, dtype, shape) and value in a .pth checkpoint, without running anything in it')
    .argument('<file>', 'a .pth / .pth.tar file written by torch.save (zip or legacy layout)')
    .option('--json', 'print one JSON object: {format, entries: [{key, dtype, shape} | {key, value}], tensors, elements}')
    .action(async (file: string, opts: { json?: boolean }) => {
      const ck = await readCheckpoint(file);
      const r = inspectCheckpoint(ck);
      if (opts.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const lines: string[] = [`${file}: ${r.format} format`];
      for (const e of r.entries) {
        if (e.shape) lines.push(`  ${e.key}  ${e.dtype}  [${e.shape.join(', ')}]`);
        else lines.push(`  ${e.key}: ${JSON.stringify(e.value)}`);
      }
      lines.push(`${r.tensors} tensors, ${r.elements.toLocaleString('en-US')} elements`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
