// Vision probe on cached crops (scripts/issue7/cache-crops.test.ts), with the remedies of issue 7
// as switches. The model is the small preset's window backbone + feature combiner (global path)
// + a linear head on the 18 labels, BCE with pos_weight, AdamW (0.9, 0.95), clip 1, warm-up 20,
// cosine. Prints train / test macro AUROC every EVAL steps.
//
//   CACHE=/tmp/g7crops [STEPS=300] [B=8] [LR=2e-3] [LRV=1 (vision lr multiple)] [POOL=both|cls|mean|tokmean]
//   [LS=1 (LayerScale init)] [CDEPTH=2] [BDEPTH=2] [NTRAIN=236] [EVAL=100] [SEED=0] [CLIP=1]
//   [HLR=1 (head lr multiple)] [NORM=none|bn|center (batch mean removed, no scaling)] [WINDOW=lo,hi (HU)]
//   [FEATS_AFTER=FILE (dump pooled features after training)]
//   [FEATS=FILE (dump pooled features at init of train+test and exit)] [PRE=0]
//     node scripts/test-only.mjs scripts/issue7/probe2.test.ts
import { suite } from 'uvu';
import { readFileSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testGpu } from '../../test/helpers/gpu.ts';
import { preset } from '../../src/train/config.ts';
import { FeatureCombiner, WindowBackbone } from '../../src/model/vision.ts';
import { Linear } from '../../src/nn/layers.ts';
import { backward, noGrad } from '../../src/autograd.ts';
import { scope, type Tensor } from '../../src/tensor.ts';
import { AdamW } from '../../src/optim/index.ts';
import { bceWithLogits } from '../../src/ops/crossentropy.ts';
import { tensor } from '../../src/ops/creation.ts';
import { concat, reshape, slice } from '../../src/ops/layout.ts';
import { mean } from '../../src/ops/reduce.ts';
import { add, mul, rsqrt, square, sub, addScalar } from '../../src/ops/elementwise.ts';
import { auroc, macroMean } from '../../src/eval/metrics.ts';
import { Rng } from '../../src/rng.ts';

const t = suite('probe2');
const env = (k: string, d: number) => Number(process.env[k] ?? d);
const envs = (k: string, d: string) => process.env[k] ?? d;

function load(dir: string, split: string) {
  const meta = JSON.parse(readFileSync(join(dir, `${split}.json`), 'utf8')) as { shape: number[]; n: number; labels: number[][]; posWeight: number[] };
  const per = meta.shape[0] * meta.shape[1] * meta.shape[2];
  const data = new Float32Array(meta.n * per);
  const fd = openSync(join(dir, `${split}.f32`), 'r');
  readSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, 0);
  closeSync(fd);
  return { ...meta, per, data };
}

