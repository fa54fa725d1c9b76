import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { train } from '../src/train/erm.js';
import { smallDemo } from './helpers/demo-data.js';
import { pythonCode, repoDir } from './helpers/python.js';

const cli = join(repoDir, 'bin', 'spurmem.js');

function baseArgs(root: string, out: string, epochs: number): string[] {
  return ['train', '--dataset', 'folder', '--root', root, '--arch', 'resnet18', '--resolution', '32', '--batch-size', '16',
    '--optimizer', 'adam', '--lr', '1e-3', '--epochs', String(epochs), '--threads', '1', '--out', out, '--no-eval-initial'];
}

/** PyTorch reads the checkpoint and torchvision's resnet18 takes its state dict strictly. */
function torchLoads(path: string): { epoch: number; loss: number } {
  return JSON.parse(pythonCode(`
import json, torch, torchvision
ck = torch.load(${JSON.stringify(path)}, map_location='cpu')
m = torchvision.models.resnet18(); m.fc = torch.nn.Sequential(torch.nn.Linear(512, 2), torch.nn.Softmax(dim=1))
m.load_state_dict(ck['model_state_dict'], strict=True)
print(json.dumps({'epoch': ck['epoch'], 'loss': ck['loss']}))
`)) as { epoch: number; loss: number };
}

