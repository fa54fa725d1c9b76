"""One setting of the original Largest study, done the way StudyChannelwiseLargestNeuronExperiments.py does
it (original-behaviour §3.2, §4.1, §5, §7.1), for the sweep benchmark:

- a Dataset that opens every image with PIL, converts it to RGB and applies the torchvision eval transform
  (Resize((r, r)) with r = round(R*256/224), CenterCrop(R), ToTensor, Normalize) on every pass, read by a
  DataLoader with batch 200 and num_workers=0, not shuffled;
- the unmodified model evaluated once; then the top-k channels by weight L2 norm, found one at a time on a
  deep copy of the model in which each found channel is zeroed (parameters whose name contains none of
  bn / downsample / fc, strict ">" so the earlier tensor wins a tie);
- R repetitions, each reloading the checkpoint from disk, applying the mode to every chosen channel
  (random_init: N(0, std^2); random_noise: + N(0, std^2); zero; rewind: the channel of the checkpoint
  `rewind_checkpoint`, loaded from disk for every repetition), evaluating;
- per-group accuracy = argmax(prediction) == argmax([y, 1-y]).

Usage: original_largest.py SETTING_JSON   where the JSON names checkpoint, root, arch, resolution, split,
mode, top_k, std, repeats, threads, seed (and rewind_checkpoint for mode rewind). Prints one JSON line: unmodified and per-repeat group accuracies,
the chosen channels, and the seconds spent after the imports.
"""
import copy
import csv
import json
import os
import sys
import time

import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

SPLITS = {"train": 0, "val": 1, "test": 2}


class ShortcutDataset(Dataset):
    """metadata.csv rows of one split; every __getitem__ decodes the image again (as the original)."""

    def __init__(self, root, split, transform):
        self.root = root
        self.transform = transform
        with open(os.path.join(root, "metadata.csv"), newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["split"]) == SPLITS[split]]
        self.files = [r["img_filename"] for r in rows]
        self.y = [int(r["y"]) for r in rows]
        self.place = [int(r["place"]) for r in rows]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = Image.open(os.path.join(self.root, self.files[i])).convert("RGB")
        y = self.y[i]
        return self.transform(img), torch.tensor([float(y), float(1 - y)]), 2 * y + self.place[i]


def build(arch):
    m = getattr(torchvision.models, arch)()
    m.fc = torch.nn.Sequential(torch.nn.Linear(m.fc.in_features, 2), torch.nn.Softmax(dim=1))
    return m


def load(m, path):
    ck = torch.load(path, map_location="cpu")
    m.load_state_dict(ck["model_state_dict"] if "model_state_dict" in ck else ck)


def group_accuracy(m, loader):
    m.eval()
    preds, targets, groups = [], [], []
    with torch.no_grad():
        for x, t, g in loader:
            preds.append(m(x).argmax(1))
            targets.append(t.argmax(1))
            groups.append(g)
    p, t, g = torch.cat(preds), torch.cat(targets), torch.cat(groups)
    out = []
    for k in range(4):
        sel = g == k
        out.append(float((p[sel] == t[sel]).float().mean()) if int(sel.sum()) > 0 else None)
    return out


def largest_channel(m):
    best_name, best_idx, best_val = None, -1, 0.0
    for name, p in m.named_parameters():
        if "bn" in name or "downsample" in name or "fc" in name:
            continue
        norms = p.detach().flatten(1).norm(p=2, dim=1) if p.dim() > 1 else p.detach().abs()
        v, i = norms.max(0)
        if float(v) > best_val:
            best_name, best_idx, best_val = name, int(i), float(v)
    return best_name, best_idx, best_val


def main():
    s = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    torch.set_num_threads(s["threads"])
    torch.manual_seed(s["seed"])
    r = s["resolution"]
    transform = transforms.Compose([
        transforms.Resize((round(r * 256 / 224), round(r * 256 / 224))),
        transforms.CenterCrop(r),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    loader = DataLoader(ShortcutDataset(s["root"], s["split"], transform), batch_size=200, shuffle=False, num_workers=0)
    model = build(s["arch"])
    load(model, s["checkpoint"])
    unmodified = group_accuracy(model, loader)
    # ranking on a deep copy, zeroing each found channel
    work = copy.deepcopy(model)
    channels = []
    for _ in range(s["top_k"]):
        name, idx, val = largest_channel(work)
        channels.append([name, idx, val])
        with torch.no_grad():
            dict(work.named_parameters())[name][idx].zero_()
    repeats = s["repeats"] if "random" in s["mode"] else 1
    rows = []
    for _ in range(repeats):
        load(model, s["checkpoint"])
        params = dict(model.named_parameters())
        source = None
        if s["mode"] == "rewind":
            ck = torch.load(s["rewind_checkpoint"], map_location="cpu")
            source = ck["model_state_dict"] if "model_state_dict" in ck else ck
        with torch.no_grad():
            for name, idx, _v in channels:
                w = params[name][idx]
                if s["mode"] == "random_init":
                    w.copy_(torch.randn_like(w) * s["std"])
                elif s["mode"] == "random_noise":
                    w.add_(torch.randn_like(w) * s["std"])
                elif s["mode"] == "zero":
                    w.zero_()
                elif s["mode"] == "rewind":
                    w.copy_(source[name][idx])
                else:
                    raise SystemExit("mode " + s["mode"] + " is not part of this benchmark")
        rows.append(group_accuracy(model, loader))
    print(json.dumps({"unmodified": unmodified, "repeats": rows, "channels": channels, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
