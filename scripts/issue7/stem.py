#!/usr/bin/python3
"""Which stem lets a from-scratch vision path read the synthetic findings within the budget?
PyTorch mirror of the probe (the small preset's crop: 64 x 64 x 128 voxels of 6 x 6 x 3 mm,
16 x 16 x 4 patches, 512 tokens, width 96, 2 pre-norm blocks of window attention (4 windows of 128 tokens), [mean ; max] pooling, BatchNorm,
a linear head on the 18 labels, BCE, AdamW (0.9, 0.95), warm-up 20 + cosine, clip 1, B 8).

  stem.py CROPS_DIR STEM STEPS [TRAIN_DIRS,...]
  STEM: linear    Conv3d(1, E, k=s=patch) (ours, RadFinder's)
        conv1     Conv3d(1, C, 3, pad 1) -> GELU, then per patch the mean and the max of the C maps ->
                  Linear(2C, E), added to the linear patch embedding
        conv2     the same with a second Conv3d(C, C, 3, pad 1) -> GELU
        hist      + Linear(22, E) of each patch's soft HU histogram (HU_CENTRES, linear interpolation
                  between neighbours), the shares times HSCALE (default 22 = K: bins average 1, the
                  scale in the model; 1 and 4 were measured too)
                  DOG=1 adds a soft histogram of local contrast (the voxel minus its 5 x 5 x 7 box
                  mean, DOGK sets the box; session 12: no gain)
        cnn       the conv stem's per-patch features pooled over all patches (no transformer)
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


HU_CENTRES = [-1000, -950, -900, -850, -800, -700, -600, -500, -400, -300, -200, -100, -50, 0, 25, 50, 75, 100, 200, 400, 700, 1000]


def patch_hist(v):
    """[N, X, Y, Z] crops in [0, 1] -> [N, 512, K] soft HU histograms per 16 x 16 x 4 patch (z fastest)."""
    c = torch.tensor([(h + 1000) / 2000 for h in HU_CENTRES])
    return np.stack([soft_hist(torch.from_numpy(x), c).numpy() for x in v]).astype(np.float32)


# Local contrast: the voxel minus the mean of a box around it (5 x 5 x 7 voxels = 30 x 30 x 21 mm),
# in HU; a blob (nodule, calcification) stands out by nearly its full contrast, an edge by half.
DOG_CENTRES = [-800, -400, -200, -100, -50, 0, 50, 100, 200, 300, 400, 500, 600, 800]


def soft_hist(x, c):
    """x [X, Y, Z] -> [n, K] soft histograms (centres c) per 16 x 16 x 4 patch."""
    x = x.clamp(c[0], c[-1])[..., None]
    up = ((x - c[:-1]) / (c[1:] - c[:-1])).clamp(0, 1)
    rise = torch.cat([torch.ones_like(x), up], -1)
    fall = torch.cat([1 - up, torch.ones_like(x)], -1)
    m = torch.minimum(rise, fall).permute(3, 0, 1, 2)[None]
    return F.avg_pool3d(m, (16, 16, 4))[0].flatten(1).T


def contrast_hist(v):
    c = torch.tensor(DOG_CENTRES, dtype=torch.float32) / 2000
    k = tuple(int(a) for a in os.environ.get("DOGK", "5,5,7").split(","))
    out = []
    for i in range(len(v)):
        x = torch.from_numpy(v[i]).clamp(0, 1)
        blur = F.avg_pool3d(x[None, None], k, 1, tuple(a // 2 for a in k), count_include_pad=False)[0, 0]
        out.append(soft_hist(x - blur, c).numpy())
    return np.stack(out).astype(np.float32)


def load(d, split):
    meta = json.load(open(os.path.join(d, f"{split}.json")))
    X, Y, Z = meta["shape"]
    v = np.fromfile(os.path.join(d, f"{split}.f32"), dtype=np.float32).reshape(meta["n"], X, Y, Z)
    cache = os.path.join(d, f"{split}.hist.npy")
    if not os.path.exists(cache):
        np.save(cache, patch_hist(v))
    h = np.load(cache)
    if os.environ.get("DOG"):
        dc = os.path.join(d, f"{split}.dog{os.environ.get('DOGK', '5,5,7').replace(',', 'x')}.npy")
        if not os.path.exists(dc):
            np.save(dc, contrast_hist(v))
        h = np.concatenate([h, np.load(dc)], -1)
    return v, np.array(meta["labels"], dtype=np.float32), h


class Block(nn.Module):
    def __init__(s, E, H):
        super().__init__()
        s.l = nn.TransformerEncoderLayer(E, H, 4 * E, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)

    def forward(s, x):
        return s.l(x)


class Model(nn.Module):
    def __init__(s, stem, E=96, C=16, depth=2, grid=(4, 4, 32)):
        super().__init__()
        s.stem = stem
        s.patch = nn.Conv3d(1, E, (16, 16, 4), (16, 16, 4))
        if stem != "linear":
            layers = [nn.Conv3d(1, C, 3, padding=1), nn.GELU()]
            if stem == "conv2":
                layers += [nn.Conv3d(C, C, 3, padding=1), nn.GELU()]
            s.conv = nn.Sequential(*layers)
            s.proj = nn.Linear(2 * C, E)
        if stem == "hist":
            # Soft HU histogram of each patch: triangular membership between adjacent centres.
            s.proj = nn.Linear(len(HU_CENTRES) + (len(DOG_CENTRES) if os.environ.get("DOG") else 0), E)
        n = grid[0] * grid[1] * grid[2]
        s.pos = nn.Parameter(torch.randn(1, n + 1, E) * 0.02)
        s.cls = nn.Parameter(torch.zeros(1, 1, E))
        s.blocks = nn.ModuleList([Block(E, 4) for _ in range(depth)])
        s.norm = nn.LayerNorm(E)
        s.bn = nn.BatchNorm1d(2 * E, affine=False)
        s.head = nn.Linear(2 * E, 18)

    def forward(s, v, hst=None):  # v [B, X, Y, Z], hst [B, n, K] (patch_hist)
        x = v[:, None]
        t = s.patch(x).flatten(2).transpose(1, 2)  # [B, n, E]
        if s.stem == "hist":
            t = t + s.proj(hst * float(os.environ.get("HSCALE", "22")))
        elif s.stem != "linear":
            f = s.conv(x)
            k = (16, 16, 4)
            pm = torch.cat([F.avg_pool3d(f, k), F.max_pool3d(f, k)], 1).flatten(2).transpose(1, 2)
            p = s.proj(pm)
            if s.stem == "cnn":
                h = torch.cat([p.mean(1), p.amax(1)], 1)
                return s.head(s.bn(h))
            t = t + p
        B, n, E = t.shape
        # Window attention as in the backbone: 4 windows of 4 x 4 x 8 tokens along z (z fastest).
        t = (t + s.pos[:, 1:]).reshape(B, 16, 4, 8, E).transpose(1, 2).reshape(B * 4, 128, E)
        for b in s.blocks:
            t = b(t)
        t = s.norm(t).reshape(B, 4 * 128, E)
        h = torch.cat([t.mean(1), t.amax(1)], 1)
        return s.head(s.bn(h))


def evaluate(m, V, Y, H, bs=16):
    m.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(V), bs):
            out.append(m(torch.from_numpy(V[i:i + bs]), torch.from_numpy(H[i:i + bs])).numpy())
    m.train()
    S = np.concatenate(out)
    per = [auroc(S[:, q], Y[:, q]) for q in range(Y.shape[1])]
    ok = [a for a in per if not math.isnan(a)]
    return float(np.mean(ok)), per


def main():
    d, stem, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    Vtr, Ytr, Htr = load(d, "train")
    for extra in (sys.argv[4].split(",") if len(sys.argv) > 4 else []):
        v, y, h = load(extra, "train")
        Vtr, Ytr, Htr = np.concatenate([Vtr, v]), np.concatenate([Ytr, y]), np.concatenate([Htr, h])
    Vte, Yte, Hte = load(d, "test")
    m = Model(stem, C=int(os.environ.get("C", "16")))
    nparam = sum(p.numel() for p in m.parameters())
    lr = float(os.environ.get("LR", "1e-3"))
    opt = torch.optim.AdamW(m.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=1e-4)
    B = 8
    rng = np.random.default_rng(0)
    order = rng.permutation(len(Vtr))
    pos = 0
    t0 = time.time()
    print(f"{stem}: {nparam} parameters, {len(Vtr)} train, {len(Vte)} test", flush=True)
    for step in range(steps):
        cur = lr * (step + 1) / 20 if step < 20 else 1e-5 + 0.5 * (lr - 1e-5) * (1 + math.cos(math.pi * (step - 20) / max(1, steps - 20)))
        for g in opt.param_groups:
            g["lr"] = cur
        if pos + B > len(order):
            order, pos = rng.permutation(len(Vtr)), 0
        idx = order[pos:pos + B]
        pos += B
        v = torch.from_numpy(Vtr[idx])
        y = torch.from_numpy(Ytr[idx])
        z = m(v, torch.from_numpy(Htr[idx]))
        mask = (y >= 0).float()
        loss = (F.binary_cross_entropy_with_logits(z, y.clamp(min=0), reduction="none") * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        if (step + 1) % int(os.environ.get("EVERY", "100")) == 0 or step + 1 == steps:
            train_s = time.time() - t0
            tr, _ = evaluate(m, Vtr[:80], Ytr[:80], Htr[:80])
            te, per = evaluate(m, Vte, Yte, Hte)
            print(f"step {step + 1} loss {loss.item():.3f} train {tr:.3f} test {te:.3f} ({train_s / (step + 1):.2f} s/step)", flush=True)
            t0 += time.time() - t0 - train_s
    print("per label (test):", " ".join(f"{a:.2f}" for a in per))


if __name__ == "__main__":
    main()
