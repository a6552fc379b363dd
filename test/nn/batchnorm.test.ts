// BatchNorm1d (affine=False) against a float64 reference: batch statistics in training with
// the running averages PyTorch keeps (momentum 0.1, unbiased variance), running statistics in
// evaluation, the training-mode gradient by finite differences, and its one-line errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, GRAD, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import { BatchNorm1d } from '../../src/nn/layers.ts';
import * as ops from '../../src/ops/index.ts';
import { ShapeError, ValueError } from '../../src/errors.ts';

const t = suite('batchnorm');

/** Float64 BatchNorm over the rows of x [N, F]: the output and the batch mean / biased variance. */
function reference(x: Float64Array, N: number, F: number, eps: number, stats?: { mean: Float64Array; var: Float64Array }) {
  const mu = new Float64Array(F), va = new Float64Array(F);
  if (stats) {
    mu.set(stats.mean);
    va.set(stats.var);
  } else {
    for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) mu[f] += x[n * F + f] / N;
    for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) va[f] += (x[n * F + f] - mu[f]) ** 2 / N;
  }
  const y = new Float64Array(N * F);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) y[n * F + f] = (x[n * F + f] - mu[f]) / Math.sqrt(va[f] + eps);
  return { y, mu, va };
}

t('training: batch statistics; running averages as PyTorch keeps them; evaluation uses them', async () => {
  const gpu = await testGpu();
  // F = 37 (not a multiple of a workgroup), rows of [N, L, F] with N * L = 3 * 5 samples; one
  // feature far off zero and with a large spread, as pooled features are.
  const [N, L, F] = [3, 5, 37];
  const bn = new BatchNorm1d(gpu, F, 1e-5, 0.1, 'bn').train();
  const runMean = new Float64Array(F), runVar = new Float64Array(F).fill(1);
  for (let step = 0; step < 2; step++) {
    const x = Float64Array.from(Float32Array.from(randomValues(N * L * F, 10 + step, -2, 3)));
    for (let i = 0; i < N * L; i++) x[i * F + 4] = 1e3 + 50 * x[i * F + 4];
    const y = bn.forward(ops.tensor(gpu, Float32Array.from(x), [N, L, F]));
    assert.equal(y.shape, [N, L, F]);
    const ref = reference(x, N * L, F, 1e-5);
    assertClose(await y.floats(), ref.y, { rtol: 1e-4, atol: 1e-5 }, `step ${step} output`);
    for (let f = 0; f < F; f++) {
      runMean[f] = 0.9 * runMean[f] + 0.1 * ref.mu[f];
      runVar[f] = 0.9 * runVar[f] + (0.1 * ref.va[f] * (N * L)) / (N * L - 1);
    }
    assertClose(await bn.running_mean.floats(), runMean, F32, `step ${step} running_mean`);
    assertClose(await bn.running_var.floats(), runVar, { rtol: 1e-5, atol: 1e-6 }, `step ${step} running_var`);
  }
  // Evaluation: one sample at a time works and uses the running statistics.
  bn.eval();
  const x = Float64Array.from(Float32Array.from(randomValues(F, 99, -2, 3)));
  const y = bn.forward(ops.tensor(gpu, Float32Array.from(x), [1, F]));
  assertClose(await y.floats(), reference(x, 1, F, 1e-5, { mean: runMean, var: runVar }).y, { rtol: 1e-5, atol: 1e-5 }, 'evaluation');
  assert.equal(bn.namedBuffers().map(([n]) => n), ['running_mean', 'running_var']);
  assert.equal(bn.parameters().length, 0);
});

t('training-mode gradient by finite differences (through the batch mean and variance)', async () => {
  const gpu = await testGpu();
  // Rows of 1 feature and of 13: the gradient of a normalised output is orthogonal to the
  // batch mean and to x itself, so a wrong sign or a missing variance term shows at once.
  for (const [N, F] of [[2, 1], [9, 13]]) {
    const bn = new BatchNorm1d(gpu, F).train();
    await checkGradients({
      what: `batchnorm N ${N} F ${F}`,
      gpu,
      inputs: [{ data: randomValues(N * F, N + F, -1, 2), shape: [N, F] }],
      op: (x) => bn.forward(x),
      reference: (x) => reference(x, N, F, 1e-5).y,
      // The normalisation divides by the batch's standard deviation (~0.8 here); the
      // difference quotient runs through it, so the default tolerance scaled by 5.
      tol: { rtol: 5 * GRAD.rtol, atol: 5 * GRAD.atol },
    });
  }
});

t('one-line errors: the wrong width, one sample in training', async () => {
  const gpu = await testGpu();
  const bn = new BatchNorm1d(gpu, 4, 1e-5, 0.1, 'projection_norm');
  assert.throws(() => bn.forward(ops.tensor(gpu, new Float32Array(6), [2, 3])), (e: Error) => e instanceof ShapeError && /projection_norm: expected \[\.\.\., 4\], got \[2x3\]/.test(e.message));
  bn.train();
  assert.throws(() => bn.forward(ops.tensor(gpu, new Float32Array(4), [1, 4])), (e: Error) => e instanceof ValueError && /projection_norm: a batch of 1 sample/.test(e.message));
});

t.run();
