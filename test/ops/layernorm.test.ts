// layerNorm against float64 in both layouts of the forward and input gradient (one invocation,
// one workgroup of 64 per row; rows of 1, 5, 64, 300 and 1001 features, vec4 and scalar; a
// large mean to exercise the two-pass variance); gradients of x, gamma and beta by finite
// differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import type { LayerNormLayout } from '../../src/launch/layernorm.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('layernorm');
t.after.each(resetTuning);
const LAYOUTS: LayerNormLayout[] = ['row', 'workgroup'];

for (const variant of LAYOUTS) t(`forward against float64 (${variant})`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layerNorm.variant = variant;
  for (const [rows, n, offset] of [[1, 1, 0], [4, 5, 0], [70, 300, 0], [3, 64, 1000], [2, 1001, 0], [5, 96, -300]]) {
    const x = randomValues(rows * n, n, -2, 2).map((v) => v + offset);
    const g = randomValues(n, 1, 0.5, 1.5), b = randomValues(n, 2);
    const f = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
    const y = await ops.layerNorm(ops.tensor(gpu, f(x), [rows, n]), ops.tensor(gpu, f(g), [n]), ops.tensor(gpu, f(b), [n])).floats();
    // n = 1: x - mean is exactly 0, so the output is beta.
    assertClose(y, ref.layerNorm(f(x), f(g), f(b), n, 1e-5), { rtol: 1e-4, atol: 2e-5 }, `layerNorm ${rows}x${n} offset ${offset}`);
  }
});
// Widths 6 (scalar), 8 (vec4, fewer vec4s than lanes) and 300 (vec4, 75 of them: more than a
// workgroup's 64 lanes).
for (const variant of LAYOUTS) t(`backward: x, gamma, beta (${variant})`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layerNorm.variant = variant;
  for (const [rows, n] of [[3, 6], [2, 8], [2, 300]]) {
    await checkGradients({
      what: `layerNorm ${rows}x${n} (${variant})`, gpu,
      inputs: [{ data: randomValues(rows * n, 3, -2, 2), shape: [rows, n] }, { data: randomValues(n, 4, 0.5, 1.5), shape: [n] }, { data: randomValues(n, 5), shape: [n] }],
      op: (x, g, b) => ops.layerNorm(x, g, b),
      reference: (x, g, b) => ref.layerNorm(x, g, b, n, 1e-5),
      tol: { rtol: 3e-4, atol: 3e-5 },
    });
  }
});

