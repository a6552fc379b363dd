#!/usr/bin/python3
# HU-band histograms of the cached crops (whole crop + 8 octants) -> the logistic regression of linprobe.py:
# what 6 mm voxels show to location-free hand-made features.  /usr/bin/python3 scripts/issue7/oracle.py [CACHE_DIR]

import json, sys
import numpy as np
sys.path.insert(0, __import__('os').path.dirname(__file__))
from linprobe import fit
d = sys.argv[1] if len(sys.argv) > 1 else '/tmp/g7crops'
bands = [-1001, -980, -950, -900, -800, -600, -400, -200, -100, -30, 10, 30, 60, 100, 200, 400, 1001]
def feats(v):
    hu = v * 2000 - 1000
    n = v.shape[0]
    out = []
    # HU histogram of the whole crop and of 8 coarse regions (2 x 2 x 2)
    X, Y, Z = v.shape[1:]
    regs = [(slice(None), slice(None), slice(None))] + [(slice(i*X//2,(i+1)*X//2), slice(j*Y//2,(j+1)*Y//2), slice(k*Z//2,(k+1)*Z//2)) for i in range(2) for j in range(2) for k in range(2)]
    for r in regs:
        h = hu[:, r[0], r[1], r[2]].reshape(n, -1)
        for lo, hi in zip(bands[:-1], bands[1:]):
            out.append(((h >= lo) & (h < hi)).mean(1))
    return np.stack(out, 1)
res = {}
for split in ('train', 'test'):
    meta = json.load(open(f'{d}/{split}.json'))
    X, Y, Z = meta['shape']
    v = np.memmap(f'{d}/{split}.f32', dtype='<f4', mode='r').reshape(meta['n'], X, Y, Z)
    F = np.concatenate([feats(np.asarray(v[i:i+16])) for i in range(0, meta['n'], 16)])
    res[split] = (F.astype(np.float64), np.array(meta['labels']))
Xtr, Ytr = res['train']; Xte, Yte = res['test']
print('features', Xtr.shape)
for lam in [1e-3, 1e-2, 1e-1]:
    tr, te, per = fit(Xtr, Ytr, Xte, Yte, lam)
    print(f'L2 {lam}: train {tr:.3f} test {te:.3f}; per label', ' '.join(f'{x:.2f}' for x in per))
