// Gradient dump of the composed model for scripts/radfinder-check/grad_check.py (a float64
// PyTorch backward of reference.py's forward). Writes into GRAD_OUT:
//   config.json, model.safetensors (weights), inputs.safetensors (crop, loss vectors, batch),
//   grads.safetensors (our gradient of every parameter that got one), outputs.safetensors.
//
//   GRAD_OUT=/tmp/gc GRAD_MODE=vision|objective GRAD_PRESET=small|mini GRAD_B=2 GRAD_GRID=1,1,4 \
//     node scripts/test-only.mjs scripts/radfinder-check/grad-dump.test.ts
// vision:    loss = sum(image * r1) + sum(disease * r2) + sum(depth * r3)  (unnormalised heads)
// pooled:    loss = sum(pooled * r) with encodeVision(..., { depth: false }) (the probe's path)
// objective: model.loss(batch).total (SigLIP + prompts + localization with its L1 term)
import { suite } from 'uvu';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testGpu } from '../../test/helpers/gpu.ts';
import { rng } from '../../test/helpers/random.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { RadFinderModel, type Batch } from '../../src/model/model.ts';
import { toRadfinderJson, type RadFinderConfig } from '../../src/model/config.ts';
import { preset } from '../../src/train/config.ts';
import { encodeVision } from '../../src/model/vision.ts';
import { weightBytes } from '../../src/model/weights.ts';
import { textBatch } from '../../src/model/text.ts';
import { encodeSafetensors, type NamedArray } from '../../src/io/safetensors.ts';

const t = suite('grad-dump');
const env = (k: string, d: string) => process.env[k] ?? d;

function config(): RadFinderConfig {
  const c = preset('small').model;
  // The float64 reference (reference.py) is RadFinder's model: without our feature BatchNorm.
  delete c.vision.featureNorm;
  c.text = { ...c.text, vocabSize: 64, eosTokenId: 3 };
  if (env('GRAD_PRESET', 'small') === 'mini')
    c.vision = {
      backbone: { ...c.vision.backbone, embedDim: 24, heads: 2 },
      combiner: { ...c.vision.combiner, heads: 2 },
      patch: [16, 16, 4],
      window: [32, 32, 16],
    };
  if (process.env.GRAD_LAYERSCALE) {
    c.vision.backbone.layerScale = Number(process.env.GRAD_LAYERSCALE);
    c.vision.combiner.layerScale = Number(process.env.GRAD_LAYERSCALE);
  }
  return c;
}

/** A CT-like crop [B, X, Y, Z] (depth fastest): air exactly 0 outside an ellipse per slice, tissue ~0.5 with blobs inside. */
function crop(B: number, X: number, Y: number, Z: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(B * X * Y * Z);
  for (let b = 0; b < B; b++) {
    const cx = X * (0.45 + 0.1 * r()), cy = Y * (0.45 + 0.1 * r()), ax = X * (0.3 + 0.1 * r()), ay = Y * (0.25 + 0.1 * r());
    const bx = X * r(), by = Y * r(), bz = Z * r(), br = 4 + 6 * r();
    for (let x = 0; x < X; x++)
      for (let y = 0; y < Y; y++)
        for (let z = 0; z < Z; z++) {
          const e = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2;
          let v = 0;
          if (e < 1) {
            v = 0.45 + 0.05 * Math.sin(0.3 * x + 0.2 * y + 0.1 * z) + 0.02 * r();
            if (e > 0.8) v = 0.7; // "bone" rim
            if ((x - bx) ** 2 + (y - by) ** 2 + ((z - bz) * 2) ** 2 < br * br) v += 0.15;
          }
          out[((b * X + x) * Y + y) * Z + z] = v;
        }
  }
  return out;
}

function texts(n: number, seed: number, maxLen: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () => [...Array.from({ length: 1 + Math.floor(r() * (maxLen - 1)) }, () => 5 + Math.floor(r() * 50)), 3]);
}

