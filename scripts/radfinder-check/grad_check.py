#!/usr/bin/python3
"""Gradient check of the composed model: our autograd (grad-dump.test.ts) against a float64 PyTorch
backward of reference.py's forward (the independent reference of the released model).

  GRAD_OUT=DIR GRAD_MODE=vision|objective node scripts/test-only.mjs scripts/radfinder-check/grad-dump.test.ts
  /usr/bin/python3 scripts/radfinder-check/grad_check.py DIR [--tol 1e-3]

Prints, per parameter tensor, rel = max|ours - ref| / max|ref| (and the gradient's scale), and the forward
outputs' errors. Exit status 1 if any rel > tol. A backward bug shows as O(1) rel on some tensors.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import reference as R  # noqa: E402
from rfconfig import dims, load_config  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

DT = torch.float64


def rel(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    den = np.abs(b).max()
    return float(np.abs(a - b).max() / den) if den > 0 else float(np.abs(a - b).max())


def text_state(ids, w, d):
    return R.qwen3_last_state(ids, w, d["text"], DT)


def softplus(x):
    return torch.nn.functional.softplus(x)


def localization_target(D, tgt, valid, sigma, mode):
    """The Gaussian target over D bins (radfinder localization_loss.py, or the renormalised variant)."""
    z = torch.arange(D, dtype=DT)
    if mode == "radfinder":
        rad = max(int(math.floor(3 * sigma + 0.5)), 1)
        g = torch.exp(-0.5 * ((z - tgt) / sigma) ** 2) * ((z - tgt).abs() <= rad)
        g = g / g.sum()
        return g * valid
    rad = math.ceil(3 * sigma)
    g = torch.exp(-0.5 * ((z - tgt) / sigma) ** 2) * ((z - tgt).abs() <= rad) * valid
    return g / g.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--all", action="store_true", help="print every tensor (default: every tensor too; kept for clarity)")
    a = ap.parse_args()
    cfg = load_config(os.path.join(a.dir, "config.json"))
    d = dims(cfg)
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    w = R.W(os.path.join(a.dir, "model.safetensors"), DT)
    for k, v in w.t.items():
        if v.is_floating_point() and not k.endswith("rope.periods"):
            v.requires_grad_(True)
    inp, _ = read_safetensors(os.path.join(a.dir, "inputs.safetensors"))
    ours, _ = read_safetensors(os.path.join(a.dir, "grads.safetensors"))
    outs, _ = read_safetensors(os.path.join(a.dir, "outputs.safetensors"))
    crop = inp["crop"].astype(np.float32)
    B = crop.shape[0]
    ims = []
    for b in range(B):
        wins, grid = R.to_windows(crop[b], d["window"])
        ims.append(R.encode_image(wins, grid, w, d, DT))
    image = torch.stack([m["image"] for m in ims])
    disease = torch.stack([m["disease"] for m in ims])
    depth = torch.stack([m["depth"] for m in ims])
    fwd = {}
    if meta["mode"] == "pooled":
        pooled = torch.stack([m["pooled"] for m in ims])
        fwd = {"pooled": (outs["pooled"], pooled)}
        loss = (pooled * torch.from_numpy(inp["rp"].astype(np.float64))).sum()
    elif meta["mode"] == "vision":
        fwd = {"image": (outs["image"], image), "disease": (outs["disease"], disease), "depth": (outs["depth"], depth)}
        loss = (image * torch.from_numpy(inp["r1"].astype(np.float64))).sum() + \
               (disease * torch.from_numpy(inp["r2"].astype(np.float64))).sum() + \
               (depth * torch.from_numpy(inp["r3"].astype(np.float64))).sum()
    else:
        bt = meta["batch"]
        Q, S = bt["Q"], bt["S"]
        copy = "projection_text_copy" if d["copy_text"] else "projection_text"
        rep = torch.stack([R.head(text_state(ids, w, d), w, "projection_text") for ids in bt["report"]])
        pr = torch.stack([R.head(text_state(ids, w, d), w, "projection_text") for ids in bt["prompts"]])
        sn = torch.stack([R.head(text_state(ids, w, d), w, copy) for ids in bt["snippets"]])
        t, bb = w["criterion.t"].reshape(()), w["criterion.b"].reshape(())
        # SigLIP: -(1/B') sum_ij v_i v_j log sigmoid(z_ij (exp(t) <img_i, txt_j> + b))
        img, txt = R.l2n(image), R.l2n(rep)
        logit = torch.exp(t) * (img @ txt.T) + bb
        z = 2 * torch.eye(B, dtype=DT) - 1
        v = torch.tensor(bt["reportValid"], dtype=DT)
        siglip = (softplus(-z * logit) * v[:, None] * v[None, :]).sum() / max(v.sum().item(), 1.0)
        # disease prompts: BCE with logits on exp(t) <dis, p_pos - p_neg>, pos_weight, unknown (-1) masked
        prn = R.l2n(pr)
        diff = prn[:Q] - prn[Q:]
        x = (R.l2n(disease) @ diff.T) * torch.exp(t)
        y = torch.tensor(bt["labels"], dtype=DT).reshape(B, Q)
        pw = torch.tensor(bt["posWeight"], dtype=DT)
        known = (y >= 0).to(DT)
        yy = y.clamp(min=0)
        per = pw * yy * softplus(-x) + (1 - yy) * softplus(x)
        prompts = (per * known).sum() / max(known.sum().item(), 1.0)
        # localization: scores = cos(depth_d of the snippet's case, snippet) / tau, masked softmax, soft CE
        loc = bt["loc"]
        D2 = depth.shape[1]
        vb = torch.tensor(bt["validBins"], dtype=DT).reshape(S, D2)
        dn = R.l2n(depth)
        ce, l1 = [], []
        zmm = (torch.arange(D2, dtype=DT) + 0.5) * bt["binMm"]
        for s in range(S):
            sc = dn[bt["cases"][s]] @ R.l2n(sn[s]) / loc["tau"]
            sc = sc.masked_fill(vb[s] == 0, float("-inf"))
            logp = torch.log_softmax(sc, 0)
            tg = localization_target(D2, bt["target"][s], vb[s], loc["sigma"], loc.get("target", "radfinder"))
            ce.append(-(tg * torch.where(vb[s] > 0, logp, torch.zeros_like(logp))).sum())
            p = torch.exp(logp)
            l1.append((p * zmm).sum() - bt["targetMm"][s])
        ce = torch.stack(ce).mean()
        locl = ce + (loc.get("l1Weight") or 0) * torch.stack(l1).abs().mean()
        loss = siglip + bt["promptWeight"] * prompts + loc["weight"] * locl
        fwd = {"siglip": (outs["siglip"], siglip), "prompts": (outs["prompts"], prompts), "localization": (outs["localization"], locl)}
    fwd["loss"] = (outs["loss"], loss)
    loss.backward()
    print(f"mode {meta['mode']}, B {B}, grid {meta['grid']}, loss ours {float(outs['loss'][0]):.6g} ref {loss.item():.6g}")
    for k, (o, r) in fwd.items():
        print(f"  forward {k:14s} rel {rel(o, r.detach().numpy()):.2e}")
    worst = 0.0
    rows = []
    missing = []
    for k, v in w.t.items():
        if k.endswith("rope.periods"):
            continue
        key = "model." + k.replace("last_layer.parametrizations.weight.original0", "last_layer.parametrizations.weight.original0")
        g = v.grad
        if key not in ours:
            if g is not None and g.abs().max() > 0 and "original0" not in k:
                missing.append(k)
            continue
        if g is None:
            g = torch.zeros_like(v)
        r_ = rel(ours[key], g.detach().numpy())
        rows.append((k, r_, float(g.abs().max())))
        worst = max(worst, r_)
    for k, r_, s in rows:
        flag = "  <-- FAIL" if r_ > a.tol else ""
        print(f"  grad {k:70s} rel {r_:.2e}  max|g| {s:.3e}{flag}")
    if missing:
        print(f"  parameters with a reference gradient but none of ours: {missing}")
    print(f"{len(rows)} gradient tensors compared; worst rel {worst:.2e} ({'PASS' if worst <= a.tol and not missing else 'FAIL'} at tol {a.tol})")
    sys.exit(0 if worst <= a.tol and not missing else 1)


if __name__ == "__main__":
    main()
