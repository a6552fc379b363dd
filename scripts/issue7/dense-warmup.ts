// Issue 7 experiment (sessions 26-27), not part of the model: a dense warm-up of the window
// backbone. Before the joint training, DW_STEPS steps of per-patch-token BCE: a Linear(E, 18)
// head on every patch token of every window predicts which findings the token's patch holds
// (masks from dense-masks.test.ts in DW_MASKS: a label counts when at least DW_MIN voxels of
// the patch carry it), pos_weight per label from the tokens' frequencies (capped at DW_PWMAX).
// The stand-in for RadFinder's pretrained window backbone: a backbone that has learned where
// findings are. Then (DW_EVAL=1, or after each step of DW_EVAL_AT=300,1000) the test split's
// and 100 training cases' tokens are scored per label: every token against its own target, and
// each case's largest token logit against the case label (AUROC); the joint training runs on.
// To run it, in a scratch clone or worktree: `git apply scripts/issue7/dense-warmup.patch`
// (the call after the text warm-up in src/train/trainer.ts; and DW_FREEZE=1, which detaches
// the window backbone's output in encodeVision, so that the joint training leaves the
// warmed-up backbone as it is, as RadFinder freezes its pretrained one), `node build.mjs`, then
//   DW_STEPS=300 [DW_FREEZE=1] node dist/cli.js train --data runs/quickstart/data --out runs/dw300 --steps 800
// (README.md, "Sessions 26-27", has the numbers).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { CtDataset, type PreparedCase } from '../../src/data/dataset.ts';
import { cropAndFlip, type CropSpec } from '../../src/data/crop.ts';
import { identityAffine } from '../../src/data/volume.ts';
import type { RadFinderModel } from '../../src/model/model.ts';
import { toDepthFastest } from '../../src/model/inputs.ts';
import { Linear } from '../../src/nn/layers.ts';
import { AdamW } from '../../src/optim/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { tensor } from '../../src/ops/creation.ts';
import { reshape, slice } from '../../src/ops/layout.ts';
import { bceWithLogits } from '../../src/ops/crossentropy.ts';
import { mixSeed } from '../../src/rng.ts';
import { auroc, macroMean } from '../../src/eval/metrics.ts';
import { LABELS } from '../../src/data/labels.ts';
import { learningRate, type TrainConfig } from '../../src/train/config.ts';
import { prepareStep } from '../../src/train/step.ts';

const env = (k: string, d: number) => Number(process.env[k] ?? d);

// The crops as the model takes them ([B, 1, X, Y, Z], depth fastest; src/model/inputs.ts).
function volumeOf(gpu: Gpu, cases: PreparedCase[]) {
  const [Z, Y, X] = cases[0]!.shape;
  const n = Z * Y * X;
  const vol = new Float32Array(cases.length * n);
  cases.forEach((c, i) => toDepthFastest(c.volume, c.shape, vol, i * n));
  return tensor(gpu, vol, [cases.length, 1, X, Y, Z], 'volume');
}

