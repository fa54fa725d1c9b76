/**
 * Checkpoint layouts of other code bases, evaluated as PyTorch evaluates them: a plain Linear head
 * (group_DRO, DFR, JTT, SubpopBench) read in natural label order unless something says otherwise, and
 * nn.DataParallel / DistributedDataParallel / torch.compile state dicts in the pytorch/examples layout
 * ({epoch, arch, state_dict, optimizer, best_acc1}) with `module.` / `_orig_mod.` before every key.
 * The right values come from PyTorch following the original's procedure (test/fixtures/original_eval.py).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { makeDemoDataset } from '../src/data/fashion-waterbirds.js';
import { openDataset, type Dataset } from '../src/data/index.js';
import { chooseLabelOrder, headInFile } from '../src/base.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { evaluateDetailed } from '../src/eval/evaluate.js';
import { createModel } from '../src/model/index.js';
import { loadPretrained } from '../src/weights.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/datasets.js';
import { originalEval, type OriginalEval } from './helpers/original-eval.js';
import { fixturesDir, pythonCode } from './helpers/python.js';

const R = 32;
let root: string;
let ds: Dataset;
let files: string;
const evalnet = (f: string) => join(fixturesDir, 'evalnet', f);
const made = (f: string) => join(files, f);

type Reference = OriginalEval;

const refs = new Map<string, Reference>();

/** PyTorch, following the original's procedure, on the uint8 images spurmem decoded (test split). */
async function reference(checkpoint: string, head: string, labelOrder: string): Promise<Reference> {
  const key = `${checkpoint} ${head} ${labelOrder}`;
  if (refs.has(key)) return refs.get(key)!;
  const r = await originalEval(ds, { checkpoint, head, labelOrder, resolution: R, batchSize: 16 });
  refs.set(key, r);
  return r;
}

function summary(r: Reference | { groups: { id: number; count: number; accuracy: number | null }[]; average_accuracy: number | null; worst_group_accuracy: number | null }) {
  return {
    groups: r.groups.map((g) => ({ id: g.id, count: g.count, accuracy: g.accuracy })),
    worst: r.worst_group_accuracy,
    average: Number(r.average_accuracy!.toFixed(12)),
  };
}

beforeAll(async () => {
  root = join(tempDir(), 'demo');
  await makeDemoDataset({ out: root, scale: 0.01, width: 40, height: 30, seed: 2 });
  ds = await openDataset({ dataset: 'folder', root });
  files = tempDir();
  // the plain-Linear network of the eval fixtures, saved the way other code bases save it; each file is
  // loaded back by PyTorch as that code would load it and must give the plain network's outputs
  pythonCode(String.raw`
import collections, os, torch, torchvision
out = ${JSON.stringify(files)}
plain = torch.load(${JSON.stringify(evalnet('plain_linear.pth'))})
m = torchvision.models.resnet18()
m.fc = torch.nn.Linear(512, 2)
m.load_state_dict(plain)
m.eval()
x = torch.randn(2, 3, 32, 32)
want = m(x)
dp = torch.nn.DataParallel(m)
assert all(k.startswith("module.") for k in dp.state_dict())
opt = torch.optim.SGD(dp.parameters(), lr=0.1, momentum=0.9)
# pytorch/examples' ImageNet script: save_checkpoint({epoch, arch, state_dict, best_acc1, optimizer, scheduler})
torch.save({"epoch": 4, "arch": "resnet18", "state_dict": dp.state_dict(), "best_acc1": torch.tensor(61.5),
            "optimizer": opt.state_dict()}, os.path.join(out, "examples.pth.tar"))
torch.save({"epoch": 4, "arch": "resnet50", "state_dict": dp.state_dict()}, os.path.join(out, "wrong_arch.pth.tar"))
torch.save({"epoch": 4, "arch": "resnet34", "state_dict": dp.state_dict()}, os.path.join(out, "unknown_arch.pth.tar"))
# torch.compile of a DataParallel model (torch >= 2.0 writes '_orig_mod.' before every key), under 'net'
torch.save({"net": collections.OrderedDict(("_orig_mod." + k, v) for k, v in dp.state_dict().items()), "acc": 0.5},
           os.path.join(out, "compiled.pth"), _use_new_zipfile_serialization=False)
# a plain-Linear network whose checkpoint records the original label order (a spurmem checkpoint's metadata)
torch.save({"model_state_dict": plain, "spurmem": {"label_order": "original"}}, os.path.join(out, "recorded.pth"))
for f in ("examples.pth.tar", "compiled.pth"):
    ck = torch.load(os.path.join(out, f))
    sd = ck.get("state_dict", ck.get("net"))
    m2 = torchvision.models.resnet18()
    m2.fc = torch.nn.Linear(512, 2)
    m2 = torch.nn.DataParallel(m2)
    m2.load_state_dict(collections.OrderedDict((k.replace("_orig_mod.", "", 1), v) for k, v in sd.items()))
    m2.eval()
    assert torch.equal(m2(x), want), f
`);
}, 120_000);

