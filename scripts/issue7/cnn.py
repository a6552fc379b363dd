#!/usr/bin/python3
"""Can a from-scratch 3D CNN read the synthetic findings at the small preset's 6 x 6 x 3 mm voxels
from the main job's training cases? An upper-bound probe for the vision side, not our model:
supervised on the 18 labels (BCE with the dataset's pos_weight), no text.

  cnn.py CROPS_DIR EPOCHS        (crops from cache-crops.test.ts: train.f32/json, test.f32/json)

Net (C = WIDTH, default 16): the crop averaged to 6 mm isotropic voxels (64^3), then
[Conv3d 3x3x3 -> BatchNorm -> GELU] with C/2, C, 2C 2C, 4C 4C channels in four stages with 2x max
pooling between them (64^3 -> 8^3), then the global max and mean of the last maps -> Linear(8C, 18). AdamW (0.9,
0.95), lr 1e-3, warm-up 1/20 + cosine, batch 8, random flips along x, y and z. Per-class test
AUROC every epoch.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from linprobe import auroc  # noqa: E402

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(int(os.environ.get("SEED", "0")))

LABELS = ["Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
          "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema",
          "Atelectasis", "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion",
          "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation", "Bronchiectasis",
          "Interlobular septal thickening"]


def load(d, split):
    meta = json.load(open(os.path.join(d, f"{split}.json")))
    X, Y, Z = meta["shape"]
    v = np.fromfile(os.path.join(d, f"{split}.f32"), dtype=np.float32).reshape(meta["n"], X, Y, Z)
    return v, np.array(meta["labels"], dtype=np.float32), meta.get("posWeight")


def conv(ci, co):
    return nn.Sequential(nn.Conv3d(ci, co, 3, padding=1, bias=False), nn.BatchNorm3d(co), nn.GELU())


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        # 64 x 64 x 64 (6 mm) -> 32^3 -> 16^3 -> 8^3
        self.s = nn.ModuleList([conv(1, h), conv(h, c), nn.Sequential(conv(c, 2 * c), conv(2 * c, 2 * c)), nn.Sequential(conv(2 * c, 4 * c), conv(4 * c, 4 * c))])
        self.head = nn.Linear(8 * c, 18)

    def forward(self, x):
        x = F.avg_pool3d(x, (1, 1, 2))  # 6 x 6 x 3 mm -> 6 mm isotropic
        for i, s in enumerate(self.s):
            if i:
                x = F.max_pool3d(x, 2)
            x = s(x)
        f = torch.cat([x.amax((2, 3, 4)), x.mean((2, 3, 4))], 1)
        return self.head(f)


def evaluate(net, v, y, bs=16):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(v), bs):
            out.append(net(torch.from_numpy(v[i:i + bs])[:, None]).numpy())
    net.train()
    s = np.concatenate(out)
    per = [auroc(s[:, k], y[:, k]) for k in range(18)]
    ok = [a for a in per if not math.isnan(a)]
    return float(np.mean(ok)), per


def main():
    d, epochs = sys.argv[1], int(sys.argv[2])
    tv, ty, pw = load(d, "train")
    sv, sy, _ = load(d, "test")
    ntrain = int(os.environ.get("NTRAIN", str(len(tv))))
    tv, ty = tv[:ntrain], ty[:ntrain]
    c = int(os.environ.get("WIDTH", "16"))
    net = Net(c)
    print(f"train {len(tv)}, test {len(sv)}, crops {tv.shape[1:]}, width {c}, params {sum(p.numel() for p in net.parameters())}", flush=True)
    B = 8
    steps = epochs * (len(tv) // B)
    lr = float(os.environ.get("LR", "1e-3"))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=1e-4)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    posw = torch.tensor(pw if pw else [1.0] * 18, dtype=torch.float32).clamp(max=10)
    rng = np.random.default_rng(0)
    t0 = time.time()
    step = 0
    for ep in range(epochs):
        perm = rng.permutation(len(tv))
        tot = 0.0
        for b in range(len(tv) // B):
            idx = perm[b * B:(b + 1) * B]
            x = torch.from_numpy(tv[idx])
            for ax in (1, 2, 3):
                if rng.random() < 0.5:
                    x = x.flip(ax)
            logits = net(x[:, None])
            loss = F.binary_cross_entropy_with_logits(logits, torch.from_numpy(ty[idx]), pos_weight=posw)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            tot += loss.item()
            if step % 50 == 0:
                print(f"  step {step}/{steps} loss {tot / (b + 1):.3f} ({time.time() - t0:.0f} s)", flush=True)
        te, per = evaluate(net, sv, sy)
        tr, _ = evaluate(net, tv[:200], ty[:200])
        print(f"epoch {ep + 1}: train(200) {tr:.3f} test {te:.3f} ({time.time() - t0:.0f} s)", flush=True)
        print("   " + ", ".join(f"{LABELS[k][:14]} {a:.2f}" for k, a in enumerate(per)), flush=True)


main()
