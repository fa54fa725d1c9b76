"""Writes torchvision's ResNet-50 (random weights, seed 0; the same tensors and sizes as the ImageNet
file) as a state dict in both layouts torch.save has written, for bench/load.mjs and bench/forward.mjs.

Usage: weights.py OUT_DIR   ->  OUT_DIR/resnet50.zip.pth, OUT_DIR/resnet50.legacy.pth
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
sd = torchvision.models.resnet50().state_dict()
for layout, zip_ in (("zip", True), ("legacy", False)):
    path = os.path.join(out, f"resnet50.{layout}.pth")
    torch.save(sd, path + ".tmp", _use_new_zipfile_serialization=zip_)
    os.replace(path + ".tmp", path)
print("ok")
