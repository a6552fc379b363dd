#!/usr/bin/python3
"""The probe's head alone on frozen features (FEATS dump of probe2): Linear(F, 18), BCE with pos_weight
(min(n_neg/n_pos, 20)), AdamW(0.9, 0.95, wd 1e-4), clip 1, warm-up 20 + cosine, batch 8, as probe2 does.
  headonly.py FEATS.json [steps] [lr] [std=0|1]
"""
import json
import math
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from linprobe import auroc  # noqa: E402

f = json.load(open(sys.argv[1]))
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 2e-3
std = len(sys.argv) > 4 and sys.argv[4] == "1"
Xtr, Xte = torch.tensor(f["train"], dtype=torch.float64), torch.tensor(f["test"], dtype=torch.float64)
Ytr, Yte = torch.tensor(f["ytrain"], dtype=torch.float64), torch.tensor(f["ytest"], dtype=torch.float64)
if std:
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-8
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
known = Ytr >= 0
npos = ((Ytr == 1) & known).sum(0).double()
nneg = ((Ytr == 0) & known).sum(0).double()
pw = torch.where(npos > 0, torch.clamp(nneg / npos.clamp(min=1), max=20), torch.ones_like(npos))
torch.manual_seed(0)
F = Xtr.shape[1]
W = (torch.randn(18, F, dtype=torch.float64) * math.sqrt(1 / F)).requires_grad_()
b = torch.zeros(18, dtype=torch.float64, requires_grad=True)
opt = torch.optim.AdamW([W, b], lr=lr, betas=(0.9, 0.95), weight_decay=1e-4)
g = torch.Generator().manual_seed(5)


def macro(X, Y):
    s = (X @ W.T + b).detach().numpy()
    return np.nanmean([auroc(s[:, q], Y[:, q].numpy()) for q in range(18)])


for s in range(steps):
    idx = torch.randint(0, len(Xtr), (8,), generator=g)
    x, y = Xtr[idx], Ytr[idx]
    m = (y >= 0).double()
    z = x @ W.T + b
    yy = y.clamp(min=0)
    l = ((pw * yy * torch.nn.functional.softplus(-z) + (1 - yy) * torch.nn.functional.softplus(z)) * m).sum() / m.sum().clamp(min=1)
    for gr in opt.param_groups:
        gr["lr"] = lr * (s + 1) / 20 if s < 20 else lr * 0.5 * (1 + math.cos(math.pi * (s - 20) / (steps - 20)))
    opt.zero_grad()
    l.backward()
    torch.nn.utils.clip_grad_norm_([W, b], 1.0)
    opt.step()
    if (s + 1) % max(steps // 3, 1) == 0:
        print(f"  step {s + 1}: train AUROC {macro(Xtr, Ytr):.3f} test {macro(Xte, Yte):.3f}")
