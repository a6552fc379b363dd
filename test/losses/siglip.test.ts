// The SigLIP loss against float64 (batch sizes 1, 5 and 70, past one workgroup; a masked
// empty report; more texts than images: N = 3, 13 and 131 texts for 1, 5 and 70 images);
// gradients of the image and text embeddings, t and b by finite differences;
// logits of +-1e4 and pair terms of 2e-9 against float64 (the gradient analytically);
// exactly-zero gradients (a zero output gradient, masked reports, every report masked).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { siglipLoss, siglipRows } from '../../src/losses/index.ts';
import { backward } from '../../src/autograd.ts';

const t = suite('siglip');
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

t('loss against float64, with and without masked reports', async () => {
  const gpu = await testGpu();
  const cases: [number, number, number, boolean][] = [[1, 1, 4, false], [5, 5, 8, true], [70, 70, 16, false], [70, 70, 16, true], [1, 3, 4, true], [70, 131, 16, true], [5, 13, 8, false]];
  for (const [B, N, E, masked] of cases) {
    const img = f32(randomValues(B * E, 1)), txt = f32(randomValues(N * E, 2));
    const valid = masked ? Array.from({ length: N }, (_, i) => (i % 4 === 2 ? 0 : 1)) : undefined;
    const tt = Math.fround(Math.log(10)), bb = -10;
    const loss = siglipLoss(ops.tensor(gpu, Float32Array.from(img), [B, E]), ops.tensor(gpu, Float32Array.from(txt), [N, E]),
      ops.tensor(gpu, [tt], [1]), ops.tensor(gpu, [bb], [1]), valid ? ops.tensor(gpu, valid, [N]) : undefined);
    // Sums of up to 131 softplus terms in f32 (exp and log to a few ulps): 2e-5 relative.
    assertClose([await loss.item()], [ref.siglipLoss(img, txt, B, E, tt, bb, valid, N)], { rtol: 2e-5, atol: 0 }, `siglip B=${B} N=${N}${masked ? ' masked' : ''}`);
  }
});

t('gradients of img, txt, t and b (N = B, and N > B with a masked extra text)', async () => {
  const gpu = await testGpu();
  const B = 4, E = 3;
  for (const [N, valid] of [[4, undefined], [4, [1, 0, 1, 1]], [7, undefined], [7, [1, 1, 0, 1, 1, 0, 1]]] as [number, number[] | undefined][]) {
    await checkGradients({
      what: `siglip N=${N}${valid ? ' masked' : ''}`, gpu,
      inputs: [{ data: randomValues(B * E, 3), shape: [B, E] }, { data: randomValues(N * E, 4), shape: [N, E] }, { data: Float64Array.from([0.7]), shape: [1] }, { data: Float64Array.from([-1.5]), shape: [1] }],
      op: (img, txt, tt, bb) => siglipLoss(img, txt, tt, bb, valid ? ops.tensor(gpu, valid, [N]) : undefined),
      reference: (img, txt, tt, bb) => Float64Array.from([ref.siglipLoss(img, txt, B, E, tt[0], bb[0], valid, N)]),
    });
  }
});

t('bad shapes name the tensor: fewer texts than images, a mask per image instead of per text', async () => {
  const gpu = await testGpu();
  const img = ops.tensor(gpu, new Float32Array(12), [4, 3]);
  const one = ops.tensor(gpu, [0], [1]);
  assert.throws(() => siglipLoss(img, ops.tensor(gpu, new Float32Array(9), [3, 3]), one, one), /image \[4x3\] and text \[3x3\].*N >= B/);
  assert.throws(() => siglipLoss(img, ops.tensor(gpu, new Float32Array(18), [6, 3]), one, one, ops.tensor(gpu, [1, 1, 1, 1], [4])), /valid \[4\] must be \[6\], one per text/);
});

const identity = (B: number) => Float64Array.from({ length: B * B }, (_, k) => (k % (B + 1) === 0 ? 1 : 0));

/** siglipRows of a given S [B, N] on the GPU with a seed R per row, and the float64
 * expectation: the rows from ref.siglipRows and the gradient (analytic, in float64)
 * dS_ij = R_i v_i v_j (-z_ij) sigmoid(-z_ij l_ij) exp(t), l_ij = exp(t) S_ij + b. */
async function rowsAndGrad(S: Float64Array, B: number, tt: number, bb: number, valid?: number[], N = B) {
  const gpu = await testGpu();
  const R = f32(randomValues(B, 31));
  const s = ops.parameter(gpu, Float32Array.from(S), [B, N], 'S');
  const rows = siglipRows(s, ops.tensor(gpu, [tt], [1]), ops.tensor(gpu, [bb], [1]), valid ? ops.tensor(gpu, valid, [N]) : undefined);
  backward(rows, ops.tensor(gpu, Float32Array.from(R), [B]));
  const got = { rows: await rows.floats(), grad: await s.grad!.floats() };
  s.dispose();
  const v = (i: number) => (valid ? valid[i] : 1);
  const scale = Math.exp(tt);
  const grad = new Float64Array(B * N);
  for (let i = 0; i < B; i++)
    for (let j = 0; j < N; j++) {
      const z = i === j ? 1 : -1;
      const l = scale * S[i * N + j] + bb;
      grad[i * N + j] = (R[i] * v(i) * v(j) * -z * scale) / (1 + Math.exp(z * l));
    }
  return { got, expect: { rows: ref.siglipRows(S, B, tt, bb, valid, N), grad } };
}

