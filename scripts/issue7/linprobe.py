#!/usr/bin/python3
"""Logistic regression (per label, L2, LBFGS in torch float64) on fixed features: raw patch means of the
cached crops, or features dumped by probe2.test.ts (FEATS=...). Prints train/test macro AUROC per L2 strength.

  linprobe.py patchmeans /tmp/g7crops [L2,L2,...] [--dump FILE.json (the features, for headonly.py)]
  linprobe.py feats FILE.json [L2,L2,...]
"""
import json
import sys

import numpy as np
import torch


def auroc(s, y):
    s, y = np.asarray(s, float), np.asarray(y)
    m = y >= 0
    s, y = s[m], y[m]
    npos, nneg = (y == 1).sum(), (y == 0).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    r = np.arange(1, len(s) + 1, dtype=float)
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        r[i:j + 1] = (i + j + 2) / 2.0
        i = j + 1
    ranks[order] = r
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def fit(Xtr, Ytr, Xte, Yte, lam):
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-8
    A = torch.tensor((Xtr - mu) / sd)
    At = torch.tensor((Xte - mu) / sd)
    trs, tes = [], []
    for q in range(Ytr.shape[1]):
        y = torch.tensor(Ytr[:, q], dtype=torch.float64)
        m = y >= 0
        if (y[m] == 1).sum() == 0 or (y[m] == 0).sum() == 0:
            continue
        w = torch.zeros(A.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            z = A[m] @ w + b
            l = torch.nn.functional.binary_cross_entropy_with_logits(z, y[m]) + lam * (w * w).sum()
            l.backward()
            return l
        opt.step(closure)
        with torch.no_grad():
            trs.append(auroc((A @ w + b).numpy(), Ytr[:, q]))
            tes.append(auroc((At @ w + b).numpy(), Yte[:, q]))
    return np.nanmean(trs), np.nanmean(tes), tes


def main():
    kind = sys.argv[1]
    if kind == "patchmeans":
        d = sys.argv[2]
        out = {}
        for split in ("train", "test"):
            meta = json.load(open(f"{d}/{split}.json"))
            X, Y, Z = meta["shape"]
            v = np.fromfile(f"{d}/{split}.f32", dtype="<f4").reshape(meta["n"], X, Y, Z)
            pm = v.reshape(meta["n"], X // 16, 16, Y // 16, 16, Z // 4, 4).mean((2, 4, 6)).reshape(meta["n"], -1)
            out[split] = (pm.astype(np.float64), np.array(meta["labels"]))
        Xtr, Ytr = out["train"]
        Xte, Yte = out["test"]
        if "--dump" in sys.argv:
            fn = sys.argv[sys.argv.index("--dump") + 1]
            json.dump({"train": Xtr.tolist(), "test": Xte.tolist(), "ytrain": Ytr.tolist(), "ytest": Yte.tolist()}, open(fn, "w"))
            sys.argv = sys.argv[:sys.argv.index("--dump")]
    else:
        f = json.load(open(sys.argv[2]))
        Xtr, Xte = np.array(f["train"], float), np.array(f["test"], float)
        Ytr, Yte = np.array(f["ytrain"]), np.array(f["ytest"])
    # feature diagnostics: spread between cases relative to the mean vector, effective rank
    mu = Xtr.mean(0)
    C = np.cov(Xtr.T)
    ev = np.clip(np.linalg.eigvalsh(C)[::-1], 0, None)
    pr = ev.sum() ** 2 / (ev ** 2).sum()
    cos = (Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True)) @ (Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True)).T
    print(f"{kind}: {Xtr.shape[1]} features, {len(Xtr)} train / {len(Xte)} test; between-case std / |mean| "
          f"{np.sqrt(np.trace(C)) / (np.linalg.norm(mu) + 1e-12):.3f}; participation ratio {pr:.1f}; "
          f"top-5 variance share {ev[:5].sum() / ev.sum():.2f}; mean pairwise cosine {cos[np.triu_indices(len(Xtr), 1)].mean():.3f}")
    lams = [float(x) for x in (sys.argv[3].split(",") if len(sys.argv) > 3 else ["1e-4", "1e-3", "1e-2", "1e-1"])]
    for lam in lams:
        tr, te, per = fit(Xtr, Ytr, Xte, Yte, lam)
        print(f"  L2 {lam:g}: train macro AUROC {tr:.3f}, test {te:.3f}")


if __name__ == "__main__":
    main()