// More rows than one grid dimension holds: the workgroup layout's rows go on in its second.
t('forward (workgroup): 70001 rows of 4', async () => {
  const gpu = await testGpu();
  gpu.tuning.layerNorm.variant = 'workgroup';
  const [rows, n] = [70001, 4];
  const x = Float32Array.from(randomValues(rows * n, 12, -2, 2));
  const g = Float32Array.from([1, 2, 0.5, 1]), b = Float32Array.from([0, 1, 0, -1]);
  const y = await ops.layerNorm(ops.tensor(gpu, x, [rows, n]), ops.tensor(gpu, g, [n]), ops.tensor(gpu, b, [n])).floats();
  assertClose(y, ref.layerNorm(Float64Array.from(x), Float64Array.from(g), Float64Array.from(b), n, 1e-5), { rtol: 1e-4, atol: 2e-5 }, `layerNorm ${rows}x${n}`);
});
// Rows of a width divisible by 4 run as vec4s (V4): the sums take the elements one at a time
// in index order and the elementwise expressions are the same per component, so the output
// and the input gradient must equal the scalar kernel's bit for bit (a reordered sum would
// differ in the last bits somewhere among these rows; a wrong vec4 index by O(1)). Widths 4,
// 96 (the small preset's), 300, and a large mean.
t('vec4 rows: the same bits as the scalar kernel (forward and input gradient)', async () => {
  const gpu = await testGpu();
  gpu.tuning.layerNorm.variant = 'row';
  const { backward } = await import('../../src/autograd.ts');
  for (const [rows, n, offset] of [[3, 4, 0], [130, 96, 0], [70, 300, 0], [5, 64, 1000]]) {
    const x = Float32Array.from(randomValues(rows * n, n + 7, -2, 2).map((v) => v + offset));
    const g = Float32Array.from(randomValues(n, 8, 0.5, 1.5)), b = Float32Array.from(randomValues(n, 9));
    const gy = Float32Array.from(randomValues(rows * n, 10));
    const out: Float32Array[][] = [];
    for (const vec4 of [true, false]) {
      gpu.tuning.layerNorm.vec4 = vec4;
      try {
        const xt = ops.tensor(gpu, x, [rows, n]);
        xt.requiresGrad = true;
        const y = ops.layerNorm(xt, ops.tensor(gpu, g, [n]), ops.tensor(gpu, b, [n]));
        backward(y, ops.tensor(gpu, gy, [rows, n]));
        out.push([await y.floats(), await xt.grad!.floats()]);
      } finally {
        gpu.tuning.layerNorm.vec4 = true;
      }
    }
    for (let i = 0; i < 2; i++) {
      const at = out[0][i].findIndex((v, j) => !Object.is(v, out[1][i][j]));
      assert.is(at, -1, `layerNorm ${rows}x${n} offset ${offset}: ${i ? 'input gradient' : 'output'} differs at ${at}`);
    }
  }
});
// gamma's and beta's gradients sum rows in chunks on a GPU (partial sums, then their sum in
// chunk order; src/launch/layernorm.ts), in one pass on CPU adapters; forced here: one chunk,
// several with a short last one (1000 rows in 31 chunks of 33), chunks past the last row (4130
// rows in 129 chunks of 33, the last 3 empty), one row per chunk, a width of 1. Against
// float64: dgamma = sum gy xhat, dbeta = sum gy. The bound is that of two-level f32
// summation, (chunk + chunks) 2^-24 sum |term|, plus 8 ulp of each term for the f32
// statistics behind xhat; a lost or repeated row moves a sum by O(1).
t('backward: gamma and beta over many rows (chunked sums) against float64', async () => {
  const gpu = await testGpu();
  const { backward } = await import('../../src/autograd.ts');
  for (const [rows, n, chunks] of [[40, 5, 1], [1000, 96, 31], [4130, 7, 129], [70, 3, 70], [64, 1, 2], [300, 4, null]] as [number, number, number | null][]) {
    gpu.tuning.layerNorm.paramChunks = chunks;
    const x = Float32Array.from(randomValues(rows * n, rows + n, -2, 2));
    const g = Float32Array.from(randomValues(n, 8, 0.5, 1.5)), b = Float32Array.from(randomValues(n, 9));
    const gy = Float32Array.from(randomValues(rows * n, 10));
    const gt = ops.tensor(gpu, g, [n]), bt = ops.tensor(gpu, b, [n]);
    gt.requiresGrad = true;
    bt.requiresGrad = true;
    backward(ops.layerNorm(ops.tensor(gpu, x, [rows, n]), gt, bt), ops.tensor(gpu, gy, [rows, n]));
    const [dg, db] = [await gt.grad!.floats(), await bt.grad!.floats()];
    gpu.tuning.layerNorm.paramChunks = null;
    const xhat = ref.layerNorm(Float64Array.from(x), new Float64Array(n).fill(1), new Float64Array(n), n, 1e-5);
    const depth = chunks === null ? rows : Math.ceil(rows / chunks) + chunks;
    for (let j = 0; j < n; j++) {
      let sg = 0, sb = 0, ag = 0, ab = 0;
      for (let r = 0; r < rows; r++) {
        const t1 = gy[r * n + j] * xhat[r * n + j];
        sg += t1;
        ag += Math.abs(t1);
        sb += gy[r * n + j];
        ab += Math.abs(gy[r * n + j]);
      }
      const tg = (depth + 8) * 2 ** -24 * ag, tb = depth * 2 ** -24 * ab;
      assert.ok(Math.abs(dg[j] - sg) <= tg, `layerNorm ${rows}x${n} dgamma[${j}] ${dg[j]} vs ${sg} (bound ${tg.toExponential(2)})`);
      assert.ok(Math.abs(db[j] - sb) <= tb, `layerNorm ${rows}x${n} dbeta[${j}] ${db[j]} vs ${sb} (bound ${tb.toExponential(2)})`);
    }
  }
  gpu.tuning.layerNorm.paramChunks = 0;
  const x = ops.tensor(gpu, [1, 2, 3, 4], [2, 2]);
  x.requiresGrad = true;
  const g1 = ops.tensor(gpu, [1, 1], [2]);
  g1.requiresGrad = true;
  try {
    assert.throws(() => backward(ops.layerNorm(x, g1, ops.tensor(gpu, [0, 0], [2])), ops.tensor(gpu, [1, 1, 1, 1], [2, 2])), /gpu.tuning.layerNorm.paramChunks = 0 is not a positive integer or null/);
  } finally {
    gpu.tuning.layerNorm.paramChunks = null;
  }
});

t('bad shapes', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, new Float32Array(6), [2, 3]);
  assert.throws(() => ops.layerNorm(x, ops.tensor(gpu, [1, 1], [2]), ops.tensor(gpu, [0, 0, 0], [3])), /layerNorm: gamma \[2\] and beta \[3\] must be \[3\]/);
});
t.run();