export async function denseWarmup(gpu: Gpu, model: RadFinderModel, trainSet: CtDataset, manifest: string, cfg: TrainConfig, log: (l: string) => void): Promise<void> {
  const steps = env('DW_STEPS', 0);
  if (steps <= 0) return;
  const dir = process.env.DW_MASKS ?? '/tmp/dw';
  const minVox = env('DW_MIN', 2);
  const Q = LABELS.length;
  const bb = model.backbone_image;
  const E = bb.cfg.backbone.embedDim;
  const [t0, t1, t2] = bb.tokenGrid;
  const T = t0 * t1 * t2;
  const [wx, wy, wz] = bb.cfg.window;
  const [px, py, pz] = bb.cfg.patch;
  // Read per use, not kept: the 1147 masks of the main job's data are about 4 GB as floats.
  const mask = (id: string) => {
    const u = new Uint32Array(readFileSync(join(dir, `${id}.bin`)).buffer.slice(0));
    return { shape: [u[0]!, u[1]!, u[2]!] as [number, number, number], bits: Float32Array.from(u.subarray(3)) };
  };
  // Per token of the batch (windows (ih, iw, id) id fastest, tokens (ph, pw, pd) pd fastest), the labels its patch holds.
  const targets = (id: string, crop: CropSpec, shapeZYX: number[], out: Float32Array, off: number) => {
    const m = mask(id);
    const v = cropAndFlip({ data: m.bits, shape: m.shape, spacing: [1, 1, 1], affine: identityAffine() }, crop);
    const [X, Y] = [v.shape[0], v.shape[1]];
    const [, , Zc] = v.shape;
    if (Zc !== shapeZYX[0] || Y !== shapeZYX[1] || X !== shapeZYX[2]) throw new Error(`${id}: mask crop ${v.shape} against the volume's ${shapeZYX}`);
    const G = [X / wx, Y / wy, Zc / wz];
    const counts = new Int32Array(Q);
    for (let a = 0; a < G[0]!; a++)
      for (let b = 0; b < G[1]!; b++)
        for (let c = 0; c < G[2]!; c++) {
          const w = (a * G[1]! + b) * G[2]! + c;
          for (let i = 0; i < t0; i++)
            for (let j = 0; j < t1; j++)
              for (let k = 0; k < t2; k++) {
                counts.fill(0);
                const x0 = a * wx + i * px, y0 = b * wy + j * py, z0 = c * wz + k * pz;
                for (let z = z0; z < z0 + pz; z++)
                  for (let y = y0; y < y0 + py; y++) {
                    const base = (z * Y + y) * X;
                    for (let x = x0; x < x0 + px; x++) {
                      let bits = v.data[base + x]!;
                      if (bits === 0) continue;
                      for (let l = 0; bits > 0; l++, bits = Math.floor(bits / 2)) if (bits % 2 === 1) counts[l]++;
                    }
                  }
                const row = off + (w * T + (i * t1 + j) * t2 + k) * Q;
                for (let l = 0; l < Q; l++) out[row + l] = counts[l]! >= minVox ? 1 : 0;
              }
        }
  };
  const rowsOf = (cases: PreparedCase[]) => {
    const nWin = (cases[0]!.shape[2] / wx) * (cases[0]!.shape[1] / wy) * (cases[0]!.shape[0] / wz);
    return nWin * T;
  };

  // pos_weight from the tokens of 64 training cases' first crops.
  const pos = new Float64Array(Q);
  let total = 0;
  for (let s = 0; s < 8; s++) {
    const cases = await prepareStep(trainSet, cfg, 2_000_000 + s);
    const R = rowsOf(cases);
    const y = new Float32Array(cases.length * R * Q);
    cases.forEach((c, b) => targets(c.id, c.crop, c.shape, y, b * R * Q));
    for (let r = 0; r < y.length; r += Q) for (let l = 0; l < Q; l++) pos[l] += y[r + l]!;
    total += cases.length * R;
  }
  const pwMax = env('DW_PWMAX', 50);
  const pwHost = Array.from(pos, (p) => Math.min(pwMax, p > 0 ? (total - p) / p : pwMax));
  log(`dense warm-up: token positives per 1000 ${Array.from(pos, (p) => ((1000 * p) / total).toFixed(1)).join(' ')}`);

  const head = new Linear(gpu, E, Q, { seed: mixSeed(cfg.seed, 0xde45), name: 'dense_head' });
  const lr = cfg.lr * env('DW_LRX', 1);
  const opt = new AdamW([...bb.parameters(), ...head.parameters()], { lr, beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm, group: (p) => (p.rank <= 1 ? { weightDecay: 0 } : {}) });
  const schedule: TrainConfig = { ...cfg, lr, steps, warmupSteps: Math.ceil(0.1 * steps) };
  const pw = tensor(gpu, pwHost, [Q], 'posWeight');
  const logits = (vol: Parameters<typeof bb.forward>[0]) => {
    const h = bb.forward(vol); // [B * nWin, 1 + T, E]
    const n = h.shape[0]! * T;
    return head.forward(reshape(slice(h, 1, 1, 1 + T), [n, E]));
  };
  const score = async (set: CtDataset, n: number, name: string) => {
    const m = Math.min(n, set.size);
    const maxes: number[][] = [];
    const labels: number[][] = [];
    // Token level: every token's logit against its own target (can the features find the
    // finding at all, whatever the case-level aggregation).
    const tokScores: number[][] = LABELS.map(() => []);
    const tokLabels: number[][] = LABELS.map(() => []);
    for (let i0 = 0; i0 < m; i0 += 8) {
      const cases = await Promise.all(Array.from({ length: Math.min(8, m - i0) }, (_, j) => set.prepare(i0 + j, 'eval', 0)));
      const R = rowsOf(cases);
      const z = scope(() => logits(volumeOf(gpu, cases)));
      const host = await z.floats();
      z.dispose();
      const y = new Float32Array(cases.length * R * Q);
      cases.forEach((c, b) => targets(c.id, c.crop, c.shape, y, b * R * Q));
      for (let r = 0; r < cases.length * R; r++)
        for (let l = 0; l < Q; l++) {
          tokScores[l]!.push(host[r * Q + l]!);
          tokLabels[l]!.push(y[r * Q + l]!);
        }
      cases.forEach((c, b) => {
        const mx = new Array(Q).fill(-Infinity);
        for (let r = 0; r < R; r++) for (let l = 0; l < Q; l++) mx[l] = Math.max(mx[l], host[(b * R + r) * Q + l]!);
        maxes.push(mx);
        labels.push(Array.from(c.labels));
      });
    }
    const per = LABELS.map((_, l) => auroc(maxes.map((r) => r[l]), labels.map((r) => r[l])));
    const tok = LABELS.map((_, l) => auroc(tokScores[l]!, tokLabels[l]!));
    log(`dense warm-up ${name} (${m} cases): token-level macro AUROC ${macroMean(tok).toFixed(3)}; ${LABELS.map((n, l) => `${n} ${tok[l]!.toFixed(2)}`).join(', ')}`);
    log(`dense warm-up ${name} (${m} cases): max-token macro AUROC ${macroMean(per).toFixed(3)}; ${LABELS.map((n, l) => `${n} ${per[l]!.toFixed(2)}`).join(', ')}`);
  };
  // DW_EVAL_AT: the steps after which to score (default: the last, when DW_EVAL is on).
  const evalAt = new Set((process.env.DW_EVAL_AT ?? (env('DW_EVAL', 1) ? String(steps) : '')).split(',').filter(Boolean).map(Number));
  const testSet = await CtDataset.open(manifest, { split: 'test', config: cfg.data, cache: false });
  const evaluate = async (step: number) => {
    if (!evalAt.has(step)) return;
    log(`dense warm-up: scores after ${step} steps`);
    await score(testSet, 1000, 'test');
    await score(trainSet, 100, 'train');
  };
  const t00 = performance.now();
  let next = prepareStep(trainSet, cfg, 1_000_000);
  for (let step = 0; step < steps; step++) {
    const cases = await next;
    if (step + 1 < steps) next = prepareStep(trainSet, cfg, 1_000_001 + step);
    opt.lr = learningRate(schedule, step);
    const R = rowsOf(cases);
    const yHost = new Float32Array(cases.length * R * Q);
    cases.forEach((c, b) => targets(c.id, c.crop, c.shape, yHost, b * R * Q));
    const l = scope(() => {
      const bce = bceWithLogits(logits(volumeOf(gpu, cases)), tensor(gpu, yHost, [cases.length * R, Q], 'targets'), pw);
      backward(bce);
      opt.step();
      opt.zeroGrad();
      return bce;
    });
    gpu.flush();
    if ((step + 1) % 25 === 0 || step + 1 === steps) log(`dense warm-up ${step + 1}/${steps} BCE ${(await l.item()).toFixed(4)} ${((performance.now() - t00) / (step + 1)).toFixed(0)} ms/step`);
    l.dispose();
    await evaluate(step + 1);
  }
  opt.dispose();
  pw.dispose();

  head.dispose();
  log(`dense warm-up: ${((performance.now() - t00) / 1000).toFixed(0)} s`);
}
