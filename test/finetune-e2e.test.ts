import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finetunePrune } from '../src/train/finetune-prune.js';
import { train } from '../src/train/erm.js';
import { pythonCode } from './helpers/python.js';
import { smallDemo } from './helpers/demo-data.js';

describe('spurmem finetune-prune end to end', () => {
  it('AND-s magnitude and activated masks each epoch, writes the run folder and resumes', async () => {
    const root = await smallDemo();
    const dir = mkdtempSync(join(tmpdir(), 'spurmem-ft-'));
    const erm = join(dir, 'erm');
    await train({ dataset: 'folder', root, arch: 'resnet18', resolution: 32, epochs: 1, batchSize: 32, optimizer: 'adam', lr: 1e-3, threads: 2, out: erm, evalInitial: false }, { log: () => {} });
    const out = join(dir, 'ft');
    const opts = { run: erm, prune: ['magnitude-smallest', 'activated'] as ('magnitude-smallest' | 'activated')[], pruneTopK: 4, epochs: 1, batchSize: 32, threads: 2, out };
    const s = await finetunePrune(opts, { log: () => {} });
    expect(s.selected.epoch).toBe(0);
    for (const f of ['config.json', 'metrics.jsonl', 'best.json', 'epoch_0_checkpoints.pth.tar', 'pruned_layers_epoch0.json', 'training_loss_list.json', 'training_ntxent_loss_list.json', 'training_mse_loss_list.json', 'group_accuracy_evolution_in_testing_set.txt', 'group_accuracy_test.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const pruned = JSON.parse(readFileSync(join(out, 'pruned_layers_epoch0.json'), 'utf8')) as Record<string, number>;
    // the magnitude mask touches every conv layer; the 4 activated channels add whole channels on top
    expect(Object.keys(pruned)).toHaveLength(20);
    const total = Object.values(pruned).reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(0);
    const rec = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rec.map((r) => r.epoch)).toEqual([-1, 0]);
    expect(Object.keys(rec[1].losses)).toEqual(['ntxent', 'ce']);
    expect(rec[1].loss).toBeCloseTo(rec[1].losses.ntxent + 0.2 * rec[1].losses.ce, 3);
    // the dense weights are what the checkpoint holds, and PyTorch reads it
    const ok = pythonCode(`
import torch, torchvision
ck = torch.load(${JSON.stringify(join(out, 'epoch_0_checkpoints.pth.tar'))})
m = torchvision.models.resnet18(); m.fc = torch.nn.Sequential(torch.nn.Linear(512, 2), torch.nn.Softmax(dim=1))
m.load_state_dict(ck['model_state_dict'], strict=True); print('ok', isinstance(ck['loss'], float))
`);
    expect(ok.trim()).toBe('ok True');
    // a second epoch on --resume
    const r2 = await finetunePrune({ ...opts, epochs: 2, resume: true }, { log: () => {} });
    expect(r2.resumed_from).toBe(0);
    expect(existsSync(join(out, 'pruned_layers_epoch1.json'))).toBe(true);
  });
});
