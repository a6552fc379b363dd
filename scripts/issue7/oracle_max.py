#!/usr/bin/python3
# Usage: python3 scripts/issue7/oracle_max.py /tmp/g7crops [mean|max|maxprod] (crops from cache-crops.test.ts; numpy only)
# Per-patch HU-band fractions (16x16x4 patches, the small preset's), their pairwise products
# (co-occurrence inside a patch), max-pooled over the crop's patches -> L2 logistic regression per label.
import json, sys
import numpy as np
d = sys.argv[1] if len(sys.argv) > 1 else '/tmp/g7crops'
mode = sys.argv[2] if len(sys.argv) > 2 else 'maxprod'
bands = [-1001, -950, -900, -800, -600, -400, -200, -50, 10, 30, 60, 100, 200, 400, 1001]
def auroc(s, y):
    o = np.argsort(s, kind='mergesort'); r = np.empty(len(s)); r[o] = np.arange(1, len(s)+1)
    npos = y.sum(); nneg = len(y) - npos
    return (r[y == 1].sum() - npos*(npos+1)/2) / (npos*nneg)
def feats(v):
    hu = v * 2000 - 1000
    n, X, Y, Z = hu.shape
    p = hu.reshape(n, X//16, 16, Y//16, 16, Z//4, 4).transpose(0, 1, 3, 5, 2, 4, 6).reshape(n, -1, 1024)
    fr = np.stack([((p >= lo) & (p < hi)).mean(2) for lo, hi in zip(bands[:-1], bands[1:])], 2)  # n, P, B
    B = fr.shape[2]
    out = [fr.mean(1)]
    if mode in ('max', 'maxprod'): out.append(fr.max(1))
    if mode == 'maxprod':
        iu = np.triu_indices(B, 1)
        prod = fr[:, :, iu[0]] * fr[:, :, iu[1]]
        out.append(prod.max(1))
        out.append(np.sort(prod, 1)[:, -4:].mean(1))
    return np.concatenate(out, 1)
def fit(Xtr, y, lam, iters=30):
    w = np.zeros(Xtr.shape[1] + 1); A = np.hstack([Xtr, np.ones((len(Xtr), 1))])
    for _ in range(iters):
        z = A @ w; p = 1/(1+np.exp(-z))
        g = A.T @ (p - y) / len(y) + lam * np.r_[w[:-1], 0]
        H = (A * (p*(1-p))[:, None]).T @ A / len(y) + lam * np.diag(np.r_[np.ones(len(w)-1), 1e-9])
        w -= np.linalg.solve(H, g)
    return w
res = {}
for split in ('train', 'test'):
    meta = json.load(open(f'{d}/{split}.json'))
    X, Y, Z = meta['shape']
    v = np.memmap(f'{d}/{split}.f32', dtype='<f4', mode='r').reshape(meta['n'], X, Y, Z)
    F = np.concatenate([feats(np.asarray(v[i:i+8])) for i in range(0, meta['n'], 8)])
    res[split] = (F.astype(np.float64), np.array(meta['labels']))
Xtr, Ytr = res['train']; Xte, Yte = res['test']
mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-8
Xtr = (Xtr - mu)/sd; Xte = (Xte - mu)/sd
print(mode, 'features', Xtr.shape)
for lam in [1e-2, 1e-1, 1]:
    tr, te = [], []
    for l in range(Ytr.shape[1]):
        w = fit(Xtr, Ytr[:, l], lam)
        A = lambda X: np.hstack([X, np.ones((len(X), 1))]) @ w
        tr.append(auroc(A(Xtr), Ytr[:, l])); te.append(auroc(A(Xte), Yte[:, l]))
    print(f'L2 {lam}: train {np.mean(tr):.3f} test {np.mean(te):.3f}; per label', ' '.join(f'{x:.2f}' for x in te))
