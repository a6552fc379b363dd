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
import { max, mean } from '../../src/ops/reduce.ts';
import { add, mul, rsqrt, square, sub, addScalar, gelu } from '../../src/ops/elementwise.ts';
import { patchEmbed3d } from '../../src/ops/patch3d.ts';
import { transpose } from '../../src/ops/layout.ts';
import { initNormal, initUniform } from '../../src/nn/module.ts';
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
  // In chunks: one read is limited to 2 GiB.
  for (let off = 0; off < data.byteLength; off += 1 << 30) readSync(fd, new Uint8Array(data.buffer, off, Math.min(1 << 30, data.byteLength - off)), 0, Math.min(1 << 30, data.byteLength - off), off);
  closeSync(fd);
  return { ...meta, per, data };
}

t('probe', async () => {
  const gpu = await testGpu();
  const cfg = preset('small');
  const v = structuredClone(cfg.model.vision);
  // HIST=0: without the patch histogram (VisionConfig.patchHistogram, on in the preset).
  if (env('HIST', 1) === 0) delete v.patchHistogram;
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
  // STEM=C1: a two-stage stem instead of the single 16x16x4 Conv3d: Conv3d(1, C1, k=s=SP1) -> GELU ->
  // Conv3d(C1, E, k=s=patch/SP1), both as patch embeddings (the second cut into windows).
  const C1 = env('STEM', 0);
  const sp1 = envs('SP1', '4,4,2').split(',').map(Number) as [number, number, number];
  const sp2 = v.patch.map((p, i) => p / sp1[i]) as [number, number, number];
  const stem = C1 ? {
    w1: initNormal(gpu, [C1, 1, ...sp1], Math.sqrt(2 / (sp1[0] * sp1[1] * sp1[2])), seed + 7, 'stem.0.weight'),
    b1: initUniform(gpu, [C1], 1 / Math.sqrt(sp1[0] * sp1[1] * sp1[2]), seed + 7, 'stem.0.bias'),
    w2: initNormal(gpu, [E, C1, ...sp2], Math.sqrt(1 / (C1 * sp2[0] * sp2[1] * sp2[2])), seed + 8, 'stem.1.weight'),
    b2: initUniform(gpu, [E], 1 / Math.sqrt(C1 * sp2[0] * sp2[1] * sp2[2]), seed + 8, 'stem.1.bias'),
  } : null;
  const stemParams: Tensor[] = stem ? [stem.w1, stem.b1, stem.w2, stem.b2] : [];
  // CH=3: the volume as three HU windows (RadFinder's -1000..1000, lung -1000..-400, soft
  // tissue -160..240), each scaled to [0, 1], through one Conv3d(3, E) patch embedding.
  const CH = env('CH', 1);
  const HU_WINDOWS: [number, number][] = [[-1000, 1000], [-1000, -400], [-160, 240]];
  const chEmbed = CH > 1 ? {
    w: initNormal(gpu, [E, CH, ...v.patch], Math.sqrt(1 / (CH * v.patch[0] * v.patch[1] * v.patch[2])), seed + 9, 'pe.weight'),
    b: initUniform(gpu, [E], 1 / Math.sqrt(CH * v.patch[0] * v.patch[1] * v.patch[2]), seed + 9, 'pe.bias'),
  } : null;
  if (chEmbed) stemParams.push(chEmbed.w, chEmbed.b);
  const backboneForward = (vol: Tensor, n: number): Tensor => {
    if (chEmbed) return bb.encode(patchEmbed3d(vol, chEmbed.w, chEmbed.b, { window: v.window }), bb.tokenGrid);
    if (!stem) return bb.forward(vol);
    const g1 = [X / sp1[0], Y / sp1[1], Z / sp1[2]];
    const h1 = gelu(patchEmbed3d(vol, stem.w1, stem.b1)); // [n, T1, C1]
    const c1 = reshape(transpose(h1, 1, 2), [n, C1, g1[0], g1[1], g1[2]]);
    const win2 = v.window.map((w, i) => w / sp1[i]) as [number, number, number];
    return bb.encode(patchEmbed3d(c1, stem.w2, stem.b2, { window: win2 }), bb.tokenGrid);
  };
  const features = (vol: Tensor, n: number): Tensor => {
    const h = backboneForward(vol, n); // [n * nWin, 1 + T, E]
    const patches = slice(h, 1, 1, 1 + T);
    const cls = reshape(slice(h, 1, 0, 1), [n, nWin, E]);
    // WPOOL=max: each window's patch tokens max-pooled instead of averaged (a focal finding is a few tokens).
    const pm = reshape(envs('WPOOL', 'mean') === 'max' ? max(patches, 1) : mean(patches, 1), [n, nWin, E]);
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
    if (CH > 1) {
      const out = new Float32Array(idx.length * CH * src.per);
      idx.forEach((i, k) => {
        const x = src.data.subarray(i * src.per, (i + 1) * src.per);
        for (let c = 0; c < CH; c++) {
          const [lo, hi] = HU_WINDOWS[c], o = (k * CH + c) * src.per;
          for (let j = 0; j < src.per; j++) out[o + j] = Math.min(1, Math.max(0, (x[j] * 2000 - 1000 - lo) / (hi - lo)));
        }
      });
      return tensor(gpu, out, [idx.length, CH, X, Y, Z]);
    }
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
  const bbParams = bb.parameters().filter((p) => !(stem || chEmbed) || (p !== bb.patch_embed.proj.weight && p !== bb.patch_embed.proj.bias));
  const visionParams = new Set([...bbParams, ...cb.parameters(), ...stemParams]);
  const opt = new AdamW([...bbParams, ...cb.parameters(), ...stemParams, ...head.parameters()], {
    lr, weightDecay: 1e-4, clipNorm: env('CLIP', 1), beta1: 0.9, beta2: 0.95,
    group: (p) => ({ lrScale: visionParams.has(p) ? lrv : env('HLR', 1) }),
  });
  const pw = tensor(gpu, tr.posWeight, [18]).keep();
  const rng = new Rng(5 + seed);
  const t0_ = performance.now();
  console.log(`config: ${JSON.stringify({ hist: !!v.patchHistogram, ch: CH, stem: C1, sp1, hlr: env('HLR', 1), norm, window: process.env.WINDOW, lr, lrv, steps, B, pool, LS, cdepth, bdepth: v.backbone.depth, ntr, seed })}`);
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
