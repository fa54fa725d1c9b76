/**
 * `spurmem inspect <file> [--json]`: what a checkpoint holds, read safely.
 */
import { Command } from 'commander';
import { inspectCheckpoint, readCheckpoint } from '../checkpoint.js';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('list every tensor (key path, dtype, shape) and value in a .pth checkpoint, without running anything in it')
    .argument('<file>', 'a .pth / .pth.tar file written by torch.save (zip or legacy layout)')
    .option('--json', 'print one JSON object: {format, entries: [{key, path, dtype, shape} | {key, path, value}], tensors, elements} (path: the key path as an array, since state-dict keys hold dots)')
    .action(async (file: string, opts: { json?: boolean }) => {
      const ck = await readCheckpoint(file);
      const r = inspectCheckpoint(ck);
      if (opts.json) {
        process.stdout.write(JSON.stringify(r) + '\n');
        return;
      }
      const lines: string[] = [`${file}: ${r.format} format`];
      for (const e of r.entries) {
        const key = e.key === '' ? '(the whole file)' : e.key;
        if (e.shape) lines.push(`  ${key}  ${e.dtype}  [${e.shape.join(', ')}]`);
        else lines.push(`  ${key}: ${typeof e.value === 'string' && /^<\d+ bytes/.test(e.value) ? e.value : JSON.stringify(e.value)}`);
      }
      lines.push(`${r.tensors} tensor${r.tensors === 1 ? '' : 's'}, ${r.elements.toLocaleString('en-US')} element${r.elements === 1 ? '' : 's'}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