t('probe', async () => {
  const gpu = await testGpu();
  const cfg = preset('small');
  const v = structuredClone(cfg.model.vision);
  const LS = env('LS', 1);
  v.backbone.layerScale = LS;
  v.combiner.layerScale = LS;
  v.backbone.depth = env('BDEPTH', v.backbone.depth);
  const cdepth = env('CDEPTH', v.combiner.depth);
  v.combiner.depth = Math.max(cdepth, 1);
  const pool = envs('POOL', 'both');
  const lr = env('LR', 2e-3), lrv = env('LRV', 1), steps = env('STEPS', 300), B = env('B', 8), evalEvery = env('EVAL', 100);
  const dir = envs('CACHE', '/tmp/g7crops');
  const tr = load(dir, 'train'), te = load(dir, 'test');
  const ntr = Math.min(env('NTRAIN', tr.n), tr.n);
  const [X, Y, Z] = tr.shape;
  const E = v.backbone.embedDim;
  const seed = env('SEED', 0);
  const bb = new WindowBackbone(gpu, v, seed), cb = new FeatureCombiner(gpu, v, seed + 1);
  const fdim = pool === 'both' ? 2 * E : E;
  const head = new Linear(gpu, fdim, 18, { seed: seed + 3, name: 'head' });

  const [w0, w1, w2] = v.window;
  const grid = [X / w0, Y / w1, Z / w2] as [number, number, number];
  const nWin = grid[0] * grid[1] * grid[2];
  const [t0, t1, t2] = bb.tokenGrid;
  const T = t0 * t1 * t2;
  /** The global path of encodeVision, with the pooling and the combiner depth as options. */
  const features = (vol: Tensor, n: number): Tensor => {
    const h = bb.forward(vol); // [n * nWin, 1 + T, E]
    const patches = slice(h, 1, 1, 1 + T);
    const cls = reshape(slice(h, 1, 0, 1), [n, nWin, E]);
    const pm = reshape(mean(patches, 1), [n, nWin, E]);
    if (pool === 'tokmean') return mean(reshape(patches, [n, nWin * T, E]), 1); // mean of every backbone patch token, no combiner
    if (cdepth === 0) {
      // no combiner: [mean over windows of the backbone CLS ; of the patch means]
      if (pool === 'cls') return mean(cls, 1);
      if (pool === 'mean') return mean(pm, 1);
      return concat([mean(cls, 1), mean(pm, 1)], 1);
    }
    const g = cb.encode(cb.patch_proj.forward(concat([cls, pm], 2)), grid);
    const gc = reshape(slice(g, 1, 0, 1), [n, E]);
    const gm = mean(slice(g, 1, 1, 1 + nWin), 1);
    if (pool === 'cls') return gc;
    if (pool === 'mean') return gm;
    return concat([gc, gm], 1);
  };
  // WINDOW=lo,hi (HU): re-window the [0, 1] = -1000..1000 HU input to lo..hi -> [0, 1], clipped.
  const win = process.env.WINDOW?.split(',').map(Number);
  const volOf = (src: typeof tr, idx: number[]) => {
    const out = new Float32Array(idx.length * src.per);
    idx.forEach((i, k) => out.set(src.data.subarray(i * src.per, (i + 1) * src.per), k * src.per));
    if (win) for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, (out[i] * 2000 - 1000 - win[0]) / (win[1] - win[0])));
    return tensor(gpu, out, [idx.length, 1, X, Y, Z]);
  };
  // NORM=bn: batch standardisation of the pooled features before the head (batch statistics in
  // training, running averages at evaluation; no affine).
  const norm = envs('NORM', 'none');
  let runMean = new Float32Array(fdim), runVar = new Float32Array(fdim).fill(1);
  let training = false;
  const pending: Tensor[] = [];
  const headOf = (x: Tensor): Tensor => {
    if (norm !== 'bn' && norm !== 'center') return head.forward(x);
    if (training) {
      const mu = mean(x, 0, true);
      const c = sub(x, mu);
      const va = mean(square(c), 0, true);
      pending.push(mu.keep(), va.keep());
      return head.forward(norm === 'center' ? c : mul(c, rsqrt(addScalar(va, 1e-5))));
    }
    const mu = tensor(gpu, runMean, [1, fdim]);
    const sd = tensor(gpu, runVar.map((q) => (norm === 'center' ? 1 : 1 / Math.sqrt(q + 1e-5))), [1, fdim]);
    return head.forward(mul(sub(x, mu), sd));
  };
  const flushStats = async () => {
    while (pending.length) {
      const a = pending.shift()!, b = pending.shift()!;
      const mu = await a.floats(), va = await b.floats();
      a.dispose();
      b.dispose();
      runMean = runMean.map((q, i) => 0.9 * q + 0.1 * mu[i]);
      runVar = runVar.map((q, i) => 0.9 * q + 0.1 * va[i]);
    }
  };
  const run = async (src: typeof tr, idx: number[], f: (x: Tensor) => Tensor, width: number) => {
    const all: number[][] = [];
    for (let i = 0; i < idx.length; i += 8) {
      const part = idx.slice(i, i + 8);
      const l = noGrad(() => scope(() => f(features(volOf(src, part), part.length))));
      const fl = await l.floats();
      l.dispose();
      part.forEach((_, k) => all.push(Array.from(fl.subarray(k * width, (k + 1) * width))));
    }
    return all;
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  if (process.env.FEATS) {
    const ftr = await run(tr, range(tr.n), (x) => x, fdim);
    const fte = await run(te, range(te.n), (x) => x, fdim);
    writeFileSync(process.env.FEATS, JSON.stringify({ train: ftr, test: fte, ytrain: tr.labels, ytest: te.labels }));
    console.log(`features ${fdim} written to ${process.env.FEATS}`);
    return;
  }
  const trEvalIdx = range(Math.min(ntr, 80));
  const teEvalIdx = range(Math.min(te.n, 111));
  let lastPer: number[] = [];
  const score = async (src: typeof tr, idx: number[]) => {
    const s = await run(src, idx, (x) => headOf(x), 18);
    lastPer = Array.from({ length: 18 }, (_, q) => auroc(s.map((r) => r[q]), idx.map((i) => src.labels[i][q])));
    return macroMean(lastPer);
  };
  const visionParams = new Set([...bb.parameters(), ...cb.parameters()]);
  const opt = new AdamW([...bb.parameters(), ...cb.parameters(), ...head.parameters()], {
    lr, weightDecay: 1e-4, clipNorm: env('CLIP', 1), beta1: 0.9, beta2: 0.95,
    group: (p) => ({ lrScale: visionParams.has(p) ? lrv : env('HLR', 1) }),
  });
  const pw = tensor(gpu, tr.posWeight, [18]).keep();
  const rng = new Rng(5 + seed);
  const t0_ = performance.now();
  console.log(`config: ${JSON.stringify({ hlr: env('HLR', 1), norm, window: process.env.WINDOW, lr, lrv, steps, B, pool, LS, cdepth, bdepth: v.backbone.depth, ntr, seed })}`);
  console.log(`step 0 train AUROC ${(await score(tr, trEvalIdx)).toFixed(3)} test ${(await score(te, teEvalIdx)).toFixed(3)}`);
  let lsum = 0, ln = 0;
  for (let s = 0; s < steps; s++) {
    const idx = Array.from({ length: B }, () => Math.floor(rng.next() * ntr));
    const labels = new Float32Array(B * 18);
    idx.forEach((i, k) => labels.set(tr.labels[i], k * 18));
    opt.lr = s < 20 ? (lr * (s + 1)) / 20 : lr * 0.5 * (1 + Math.cos((Math.PI * (s - 20)) / (steps - 20)));
    const loss = scope(() => {
      training = true;
      const l = bceWithLogits(headOf(features(volOf(tr, idx), B)), tensor(gpu, labels, [B, 18]), pw);
      training = false;
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    await flushStats();
    lsum += await loss.item();
    ln++;
    loss.dispose();
    if ((s + 1) % evalEvery === 0 || s + 1 === steps)
      console.log(`step ${s + 1} loss ${(lsum / ln).toFixed(3)} train AUROC ${(await score(tr, trEvalIdx)).toFixed(3)} test ${(await score(te, teEvalIdx)).toFixed(3)} (${((performance.now() - t0_) / (s + 1)).toFixed(0)} ms/step)`), (lsum = 0), (ln = 0);
  if (s + 1 === steps) console.log(`step final: per-label test AUROC ${lastPer.map((x) => x.toFixed(2)).join(' ')}`);
  }
  if (process.env.FEATS_AFTER) {
    // the trained backbone + combiner's pooled features (before any BN), for linprobe.py
    const ftr = await run(tr, range(tr.n), (x) => x, fdim);
    const fte = await run(te, range(te.n), (x) => x, fdim);
    writeFileSync(process.env.FEATS_AFTER, JSON.stringify({ train: ftr, test: fte, ytrain: tr.labels, ytest: te.labels }));
    console.log(`step final: features after training written to ${process.env.FEATS_AFTER}`);
  }
});
t.run();
