"""PyTorch side of bench/train.mjs: the same training loop as spurmem's trainStep on uint8 batches
(ToTensor + Normalize, the original's softmax head, cross-entropy on its output, Adam).

Usage: train_loop.py ARCH RESOLUTION BATCH ITERS WARMUP THREADS -> prints images/s
"""
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

arch, res, batch, iters, warmup, threads = sys.argv[1], *map(int, sys.argv[2:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
m = getattr(torchvision.models, arch)()
m.fc = torch.nn.Sequential(torch.nn.Linear(m.fc.in_features, 2), torch.nn.Softmax(dim=1))
m.train()
opt = torch.optim.Adam(m.parameters(), lr=5e-6)
images = torch.randint(0, 256, (batch, res, res, 3), dtype=torch.uint8)
targets = torch.arange(batch) % 2
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def step():
    x = ((images.permute(0, 3, 1, 2).float() / 255 - mean) / std).contiguous()
    loss = F.cross_entropy(m(x), targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


for _ in range(warmup):
    step()
t = time.perf_counter()
for _ in range(iters):
    step()
print(batch * iters / (time.perf_counter() - t))
