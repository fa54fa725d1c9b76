"""torch.load side of bench/load.mjs. Reads file paths from stdin, one a line; for each, loads it with
torch.load (after dropping the previous result) and writes a line "WALL CPU": the seconds it took and
the CPU seconds this process spent on it (all threads).

Usage: load.py   (driven by bench/load.mjs)
"""
import gc
import sys
import time

import torch

torch.set_num_threads(1)
print("ready", flush=True)
for line in sys.stdin:
    path = line.strip()
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    sd = torch.load(path, map_location="cpu")
    dt = time.perf_counter() - t0
    dc = time.process_time() - c0
    del sd
    print(dt, dc, flush=True)
