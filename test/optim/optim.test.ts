// SGD (momentum, weight decay), AdamW and gradient clipping against float64 replays of
// the update rules over several steps.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, randomValues } from '../helpers/check.ts';
import * as ops from '../../src/ops/index.ts';
import { AdamW, SGD } from '../../src/optim/index.ts';

const t = suite('optim');
const TOL = { rtol: 1e-5, atol: 1e-6 };

/** One float64 AdamW step t in place (lr 0.01, betas 0.9 / 0.95, eps 1e-8, weight decay 0.1,
 * or the parameter group's lr multiple and decay). */
function adamwRef(P: Float64Array, M: Float64Array, V: Float64Array, g: Float32Array, t: number, group: { lrScale?: number; weightDecay?: number }): void {
  const lr = 0.01 * (group.lrScale ?? 1);
  const wd = group.weightDecay ?? 0.1;
  for (let i = 0; i < g.length; i++) {
    M[i] = 0.9 * M[i] + 0.1 * g[i];
    V[i] = 0.95 * V[i] + 0.05 * g[i] * g[i];
    const mh = M[i] / (1 - 0.9 ** t), vh = V[i] / (1 - 0.95 ** t);
    P[i] -= lr * (mh / (Math.sqrt(vh) + 1e-8) + wd * P[i]);
  }
}

