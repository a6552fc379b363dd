// The whole model on a tiny configuration: shapes, every parameter reached by the gradient,
// directional derivatives of the total loss against central differences (the wiring
// between the ops; each op's own gradient is checked against float64 in test/ops), and a
// few optimizer steps that lower the loss on a fixed batch.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { rng } from '../helpers/random.ts';
import * as ops from '../../src/ops/index.ts';
import { backward, noGrad } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { CtClipModel, type Batch, type ModelConfig } from '../../src/model/model.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

const t = suite('model');

const cfg: ModelConfig = {
  vision: { dim: 16, heads: 2, localDepth: 1, globalDepth: 1, patch: [4, 4, 2], window: [8, 8, 4], ropeBase: 100, globalRopeBase: 50 },
  text: { dim: 16, heads: 2, depth: 1, vocab: 40, ropeBase: 100 },
  embed: 12,
  tau: 0.1,
  promptWeight: 0.5,
  locWeight: 1,
  l1Weight: 0.01,
  sigma: 2,
  binMm: 6,
};

function batch(gpu: Gpu): Batch {
  const r = rng(5);
  const B = 3, Z = 8, Y = 8, X = 16, L = 7, Q = 4, S = 4, bins = Z / 2;
  const ints = (n: number, hi: number) => Array.from({ length: n }, () => Math.floor(r() * hi));
  const textIds = (n: number, len: number) => {
    const ids = ints(n * len, 35).map((v) => v + 5);
    for (let i = 0; i < n; i++) ids[i * len] = 2; // [CLS]
    return ids;
  };
  const mask = (n: number, len: number, lengths: number[]) => Array.from({ length: n * len }, (_, i) => (i % len < lengths[Math.floor(i / len)] ? 1 : 0));
  return {
    volume: ops.tensor(gpu, Float32Array.from({ length: B * Z * Y * X }, () => r()), [B, 1, Z, Y, X], 'volume'),
    reportIds: ops.fromInts(gpu, textIds(B, L), [B, L]),
    reportMask: ops.tensor(gpu, mask(B, L, [7, 5, 3]), [B, L]),
    reportValid: ops.tensor(gpu, [1, 1, 1], [B]),
    labels: ops.tensor(gpu, Array.from({ length: B * Q }, (_, i) => [1, 0, -1][i % 3]), [B, Q]),
    promptIds: ops.fromInts(gpu, textIds(2 * Q, 4), [2 * Q, 4]),
    promptMask: ops.tensor(gpu, new Array(2 * Q * 4).fill(1), [2 * Q, 4]),
    posWeight: ops.tensor(gpu, [1, 2, 1, 3], [Q]),
    snippets: {
      ids: ops.fromInts(gpu, textIds(S, 5), [S, 5]),
      mask: ops.tensor(gpu, mask(S, 5, [5, 4, 5, 3]), [S, 5]),
      case: ops.fromInts(gpu, [0, 0, 1, 2], [S]),
      target: ops.fromInts(gpu, [1, 3, 0, 2], [S]),
      validBins: ops.tensor(gpu, Array.from({ length: S * bins }, (_, i) => (i % bins === bins - 1 && i >= 2 * bins ? 0 : 1)), [S, bins]),
      targetMm: ops.tensor(gpu, [9, 21, 3, 15], [S, 1]),
    },
  };
}

t('forward shapes and a finite loss; every parameter gets a gradient', async () => {
  const gpu = await testGpu();
  const model = new CtClipModel(gpu, cfg, 1);
  const b = batch(gpu);
  const parts = scope(() => {
    const { image, depth } = model.embedVolume(b.volume);
    assert.equal([...image.shape], [3, cfg.embed]);
    assert.equal([...depth.shape], [3, 4, cfg.embed]);
    const p = model.loss(b);
    backward(p.total);
    return p;
  });
  for (const [name, x] of Object.entries({ total: parts.total, siglip: parts.siglip, prompts: parts.prompts, localization: parts.localization! }))
    assert.ok(Number.isFinite(await x.item()), `${name} is finite`);
  assert.equal([...parts.depthHead!.shape], [4, 3]);
  const missing = model.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
  assert.equal(missing, [], 'parameters without a gradient');
  for (const [name, p] of model.namedParameters()) {
    const g = await p.grad!.floats();
    assert.ok(g.every(Number.isFinite), `${name}: finite gradient`);
  }
  model.dispose();
});

t('directional derivatives of the loss match central differences', async () => {
  const gpu = await testGpu();
  const model = new CtClipModel(gpu, cfg, 2);
  const b = batch(gpu);
  const lossAt = async () => {
    const l = noGrad(() => scope(() => model.loss(b).total));
    const v = await l.item();
    l.dispose();
    return v;
  };
  scope(() => backward(model.loss(b).total));
  const named = Object.fromEntries(model.namedParameters());
  for (const name of ['vision.embed.weight', 'text.tokens', 'depthHeadProj.mlp.layers.1.weight', 'logScale', 'vision.global.0.qkv.weight', 'vision.cls']) {
    const p = named[name];
    assert.ok(p, name);
    const r = rng(name.length);
    const dir = Float32Array.from({ length: p.size }, () => r() - 0.5);
    const base = await p.floats();
    const grad = await p.grad!.floats();
    let analytic = 0;
    for (let i = 0; i < p.size; i++) analytic += grad[i] * dir[i];
    // A step of 0.5% of the parameter's own scale: small against the curvature, large
    // against f32 roundoff of the loss.
    const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const h = (5e-3 * Math.max(rms(base), 1e-2)) / rms(dir);
    const set = (s: number) => gpu.upload(p.buffer, base.map((v, i) => v + s * h * dir[i]));
    set(1);
    const lp = await lossAt();
    set(-1);
    const lm = await lossAt();
    set(0);
    const numeric = (lp - lm) / (2 * h);
    // f32 forward passes: the difference quotient is good to ~1e-3 relative here.
    assert.ok(Math.abs(numeric - analytic) <= 2e-2 * Math.abs(analytic) + 2e-4, `${name}: numeric ${numeric} vs analytic ${analytic}`);
  }
  model.dispose();
});

t('a few AdamW steps on one batch lower the loss', async () => {
  const gpu = await testGpu();
  const model = new CtClipModel(gpu, cfg, 3);
  const opt = new ops.AdamW(model.parameters(), { lr: 3e-3, clipNorm: 1 });
  const b = batch(gpu);
  const losses: number[] = [];
  for (let i = 0; i < 25; i++) {
    const l = scope(() => {
      const p = model.loss(b);
      backward(p.total);
      opt.step();
      opt.zeroGrad();
      return p.total;
    });
    if (i === 0 || i === 24) losses.push(await l.item());
    l.dispose();
  }
  assert.ok(losses[1] < losses[0] * 0.7, `loss ${losses[0]} -> ${losses[1]}`);
  opt.dispose();
  model.dispose();
});

t.run();