t('logits of +-1e4 and pair terms of 2e-9 against float64; gradient of S analytically (N = B and N > B)', async () => {
  const B = 70;
  // exp(t) = 1e4: logits from -1e4 to 1e4 (finite differences are useless there).
  const tt = Math.fround(Math.log(1e4));
  for (const [N, valid] of [[70, undefined], [70, Array.from({ length: 70 }, (_, i) => (i % 5 === 3 ? 0 : 1))], [97, Array.from({ length: 97 }, (_, i) => (i % 5 === 3 ? 0 : 1))]] as [number, number[] | undefined][]) {
    const S = f32(randomValues(B * N, 41));
    const { got, expect } = await rowsAndGrad(S, B, tt, 0, valid, N);
    // Rows are sums of up to 97 softplus terms of up to 1e4 (each a few ulps, and the scale
    // exp(t) itself a few ulps of 1e4): 1e-5 relative; masked rows exactly 0.
    assertClose(got.rows, expect.rows, { rtol: 1e-5, atol: 0 }, `siglip rows at +-1e4 N=${N}${valid ? ' masked' : ''}`);
    // |dS| up to 1e4 (the scale); sigmoid's and exp's ulps: 1e-5 relative plus 1e-6 of the
    // largest for the entries that are tails of the sigmoid.
    assertClose(got.grad, expect.grad, { rtol: 1e-5, atol: 1e-6 }, `siglip gradient at +-1e4 N=${N}${valid ? ' masked' : ''}`);
    if (valid)
      for (let i = 0; i < B; i++)
        for (let j = 0; j < N; j++) if (!valid[i] || !valid[j]) assert.is(got.grad[i * N + j], 0, `masked pair (${i}, ${j}): exactly zero gradient`);
  }
  // Every pair well separated: diagonal logits 20, others -20, each term softplus(-20) = 2.06e-9
  // (rounding 1 + exp(-20) to 1 first gave 0). img = txt = I, exp(t) = 40, b = -20.
  const gpu = await testGpu();
  const I = identity(8);
  const t40 = Math.fround(Math.log(40));
  const tiny = siglipLoss(ops.tensor(gpu, I, [8, 8]), ops.tensor(gpu, I, [8, 8]), ops.tensor(gpu, [t40], [1]), ops.tensor(gpu, [-20], [1]));
  // exp near -20 to a few ulps (the driver's: up to 16, 1e-6), 64 terms summed: 2e-5 relative.
  assertClose([await tiny.item()], [ref.siglipLoss(I, I, 8, 8, t40, -20)], { rtol: 2e-5, atol: 0 }, 'siglip of 2e-9 terms');
});

t('exactly-zero gradients: a zero output gradient; a batch whose reports are all empty gives 0, not NaN', async () => {
  const gpu = await testGpu();
  const img = ops.parameter(gpu, Float32Array.from(randomValues(6, 7)), [2, 3], 'img');
  const txt = ops.tensor(gpu, Float32Array.from(randomValues(6, 8)), [2, 3]);
  const tParam = ops.parameter(gpu, [Math.log(1e4)], [1], 't');
  const bParam = ops.parameter(gpu, [-1], [1], 'b');
  backward(siglipRows(ops.matmul(img, txt, { transB: true }), tParam, bParam), ops.zeros(gpu, [2]));
  for (const p of [img, tParam, bParam]) {
    assert.ok((await p.grad!.floats()).every((g) => g === 0), `gy = 0: ${p.name}'s gradient is exactly 0`);
    p.grad!.dispose();
    p.grad = null;
  }
  const loss = siglipLoss(img, txt, tParam, bParam, ops.tensor(gpu, [0, 0], [2]));
  assert.is(await loss.item(), 0);
  assert.is(ref.siglipLoss(f32(randomValues(6, 7)), f32(randomValues(6, 8)), 2, 3, 1, -1, [0, 0]), 0, 'the reference agrees');
  backward(loss);
  for (const p of [img, tParam, bParam]) assert.ok((await p.grad!.floats()).every((g) => g === 0), `every report empty: ${p.name}'s gradient is exactly 0`);
  const bce = ops.bceWithLogits(ops.tensor(gpu, [1, 2], [1, 2]), ops.tensor(gpu, [-1, -1], [1, 2]));
  assert.is(await bce.item(), 0, 'no known label: 0');
  for (const p of [img, tParam, bParam]) p.dispose();
});

t.run();
