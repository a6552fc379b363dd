// A diagnostic, not a test: how much of the 18 labels a logistic regression reads from the raw
// mean intensity of each patch of the evaluation crop (the small preset: 16x16x4 patches of 6 x
// 6 x 3 mm voxels, 512 numbers per case), per label on the train and test splits. The ceiling
// of what 6 mm voxels show (see README "Learning").
//
//   PROBE_DATA=runs/quickstart/data/manifest.jsonl node scripts/test-only.mjs scripts/probe-patch-means.test.ts
import { suite } from 'uvu';
import { CtDataset } from '../src/data/dataset.ts';
import { preset } from '../src/train/config.ts';
import { auroc, macroMean } from '../src/eval/metrics.ts';
import { LABELS } from '../src/data/labels.ts';
const t = suite('lr');
t('logistic regression on raw patch means', async () => {
  const cfg = preset('small');
  const man = process.env.PROBE_DATA ?? 'runs/quickstart/data/manifest.jsonl';
  const feats = async (split: 'train' | 'test') => {
    const ds = await CtDataset.open(man, { split, config: cfg.data });
    const X: Float64Array[] = [], Y: Int8Array[] = [];
    for (let i = 0; i < ds.size; i++) {
      const c = await ds.prepare(i, 'eval', 0);
      const [Z, Yn, Xn] = c.shape;
      const [px, py, pz] = cfg.data.patch;
      const nx = Xn / px, ny = Yn / py, nz = Z / pz;
      const f = new Float64Array(nx * ny * nz);
      for (let z = 0; z < Z; z++) for (let y = 0; y < Yn; y++) for (let x = 0; x < Xn; x++) f[(Math.floor(z / pz) * ny + Math.floor(y / py)) * nx + Math.floor(x / px)] += c.volume[(z * Yn + y) * Xn + x] / (px * py * pz);
      X.push(f); Y.push(c.labels);
    }
    return { X, Y };
  };
  const tr = await feats('train'), te = await feats('test');
  const D = tr.X[0].length;
  const mu = new Float64Array(D), sd = new Float64Array(D);
  tr.X.forEach((f) => f.forEach((v, i) => (mu[i] += v / tr.X.length)));
  tr.X.forEach((f) => f.forEach((v, i) => (sd[i] += (v - mu[i]) ** 2 / tr.X.length)));
  const norm = (f: Float64Array) => f.map((v, i) => (v - mu[i]) / (Math.sqrt(sd[i]) + 1e-6));
  const Xtr = tr.X.map(norm), Xte = te.X.map(norm);
  const per: number[] = [], perTr: number[] = [];
  for (let q = 0; q < 18; q++) {
    const w = new Float64Array(D); let b = 0;
    const idx = Xtr.map((_, i) => i).filter((i) => tr.Y[i][q] >= 0);
    for (let it = 0; it < 300; it++) {
      const g = new Float64Array(D); let gb = 0;
      for (const i of idx) { let z = b; for (let k = 0; k < D; k++) z += w[k] * Xtr[i][k]; const p = 1 / (1 + Math.exp(-z)); const e = p - tr.Y[i][q]; gb += e; for (let k = 0; k < D; k++) g[k] += e * Xtr[i][k]; }
      for (let k = 0; k < D; k++) w[k] -= 0.05 * (g[k] / idx.length + 1e-2 * w[k]);
      b -= 0.05 * gb / idx.length;
    }
    const score = (X: Float64Array[]) => X.map((f) => { let z = b; for (let k = 0; k < D; k++) z += w[k] * f[k]; return z; });
    per.push(auroc(score(Xte), te.Y.map((y) => y[q])));
    perTr.push(auroc(score(Xtr), tr.Y.map((y) => y[q])));
  }
  console.log(`LR on ${D} patch means: test macro AUROC ${macroMean(per).toFixed(3)}, train ${macroMean(perTr).toFixed(3)}`);
  LABELS.forEach((l, q) => console.log(`  ${l}: test ${per[q].toFixed(2)} train ${perTr[q].toFixed(2)}`));
});
t.run();
