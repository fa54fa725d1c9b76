"""PyTorch side of scripts/gpu-check.sh.

  gpu_check.py parity --device D --out DIR [--batch N]   weights, inputs and outputs of a torchvision
                                                         ResNet-50 with the original head, TF32 off
  gpu_check.py throughput --device D --batch B --iters N --threads T
                                                         eval and training images/s, fp32 and bf16 autocast
                                                         + channels-last; prints JSON
"""
import argparse
import contextlib
import json
import time

import torch
import torch.nn.functional as F
import torchvision


def model_on(device, seed=0, channels_last=False):
    torch.manual_seed(seed)
    m = torchvision.models.resnet50()
    m.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2), torch.nn.Softmax(dim=1))
    m = m.to(device)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def parity(a):
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    m = model_on(a.device).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_((torch.randn(mod.running_mean.shape, generator=g) * 0.1).to(a.device))
                mod.running_var.copy_((torch.rand(mod.running_var.shape, generator=g) * 0.5 + 0.75).to(a.device))
    x = torch.randn(a.batch, 3, 224, 224, generator=g)
    with torch.no_grad():
        out = m(x.to(a.device)).cpu()
    sd = {k: v.cpu() for k, v in m.state_dict().items()}
    torch.save(sd, f"{a.out}/resnet50_state_dict.pth")
    torch.save({"inputs": x, "outputs": out}, f"{a.out}/parity.pth")


def throughput(a):
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = False
    dev = a.device
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    images = torch.randint(0, 256, (a.batch, 224, 224, 3), dtype=torch.uint8)
    targets = torch.randint(0, 2, (a.batch,))
    res = {}
    for name, amp, cl in [("fp32", False, False), ("bf16_channels_last", True, True)]:
        if amp and not dev.startswith("cuda"):
            continue
        m = model_on(dev, channels_last=cl)
        opt = torch.optim.Adam(m.parameters(), lr=1e-4)

        def batch():
            x = images.to(dev, non_blocking=False).permute(0, 3, 1, 2).float().div_(255).sub_(mean).div_(std)
            return x.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)

        def autocast():
            return torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

        def ev():
            with torch.no_grad(), autocast():
                return m(batch()).float().cpu()

        def tr():
            with autocast():
                out = m(batch()).float()
            loss = F.cross_entropy(out, targets.to(dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        for kind, fn, train in [("eval", ev, False), ("train", tr, True)]:
            m.train(train)
            for _ in range(a.warmup):
                fn()
            sync(dev)
            t = time.perf_counter()
            for _ in range(a.iters):
                fn()
            sync(dev)
            res[f"{kind}_{name}"] = a.batch * a.iters / (time.perf_counter() - t)
    print(json.dumps(res))


p = argparse.ArgumentParser()
p.add_argument("what", choices=["parity", "throughput"])
p.add_argument("--device", default="cuda")
p.add_argument("--out", default=".")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
parity(a) if a.what == "parity" else throughput(a)
