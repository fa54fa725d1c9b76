"""PyTorch half of bench/vit-forward.mjs: eval forward images/s of the reference ViT (test/fixtures/reference.py,
timm's structure) with the original's 2-way softmax head, on the CPU.

Usage: vit_forward.py --model FILE --out DIR --arch deit_small --threads T --batch B --iters N --warmup W --resolution R
Loads FILE's model_state_dict strictly, makes the input (seed 0), writes it to DIR/x.pth, runs W warm-up
forwards, writes the output to DIR/py_out.pth and prints {"ready": true, "threads": T, "torch": version}.
Then, for each line "run" on stdin, times N forwards under torch.inference_mode() and prints
{"seconds": [...], "cpu": [...]} (wall and process CPU seconds per forward); "quit" (or the end of stdin) ends it. Rounds alternate with the addon's.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from reference import VisionTransformer  # noqa: E402

p = argparse.ArgumentParser()
for a in ("--model", "--out", "--arch"):
    p.add_argument(a, required=True)
for a in ("--threads", "--batch", "--iters", "--warmup", "--resolution"):
    p.add_argument(a, type=int, required=True)
p.add_argument("--ln-eps", type=float, default=1e-6)
args = p.parse_args()

torch.set_num_threads(args.threads)
m = VisionTransformer(args.arch, num_classes=2, eps=args.ln_eps, img_size=args.resolution)
m.head = torch.nn.Sequential(torch.nn.Linear(m.head.in_features, 2), torch.nn.Softmax(dim=1))
m.load_state_dict(torch.load(args.model, map_location="cpu")["model_state_dict"], strict=True)
m.eval()
x = torch.randn(args.batch, 3, args.resolution, args.resolution, generator=torch.Generator().manual_seed(0))
torch.save(x, os.path.join(args.out, "x.pth"))
with torch.inference_mode():
    for _ in range(max(args.warmup, 1)):
        y = m(x)
torch.save(y.clone(), os.path.join(args.out, "py_out.pth"))
print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    seconds, cpu = [], []
    with torch.inference_mode():
        for _ in range(args.iters):
            t, c = time.perf_counter(), time.process_time()
            m(x)
            seconds.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    print(json.dumps({"seconds": seconds, "cpu": cpu}), flush=True)