t('dump', async () => {
  const gpu = await testGpu();
  const out = env('GRAD_OUT', '/tmp/gradcheck');
  const mode = env('GRAD_MODE', 'vision');
  mkdirSync(out, { recursive: true });
  const cfg = config();
  const B = Number(env('GRAD_B', '2'));
  const grid = env('GRAD_GRID', '1,1,4').split(',').map(Number) as [number, number, number];
  const [w0, w1, w2] = cfg.vision.window;
  const [X, Y, Z] = [grid[0] * w0, grid[1] * w1, grid[2] * w2];
  const model = new RadFinderModel(gpu, cfg, Number(env('GRAD_SEED', '1')));
  const vol = crop(B, X, Y, Z, 11);
  const D2 = grid[2] * (w2 / cfg.vision.patch[2]);
  const E = cfg.head.out;
  const r = rng(21);
  const r1 = Float32Array.from({ length: B * E }, () => r() - 0.5);
  const r2 = Float32Array.from({ length: B * E }, () => r() - 0.5);
  const r3 = Float32Array.from({ length: B * D2 * E }, () => r() - 0.5);
  const inputs: Record<string, NamedArray> = { crop: { shape: [B, X, Y, Z], data: vol }, r1: { shape: [B, E], data: r1 }, r2: { shape: [B, E], data: r2 }, r3: { shape: [B, D2, E], data: r3 } };
  const outputs: Record<string, NamedArray> = {};
  const volume = ops.tensor(gpu, vol, [B, 1, X, Y, Z], 'volume');
  const Q = 5, S = 6;
  let batchJson: unknown = null;
  const loss = scope(() => {
    let l;
    if (mode === 'pooled') {
      // The probe's path: backbone + combiner without the per-depth path, loss on the pooled features.
      const f = encodeVision(model.backbone_image, model.feature_comb_image, volume, { depth: false });
      const Pd = f.pooled.shape[1];
      const rp = Float32Array.from({ length: B * Pd }, () => r() - 0.5);
      inputs.rp = { shape: [B, Pd], data: rp };
      l = ops.sum(ops.mul(f.pooled, ops.tensor(gpu, rp, [B, Pd])));
      (outputs as Record<string, unknown>).pooled = f.pooled.keep();
    } else if (mode === 'vision') {
      const e = model.encodeImage(volume);
      l = ops.add(ops.add(ops.sum(ops.mul(e.image, ops.tensor(gpu, r1, [B, E]))), ops.sum(ops.mul(e.disease, ops.tensor(gpu, r2, [B, E])))), ops.sum(ops.mul(e.depth, ops.tensor(gpu, r3, [B, D2, E]))));
      for (const [k, v] of Object.entries({ image: e.image, disease: e.disease, depth: e.depth })) (outputs as Record<string, unknown>)[k] = v.keep();
    } else {
      const rr = rng(31);
      const report = texts(B, 1, 9), prompts = texts(2 * Q, 2, 5), snippets = texts(S, 3, 6);
      const labels = Array.from({ length: B * Q }, (_, i) => [1, 0, -1, 1, 0, 0, 1][i % 7]);
      const posWeight = [1, 2, 1.5, 3, 1];
      const reportValid = Array.from({ length: B }, (_, i) => (i === B - 1 && B > 2 ? 0 : 1));
      const cases = Array.from({ length: S }, (_, i) => i % B);
      const target = Array.from({ length: S }, () => Math.floor(rr() * D2));
      const validBins = Array.from({ length: S * D2 }, (_, i) => (i % D2 === D2 - 1 && Math.floor(i / D2) % 2 ? 0 : 1));
      const binMm = model.binMm;
      const targetMm = target.map((b) => (b + 0.5) * binMm);
      batchJson = { report, prompts, snippets, labels, posWeight, reportValid, cases, target, validBins, targetMm, Q, S, binMm, promptWeight: cfg.promptWeight, loc: cfg.localization, siglipInit: cfg.siglipInit };
      const batch: Batch = {
        volume,
        report: textBatch(gpu, report, 16),
        reportValid: ops.tensor(gpu, reportValid, [B]),
        labels: ops.tensor(gpu, labels, [B, Q]),
        prompts: textBatch(gpu, prompts, 16),
        posWeight: ops.tensor(gpu, posWeight, [Q]),
        snippets: { text: textBatch(gpu, snippets, 16), case: ops.fromInts(gpu, cases, [S]), target: ops.fromInts(gpu, target, [S]), validBins: ops.tensor(gpu, validBins, [S, D2]), targetMm: ops.tensor(gpu, targetMm, [S, 1]) },
      };
      const p = model.loss(batch);
      for (const [k, v] of Object.entries({ siglip: p.siglip, prompts: p.prompts, localization: p.localization! })) (outputs as Record<string, unknown>)[k] = v.keep();
      l = p.total;
    }
    backward(l);
    return l;
  });
  const lv = await loss.item();
  console.log(`${mode}: loss ${lv}`);
  outputs.loss = { shape: [1], data: Float32Array.of(lv) };
  for (const k of Object.keys(outputs)) {
    const v = outputs[k] as unknown as { shape: number[]; floats?: () => Promise<Float32Array>; data?: Float32Array };
    if (v.floats) outputs[k] = { shape: [...v.shape], data: await v.floats() };
  }
  const grads: Record<string, NamedArray> = {};
  let none = 0;
  for (const [name, p] of model.namedParameters()) {
    if (!p.grad) { none++; continue; }
    grads[`model.${name}`] = { shape: [...p.shape], data: await p.grad.floats() };
  }
  // The text embedding keeps its table on the host; its gradient (if any) is not a tensor grad.
  console.log(`${Object.keys(grads).length} parameter gradients, ${none} parameters without one`);
  writeFileSync(join(out, 'config.json'), JSON.stringify(toRadfinderJson(cfg), null, 1));
  writeFileSync(join(out, 'model.safetensors'), await weightBytes(model));
  writeFileSync(join(out, 'inputs.safetensors'), encodeSafetensors(inputs));
  writeFileSync(join(out, 'grads.safetensors'), encodeSafetensors(grads));
  writeFileSync(join(out, 'outputs.safetensors'), encodeSafetensors(outputs));
  writeFileSync(join(out, 'meta.json'), JSON.stringify({ mode, B, grid, batch: batchJson }));
  model.dispose();
});
t.run();
