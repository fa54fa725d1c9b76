"""PyTorch side of bench/forward.mjs: torchvision's ResNet-50 in eval mode with the given weights, under
torch.no_grad(), on the float batch [batch, 3, size, size] that bench/forward.mjs wrote to INPUT (raw float32), on the CPU
with `threads` threads. After a
"ready" line, answers each line of stdin: "threads" with torch.get_num_threads(), anything else by
running one forward pass and writing the seconds it took.

Usage: forward.py WEIGHTS INPUT THREADS BATCH SIZE   (driven by bench/forward.mjs)
"""
import sys
import time

import numpy
import torch
import torchvision

weights, inp = sys.argv[1], sys.argv[2]
threads, batch, size = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
model = torchvision.models.resnet50()
model.load_state_dict(torch.load(weights, map_location="cpu"))
model.eval()
x = torch.from_numpy(numpy.fromfile(inp, dtype=numpy.float32)).reshape(batch, 3, size, size)
print("ready", flush=True)
with torch.no_grad():
    for line in sys.stdin:
        if line.strip() == "threads":
            print(torch.get_num_threads(), flush=True)
            continue
        t0 = time.perf_counter()
        y = model(x)
        dt = time.perf_counter() - t0
        assert y.shape == (batch, 1000)
        print(dt, flush=True)