describe('a plain Linear head means natural label order', () => {
  const args = (file: string) => ['eval', '--checkpoint', file, '--dataset', 'folder', '--root', root, '--split', 'test', '--resolution', String(R), '--batch-size', '16', '--threads', '2'];

  it('a plain state dict with fc.weight, no --label-order: the natural order, as PyTorch computes it, and the summary says why', async () => {
    const natural = await reference(evalnet('plain_linear.pth'), 'linear', 'natural');
    const original = await reference(evalnet('plain_linear.pth'), 'linear', 'original');
    // the two orders give different numbers on this network: the test tells them apart
    expect(summary(natural)).not.toEqual(summary(original));
    const j = await runCli([...args(evalnet('plain_linear.pth')), '--json']);
    expect(j.code).toBe(0);
    expect(summary(JSON.parse(j.stdout))).toEqual(summary(natural));
    const t = await runCli(args(evalnet('plain_linear.pth')));
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(
      /^test split: \d+ images, resnet18 \(linear head\) from .*plain_linear\.pth, natural label order \(assumed: nothing records one, and a plain Linear head means output c = class c; --label-order sets it\), R = 32/m,
    );
  });

  it("the original's Linear + Softmax head, no --label-order: the original order, and the summary says why", async () => {
    const want = await reference(evalnet('epoch_3_checkpoints.pth.tar'), 'softmax', 'original');
    const r = await evaluateDetailed({ checkpoint: evalnet('epoch_3_checkpoints.pth.tar'), dataset: 'folder', root, resolution: R, batchSize: 16, threads: 2 });
    expect(summary(r.result)).toEqual(summary(want));
    expect(r.options.labelOrder).toBe('original');
    expect(r.labelOrderAssumed).toBe(true);
    const t = await runCli(args(evalnet('epoch_3_checkpoints.pth.tar')));
    expect(t.stdout).toMatch(/softmax head\) from .*, original label order \(assumed: nothing records one, and the original code's Linear \+ Softmax head was trained on \[y, 1-y\] targets; --label-order sets it\), R = 32/);
  });

  it("a timm ViT's plain head (head.weight) means natural order too", async () => {
    const ck = await readCheckpoint(join(fixturesDir, 'vit', 'deit_tiny.pth'));
    expect(ck.keys(['model'])).toContain('head.weight');
    expect(headInFile(ck)).toBe('linear');
    expect(chooseLabelOrder(undefined, undefined, 'linear', headInFile(ck)).labelOrder).toBe('natural');
  });

  it('a given --label-order and a recorded label order still win', async () => {
    const original = await reference(evalnet('plain_linear.pth'), 'linear', 'original');
    const given = await runCli([...args(evalnet('plain_linear.pth')), '--label-order', 'original', '--json']);
    expect(summary(JSON.parse(given.stdout))).toEqual(summary(original));
    const rec = await evaluateDetailed({ checkpoint: made('recorded.pth'), dataset: 'folder', root, resolution: R, batchSize: 16, threads: 2 });
    expect(rec.head).toBe('linear');
    expect(rec.options.labelOrder).toBe('original');
    expect(rec.labelOrderReason).toMatch(/^recorded in .*recorded\.pth \(spurmem\.label_order\)$/);
    expect(summary(rec.result)).toEqual(summary(original));
    const t = await runCli([...args(made('recorded.pth'))]);
    expect(t.stdout).toMatch(/, original label order, R = 32/);
  });
});

describe('DataParallel, DistributedDataParallel and torch.compile checkpoints, the pytorch/examples layout', () => {
  it("{epoch, arch, state_dict: {module.*}, optimizer, best_acc1} without --arch: the recorded arch, the prefix removed, PyTorch's numbers", async () => {
    const want = await reference(evalnet('plain_linear.pth'), 'linear', 'natural');
    const j = await runCli(['eval', '--checkpoint', made('examples.pth.tar'), '--dataset', 'folder', '--root', root, '--resolution', String(R), '--batch-size', '16', '--json']);
    expect(j.code).toBe(0);
    expect(summary(JSON.parse(j.stdout))).toEqual(summary(want));
    expect(j.stderr).toContain(`note: ${made('examples.pth.tar')}: every key of 'state_dict' starts with 'module.' (nn.DataParallel / DistributedDataParallel); read without it`);
    const r = await evaluateDetailed({ checkpoint: made('examples.pth.tar'), dataset: 'folder', root, resolution: R, batchSize: 16 });
    expect(r.options.arch).toBe('resnet18');
    expect(r.archReason).toBe("the checkpoint records arch 'resnet18'");
  });

  it("'_orig_mod.module.' keys under 'net' (torch.compile of a DataParallel model), legacy layout", async () => {
    const want = await reference(evalnet('plain_linear.pth'), 'linear', 'natural');
    const r = await evaluateDetailed({ checkpoint: made('compiled.pth'), dataset: 'folder', root, resolution: R, batchSize: 16 });
    expect(summary(r.result)).toEqual(summary(want));
    expect(r.archReason).toBe("its state dict's keys and shapes are those of resnet18");
    expect(r.notes).toEqual([`${made('compiled.pth')}: every key of 'net' starts with '_orig_mod.' (torch.compile) and 'module.' (nn.DataParallel / DistributedDataParallel); read without it`]);
  });

  it('an error about loading names the architecture tried and why it was chosen', async () => {
    const bad = await runCli(['eval', '--checkpoint', made('wrong_arch.pth.tar'), '--dataset', 'folder', '--root', root, '--resolution', String(R)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error\(s\) in loading the state dict into resnet50: .*resnet50 was tried because the checkpoint records arch 'resnet50'; its keys and shapes are those of --arch resnet18/s);
    // an arch spurmem does not build: the keys decide, and the reason says both
    const r = await evaluateDetailed({ checkpoint: made('unknown_arch.pth.tar'), dataset: 'folder', root, resolution: R, batchSize: 16 });
    expect(r.options.arch).toBe('resnet18');
    expect(r.archReason).toBe("the checkpoint records arch 'resnet34', which spurmem does not build; its state dict's keys and shapes are those of resnet18");
    // given --arch wins, and says so when it does not fit
    const given = await runCli(['eval', '--checkpoint', made('examples.pth.tar'), '--arch', 'resnet50', '--dataset', 'folder', '--root', root, '--resolution', String(R)]);
    expect(given.code).toBe(1);
    expect(given.stderr).toMatch(/resnet50 was tried because it was given with --arch; the checkpoint records arch 'resnet18'/);
  });

  it('as --pretrained weights: the prefix is removed and reported, the ImageNet-style head skipped', async () => {
    const rep = await loadPretrained(createModel({ arch: 'resnet18', device: 'cpu' }), made('examples.pth.tar'));
    expect(rep.path).toEqual(['state_dict']);
    expect(rep.stripped).toEqual(['module.']);
    expect(rep.skipped).toEqual(['fc.weight', 'fc.bias']);
    expect(rep.loaded.length).toBeGreaterThan(100);
  });
});