describe('spurmem train end to end', () => {
  it('trains 2 epochs and writes every file of the run folder, readable by PyTorch', async () => {
    const root = await smallDemo();
    const out = join(mkdtempSync(join(tmpdir(), 'spurmem-train-')), 'run');
    const logs: string[] = [];
    const s = await train(
      { dataset: 'folder', root, arch: 'resnet18', resolution: 32, batchSize: 16, optimizer: 'adam', lr: 1e-3, epochs: 2, threads: 1, out },
      { log: (l) => logs.push(l) },
    );
    expect(s.final.epoch).toBe(1);
    const files = readdirSync(out);
    for (const f of [
      'config.json', 'metrics.jsonl', 'best.json', 'training_loss_list.json', 'epoch_0_checkpoints.pth.tar', 'epoch_1_checkpoints.pth.tar',
      'group_accuracy_evolution_in_training_set.txt', 'group_accuracy_evolution_in_validating_set.txt', 'group_accuracy_evolution_in_testing_set.txt',
      'group_accuracy_train.svg', 'group_accuracy_train.png', 'group_accuracy_val.svg', 'group_accuracy_test.png', 'loss.svg', 'loss.png',
    ]) expect(files, f).toContain(f);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.options).toMatchObject({ arch: 'resnet18', epochs: 2, lr: 1e-3, batchSize: 16, resolution: 32 });
    expect(cfg.versions.libtorch).toMatch(/^\d+\.\d+/);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([-1, 0, 1]);
    for (const l of lines) {
      for (const split of ['train', 'val', 'test']) {
        expect(l[split].groups).toHaveLength(4);
        for (const g of l[split].groups) if (g.accuracy !== null) expect(g.accuracy).toBeGreaterThanOrEqual(0);
        expect(l[split].worst_group_accuracy).toBeLessThanOrEqual(l[split].average_accuracy);
        // every split's metrics carry their intervals (the defaults: Wilson per group, 2000 bootstrap draws, 95%)
        expect(l[split].ci).toEqual({ method: 'wilson', level: 0.95, bootstrap: 2000 });
        for (const g of l[split].groups) expect(g.ci95 === null ? g.count : g.ci95.length).toBe(g.ci95 === null ? 0 : 2);
        for (const a of ['worst_group_accuracy', 'average_accuracy', 'mean_accuracy', 'overall_accuracy']) {
          expect(l[split][`${a}_ci95`][0]).toBeLessThanOrEqual(l[split][a]);
          expect(l[split][`${a}_ci95`][1]).toBeGreaterThanOrEqual(l[split][a]);
        }
      }
    }
    const txt = readFileSync(join(out, 'group_accuracy_evolution_in_testing_set.txt'), 'utf8').trim().split('\n');
    expect(txt).toHaveLength(5);
    expect(txt[0]).toMatch(/^group0, \d\.\d{4}, \d\.\d{4}$/);
    expect(txt[4]).toMatch(/^averag, /);
    const best = JSON.parse(readFileSync(join(out, 'best.json'), 'utf8'));
    expect([0, 1]).toContain(best.epoch);
    expect((await sharp(join(out, 'loss.png')).metadata()).format).toBe('png');
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toMatch(/^<svg/);
    const ck = torchLoads(join(out, 'epoch_1_checkpoints.pth.tar'));
    expect(ck.epoch).toBe(1);
    expect(ck.loss).toBeCloseTo(lines[2].loss, 10);
  });

  it('refuses an --out folder of another run, and resumes after SIGKILL in the middle of an epoch', async () => {
    const root = await smallDemo();
    const out = join(mkdtempSync(join(tmpdir(), 'spurmem-resume-')), 'run');
    const child = spawn(process.execPath, [cli, ...baseArgs(root, out, 3)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SPURMEM_PROGRESS: '0' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    // wait until epoch 0 is complete, then kill while epoch 1 trains
    const t0 = Date.now();
    while (!/epoch 0 loss/.test(stderr)) {
      if (Date.now() - t0 > 240_000) throw new Error(`epoch 0 did not finish: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGKILL');
    await exited;
    expect(existsSync(join(out, 'epoch_0_checkpoints.pth.tar'))).toBe(true);
    expect(existsSync(join(out, 'epoch_2_checkpoints.pth.tar'))).toBe(false);
    // another run's options are refused without --resume/--force
    const other = spawnSync(process.execPath, [cli, ...baseArgs(root, out, 3), '--seed', '7'], { encoding: 'utf8' });
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/already holds a run .*--resume .*--force .*seed/);
    const resumed = spawnSync(process.execPath, [cli, ...baseArgs(root, out, 3), '--resume'], { encoding: 'utf8', env: { ...process.env, SPURMEM_PROGRESS: '0' } });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* after epoch (0|1)/);
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([0, 1, 2]);
    expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
    for (const e of [0, 1, 2]) expect(torchLoads(join(out, `epoch_${e}_checkpoints.pth.tar`)).epoch).toBe(e);
    // --resume --out DIR alone continues with the options config.json records
    const more = spawnSync(process.execPath, [cli, 'train', '--resume', '--out', out, '--epochs', '4'], { encoding: 'utf8', env: { ...process.env, SPURMEM_PROGRESS: '0' } });
    expect(more.status, more.stderr).toBe(0);
    expect(more.stderr).toMatch(/resuming .* after epoch 2/);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).options).toMatchObject({ arch: 'resnet18', resolution: 32, batchSize: 16, epochs: 4 });
    // fewer epochs than done is refused
    const fewer = spawnSync(process.execPath, [cli, 'train', '--resume', '--out', out, '--epochs', '2'], { encoding: 'utf8' });
    expect(fewer.status).toBe(2);
    expect(fewer.stderr).toMatch(/the run has 4 epochs done \(0 to 3\); --epochs 2 is fewer/);
  });

  it('stops a diverging run with an error naming the epoch and the batch', async () => {
    const root = await smallDemo();
    const out = join(mkdtempSync(join(tmpdir(), 'spurmem-nan-')), 'run');
    await expect(
      train(
        { dataset: 'folder', root, arch: 'resnet18', head: 'linear', resolution: 32, batchSize: 16, optimizer: 'sgd', lr: 1e30, momentum: 0, epochs: 1, threads: 1, out, evalInitial: false },
        { log: () => {} },
      ),
    ).rejects.toThrow(/training diverged: loss (NaN|Infinity|-Infinity) at epoch 0 batch \d+ .*no checkpoint of this run was written/);
    expect(readdirSync(out).filter((f) => f.endsWith('.pth.tar'))).toEqual([]);
  });

  it('says clearly that this libtorch has no CUDA', () => {
    const r = spawnSync(process.execPath, [cli, 'train', '--dataset', 'folder', '--root', '/nonexistent', '--device', 'cuda:1'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/device 'cuda:1': this libtorch was built without CUDA/);
    const bad = spawnSync(process.execPath, [cli, 'train', '--dataset', 'folder', '--root', '/nonexistent', '--device', 'gpu'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--device expects cpu, cuda or cuda:N, got 'gpu'/);
  });
});
