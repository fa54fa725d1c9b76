"""The original's evaluation loop on a CelebA-layout folder, timed: PIL decode + torchvision's eval transform
(Resize((S, S)), S = round(R*256/224), CenterCrop(R), ToTensor, Normalize), a DataLoader of batch 200, a
torchvision ResNet-18 with 2 outputs in eval mode under no_grad. Prints one JSON line: wall seconds, seconds
waiting for data, seconds in the model, images, max RSS (MiB).

Usage: eval_e2e.py ROOT WEIGHTS R THREADS NUM_WORKERS
"""
import json
import os
import resource
import sys
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms

root, weights, R, threads, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
S = round(R * 256 / 224)
tf = transforms.Compose([
    transforms.Resize((S, S)), transforms.CenterCrop(R), transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])
files = [l.split()[0] for l in open(os.path.join(root, 'list_eval_partition.txt')) if l.split()[1] == '2']


class Split(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)

    def __getitem__(self, i):
        return tf(Image.open(os.path.join(root, 'img_align_celeba', files[i])).convert('RGB'))


model = torchvision.models.resnet18(num_classes=2)
model.load_state_dict(torch.load(weights))
model.eval()
loader = torch.utils.data.DataLoader(Split(), batch_size=200, shuffle=False, num_workers=workers)
t0 = time.perf_counter()
data = compute = 0.0
n = 0
with torch.no_grad():
    t = time.perf_counter()
    for x in loader:
        t1 = time.perf_counter()
        data += t1 - t
        model(x)
        t = time.perf_counter()
        compute += t - t1
        n += x.shape[0]
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "data": data, "compute": compute, "images": n,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