t('AdamW matches the float64 update over 5 steps', async () => {
  const gpu = await testGpu();
  const n = 37;
  const p0 = Float32Array.from(randomValues(n, 1));
  const grads = [2, 3, 4, 5, 6].map((s) => Float32Array.from(randomValues(n, s)));
  const p = ops.parameter(gpu, p0, [n], 'p');
  const opt = new AdamW([p], { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
  const P = Float64Array.from(p0), M = new Float64Array(n), V = new Float64Array(n);
  for (let s = 1; s <= 5; s++) {
    p.grad = ops.tensor(gpu, grads[s - 1], [n]).keep();
    opt.step();
    for (let i = 0; i < n; i++) {
      const g = grads[s - 1][i];
      M[i] = 0.9 * M[i] + 0.1 * g;
      V[i] = 0.95 * V[i] + 0.05 * g * g;
      const mh = M[i] / (1 - 0.9 ** s), vh = V[i] / (1 - 0.95 ** s);
      P[i] -= 0.01 * (mh / (Math.sqrt(vh) + 1e-8) + 0.1 * P[i]);
    }
    opt.zeroGrad();
  }
  assertClose(await p.floats(), P, TOL, 'AdamW');
});

t('AdamW over many parameters (three per dispatch where the device allows): float64, and the same bits as one at a time', async () => {
  const gpu = await testGpu();
  // Sizes that are not multiples of the workgroup, size 1, one past 65535 workgroups' worth
  // in a slot beside small ones; two groups, so that triples form within each and some go
  // one by one.
  const sizes = [1, 37, 1000, 70000, 3, 256, 5, 17];
  const groups = sizes.map((_, i) => (i % 3 === 2 ? { lrScale: 2, weightDecay: 0 } : {}));
  const init = sizes.map((n, k) => Float32Array.from(randomValues(n, 20 + k, -2, 2)));
  const ps = init.map((d, k) => ops.parameter(gpu, d, [d.length], `p${k}`));
  const alone = init.map((d, k) => ops.parameter(gpu, d, [d.length], `q${k}`));
  const hp = { lr: 0.01, beta1: 0.9, beta2: 0.95, weightDecay: 0.1 };
  const opt = new AdamW(ps, { ...hp, group: (_, i) => groups[i] });
  const singles = alone.map((q, k) => new AdamW([q], { ...hp, group: () => groups[k] }));
  const P = init.map((d) => Float64Array.from(d)), M = init.map((d) => new Float64Array(d.length)), V = init.map((d) => new Float64Array(d.length));
  for (let s = 1; s <= 3; s++) {
    sizes.forEach((n, k) => {
      const g = Float32Array.from(randomValues(n, 100 * s + k, -3, 3));
      ps[k].grad = ops.tensor(gpu, g, [n]).keep();
      alone[k].grad = ops.tensor(gpu, g, [n]).keep();
      adamwRef(P[k], M[k], V[k], g, s, groups[k]);
    });
    opt.step();
    singles.forEach((o) => o.step());
    opt.zeroGrad();
    singles.forEach((o) => o.zeroGrad());
  }
  for (let k = 0; k < sizes.length; k++) {
    const got = await ps[k].floats();
    assertClose(got, P[k], TOL, `AdamW parameter ${k} (${sizes[k]})`);
    assert.equal([...got], [...(await alone[k].floats())], `parameter ${k}: the same bits as alone`);
  }
  opt.dispose();
  singles.forEach((o) => o.dispose());
});

t('AdamW parameter groups: a learning-rate multiple and a weight decay per parameter', async () => {
  const gpu = await testGpu();
  const n = 5;
  const init = [Float32Array.from(randomValues(n, 7)), Float32Array.from(randomValues(n, 8)), Float32Array.from(randomValues(n, 9))];
  const ps = init.map((d, k) => ops.parameter(gpu, d, [n], `p${k}`));
  // p0: defaults; p1: lr x 10, no decay; p2: lr x 0.5 and decay 0.3.
  const groups = [{}, { lrScale: 10, weightDecay: 0 }, { lrScale: 0.5, weightDecay: 0.3 }];
  const opt = new AdamW(ps, { lr: 0.01, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, group: (_, i) => groups[i] });
  const P = init.map((d) => Float64Array.from(d)), M = init.map(() => new Float64Array(n)), V = init.map(() => new Float64Array(n));
  for (let s = 1; s <= 3; s++) {
    ps.forEach((p, k) => {
      const g = Float32Array.from(randomValues(n, 10 * s + k));
      p.grad = ops.tensor(gpu, g, [n]).keep();
      adamwRef(P[k], M[k], V[k], g, s, groups[k]);
    });
    opt.step();
    opt.zeroGrad();
  }
  for (let k = 0; k < 3; k++) assertClose(await ps[k].floats(), P[k], TOL, `AdamW group ${k}`);
  opt.dispose();
});

t('SGD with momentum and weight decay', async () => {
  const gpu = await testGpu();
  const n = 300;
  const p0 = Float32Array.from(randomValues(n, 1));
  const p = ops.parameter(gpu, p0, [n], 'p');
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  const P = Float64Array.from(p0), M = new Float64Array(n);
  for (let s = 0; s < 3; s++) {
    const g = Float32Array.from(randomValues(n, 10 + s));
    p.grad = ops.tensor(gpu, g, [n]).keep();
    opt.step();
    for (let i = 0; i < n; i++) {
      M[i] = 0.9 * M[i] + g[i];
      P[i] -= 0.1 * (M[i] + 0.01 * P[i]);
    }
    opt.zeroGrad();
  }
  assertClose(await p.floats(), P, TOL, 'SGD');
});

t('gradient clipping scales by maxNorm / global norm, on the GPU', async () => {
  const gpu = await testGpu();
  const a = ops.parameter(gpu, [0, 0, 0], [3], 'a');
  const b = ops.parameter(gpu, [0, 0], [2], 'b');
  const opt = new SGD([a, b], { lr: 1, clipNorm: 1 });
  a.grad = ops.tensor(gpu, [3, 0, 0], [3]).keep();
  b.grad = ops.tensor(gpu, [0, 4], [2]).keep(); // global norm 5
  opt.step();
  assert.ok(Math.abs((await opt.lastGradNorm()) - 5) < 1e-5, 'norm');
  assertClose(await a.floats(), [-0.6, 0, 0], TOL, 'a clipped');
  assertClose(await b.floats(), [0, -0.8], TOL, 'b clipped');
});

// 19 parameters: three launches of 7 gradient slots (the last one partly empty), sizes around
// the 256-lane stride (1, 255, 256, 257, 1000) and one past GRAD_NORM_BATCH_MAX, which takes
// the per-tensor reduction; two without a gradient (they count 0). Tolerance rtol 1e-5: f32
// sums of at most 70,000 squares in strided shares and a tree, against float64.
t('the global gradient norm over many parameters (batched sums of squares, one large gradient, missing gradients)', async () => {
  const gpu = await testGpu();
  const sizes = [1, 255, 256, 257, 1000, 3, 70000, 5, 64, 96, 96, 2, 7, 11, 13, 17, 19, 23, 29];
  const params = sizes.map((n, i) => ops.parameter(gpu, new Float32Array(n), [n], `p${i}`));
  let sum = 0;
  params.forEach((p, i) => {
    if (i === 2 || i === 9) return; // no gradient
    const g = Float32Array.from(randomValues(p.size, 100 + i, -3, 3));
    for (const v of g) sum += v * v;
    p.grad = ops.tensor(gpu, g, [p.size]).keep();
  });
  const opt = new SGD(params, { lr: 0, clipNorm: 1e9 });
  opt.step();
  const norm = await opt.lastGradNorm();
  assert.ok(Math.abs(norm - Math.sqrt(sum)) <= 1e-5 * Math.sqrt(sum), `norm ${norm} vs float64 ${Math.sqrt(sum)}`);
  opt.dispose();
  for (const p of params) p.dispose();
});

t('a step whose gradient is not finite is skipped: parameters and moments stay as they were', async () => {
  const gpu = await testGpu();
  const p = ops.parameter(gpu, [1, 2, 3], [3], 'p');
  const opt = new AdamW([p], { lr: 0.1, clipNorm: 1 });
  p.grad = ops.tensor(gpu, [0.1, 0.2, 0.3], [3]).keep();
  opt.step();
  opt.zeroGrad();
  const after1 = await p.floats();
  p.grad = ops.powScalar(ops.tensor(gpu, [-1, 1, 1], [3]), 0.5).keep(); // NaN in the first element
  opt.step();
  opt.zeroGrad();
  assert.equal([...(await p.floats())], [...after1], 'unchanged by the NaN step');
  assert.is(await opt.skippedSteps(), 1);
  p.grad = ops.tensor(gpu, [0.1, 0.2, 0.3], [3]).keep();
  opt.step();
  assert.ok((await p.floats()).every(Number.isFinite), 'later steps still update');
});

t.run();
