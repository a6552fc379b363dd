// layerNorm against float64 (rows of 1, 5, 300 features; a large mean to exercise the
// two-pass variance); gradients of x, gamma and beta by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('layernorm');
t('forward against float64', async () => {
  const gpu = await testGpu();
  for (const [rows, n, offset] of [[1, 1, 0], [4, 5, 0], [70, 300, 0], [3, 64, 1000]]) {
    const x = randomValues(rows * n, n, -2, 2).map((v) => v + offset);
    const g = randomValues(n, 1, 0.5, 1.5), b = randomValues(n, 2);
    const f = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
    const y = await ops.layerNorm(ops.tensor(gpu, f(x), [rows, n]), ops.tensor(gpu, f(g), [n]), ops.tensor(gpu, f(b), [n])).floats();
    // n = 1: x - mean is exactly 0, so the output is beta.
    assertClose(y, ref.layerNorm(f(x), f(g), f(b), n, 1e-5), { rtol: 1e-4, atol: 2e-5 }, `layerNorm ${rows}x${n} offset ${offset}`);
  }
});
t('backward: x, gamma, beta', async () => {
  const gpu = await testGpu();
  const n = 6;
  await checkGradients({
    what: 'layerNorm', gpu,
    inputs: [{ data: randomValues(3 * n, 3, -2, 2), shape: [3, n] }, { data: randomValues(n, 4, 0.5, 1.5), shape: [n] }, { data: randomValues(n, 5), shape: [n] }],
    op: (x, g, b) => ops.layerNorm(x, g, b),
    reference: (x, g, b) => ref.layerNorm(x, g, b, n, 1e-5),
    tol: { rtol: 3e-4, atol: 3e-5 },
  });
});
// Rows of a width divisible by 4 run as vec4s (V4): the sums take the elements one at a time
// in index order and the elementwise expressions are the same per component, so the output
// and the input gradient must equal the scalar kernel's bit for bit (a reordered sum would
// differ in the last bits somewhere among these rows; a wrong vec4 index by O(1)). Widths 4,
// 96 (the small preset's), 300, and a large mean.
t('vec4 rows: the same bits as the scalar kernel (forward and input gradient)', async () => {
  const gpu = await testGpu();
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
t('bad shapes', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, new Float32Array(6), [2, 3]);
  assert.throws(() => ops.layerNorm(x, ops.tensor(gpu, [1, 1], [2]), ops.tensor(gpu, [0, 0, 0], [3])), /layerNorm: gamma \[2\] and beta \[3\] must be \[3\]/);
});
t.run();
