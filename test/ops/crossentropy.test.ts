// cross-entropy and BCE with logits against float64 (masked rows, large logits, logits of
// +-1e4, rows of 4096 classes); gradients by finite differences of the float64 mean loss, and
// analytically (from the float64 softmax / sigmoid) where the logits are too large for finite
// differences; exactly-zero gradients; the masked mean over nothing (0, not NaN).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';

const t = suite('crossentropy');
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

/** |got - expected| <= rtol |expected| + abs, element by element (assertClose's absolute part
 * scales with the largest value, too loose when one row's loss is 2e4 and another's log 2). */
function closeEach(got: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, abs: number, what: string): void {
  assert.is(got.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(got[i] - expected[i]);
    assert.ok(err <= rtol * Math.abs(expected[i]) + abs, `${what}: element ${i} is ${got[i]}, expected ${expected[i]} (error ${err.toExponential(2)})`);
  }
}

t('rows and mean over valid rows', async () => {
  const gpu = await testGpu();
  const rows = 9, C = 13;
  const x = randomValues(rows * C, 1, -3, 3).map((v, i) => (i === 5 ? v + 60 : v));
  const targets = [0, 12, 5, -1, 3, 3, -1, 7, 1];
  const x64 = Float64Array.from(Float32Array.from(x));
  const perRow = ref.crossEntropyRows(x64, targets, C);
  const lt = ops.tensor(gpu, Float32Array.from(x), [rows, C]);
  const tt = ops.fromInts(gpu, targets, [rows]);
  assertClose(await ops.crossEntropyRows(lt, tt).floats(), perRow, F32, 'rows');
  assertClose([await ops.crossEntropy(lt, tt).item()], [ref.crossEntropy(x64, targets, C)], F32, 'mean over the 7 valid rows');
  await checkGradients({
    what: 'crossEntropy', gpu, inputs: [{ data: x.slice(0, 4 * C), shape: [4, C] }],
    op: (a) => ops.crossEntropy(a, ops.fromInts(gpu, [2, -1, 0, 12], [4])),
    reference: (a) => Float64Array.from([ref.crossEntropy(a, [2, -1, 0, 12], C)]),
  });
});

/** Per-row loss and logits gradient (seed R per row) on the GPU, and the float64 expectation:
 * the loss from ref.crossEntropyRows, the gradient R_i (softmax(x_i) - onehot(t_i)) from ref.softmax. */
async function rowsAndGrad(x: ArrayLike<number>, targets: number[], C: number) {
  const gpu = await testGpu();
  const rows = targets.length;
  const x64 = f32(x);
  const R = randomValues(rows, 5);
  const logits = ops.parameter(gpu, Float32Array.from(x64), [rows, C], 'logits');
  const loss = ops.crossEntropyRows(logits, ops.fromInts(gpu, targets, [rows]));
  backward(loss, ops.tensor(gpu, Float32Array.from(R), [rows]));
  const got = { loss: await loss.floats(), grad: await logits.grad!.floats() };
  const p = ref.softmax(x64, C, false);
  const grad = new Float64Array(rows * C);
  const R32 = f32(R);
  for (let r = 0; r < rows; r++)
    if (targets[r] >= 0) for (let c = 0; c < C; c++) grad[r * C + c] = R32[r] * (p[r * C + c] - (c === targets[r] ? 1 : 0));
  logits.dispose();
  return { got, expect: { loss: ref.crossEntropyRows(x64, targets, C), grad } };
}

t('logits of +-1e4: log-sum-exp kept apart from the max (log 2, not 0.693359)', async () => {
  // [x0, x1] per row, then the target. Next to 1e4 f32 values are 1e-3 apart, so the old
  // kernel's rounded m + log(s) gave log 2 as 0.693359 and the gradient 0.500106 / -0.499894.
  const cases: [number, number, number][] = [[1e4, 1e4, 0], [1e4, 1e4, 1], [1e4, 1e4 - 1, 1], [-1e4, 1e4, 0], [1e4, -1e4, 0], [-1e4, -1e4, 1], [1e4, 1e4, -1]];
  const { got, expect } = await rowsAndGrad(cases.flatMap(([a, b]) => [a, b]), cases.map((c) => c[2]), 2);
  assert.ok(Math.abs(expect.loss[0] - Math.LN2) < 1e-15, 'the reference gives log 2');
  // The losses are log 2, 1 + log(1 + e^-1), 2e4 and exactly 0 (exp(-2e4) underflows in
  // float64 too): 2e-6 relative (a few f32 ulps of log and exp) and 1e-6 absolute (f32
  // resolution of a loss near 1) hold them; the old kernel was 2e-4 off on the first.
  closeEach(got.loss, expect.loss, 2e-6, 1e-6, 'loss at +-1e4');
  // Softmax values 0.5, 0.27, 1 or 0, times a seed below 1: 1e-6 absolute (a few ulps).
  closeEach(got.grad, expect.grad, 0, 1e-6, 'gradient at +-1e4');
  assert.is(got.grad[12], 0, 'a masked row at 1e4 has a zero gradient');
  assert.is(got.grad[13], 0, 'a masked row at 1e4 has a zero gradient');
});

t('rows of 4096 classes: near 1e4, across +-1e4, all equal, masked', async () => {
  const C = 4096;
  const near = randomValues(C, 11, -8, 8).map((v) => 1e4 + v);
  const across = randomValues(C, 12, -1e4, 1e4);
  const x = [...near, ...across, ...new Array(C).fill(1e4), ...randomValues(C, 13, -3, 3)];
  const targets = [17, 4000, 5, -1];
  const { got, expect } = await rowsAndGrad(x, targets, C);
  // A row's sum of 4096 exponentials in f32 carries ~sqrt(4096) 6e-8 = 4e-6 relative error
  // (1.5e-4 at worst); log turns it into that much absolute error of a loss between 0 and 2e4
  // (all equal: log 4096 = 8.3): 2e-5 relative plus 2e-5 absolute.
  closeEach(got.loss, expect.loss, 2e-5, 2e-5, 'loss over 4096 classes');
  assert.ok(Math.abs(expect.loss[2] - Math.log(4096)) < 1e-12, 'the reference gives log 4096 for equal logits');
  // Each probability carries the sum's relative error (4e-6 typical) and its exp's few ulps:
  // 2e-5 relative, plus 1e-7 absolute for the target's p - 1 (p's error, not 1's).
  closeEach(got.grad, expect.grad, 2e-5, 1e-7, 'gradient over 4096 classes');
  assert.ok(got.grad.subarray(3 * C).every((g) => g === 0), 'the masked row has exactly zero gradient');
});

t('exactly-zero gradients: a zero output gradient, and every row masked (loss 0, not NaN)', async () => {
  const gpu = await testGpu();
  const C = 5;
  const x = randomValues(3 * C, 21, -1e4, 1e4);
  const logits = ops.parameter(gpu, Float32Array.from(x), [3, C], 'logits');
  const rows = ops.crossEntropyRows(logits, ops.fromInts(gpu, [0, 4, -1], [3]));
  backward(rows, ops.zeros(gpu, [3]));
  assert.ok((await logits.grad!.floats()).every((g) => g === 0), 'gy = 0 gives exactly 0');
  logits.grad!.dispose();
  logits.grad = null;
  // A mean over nothing is 0 with a zero gradient (as bceWithLogits and siglipLoss).
  const none = ops.crossEntropy(logits, ops.fromInts(gpu, [-1, -1, -1], [3]));
  assert.is(await none.item(), 0, 'every row masked: 0');
  assert.is(ref.crossEntropy(f32(x), [-1, -1, -1], C), 0, 'the reference agrees');
  backward(none);
  assert.ok((await logits.grad!.floats()).every((g) => g === 0), 'every row masked: zero gradient');
  logits.dispose();
});

t('targets past the classes are refused', async () => {
  const gpu = await testGpu();
  assert.throws(() => ops.crossEntropy(ops.tensor(gpu, new Float32Array(6), [2, 3]), ops.fromInts(gpu, [0, 3], [2])), /target 3 at row 1 is not below the 3 classes/);
  assert.throws(() => ops.crossEntropy(ops.tensor(gpu, new Float32Array(6), [2, 3]), ops.fromInts(gpu, [0], [1])), /2 rows but targets \[1\] have 1/);
});

t('binary cross-entropy with logits: positive weights per column, unknown labels masked', async () => {
  const gpu = await testGpu();
  const N = 70, Q = 3;
  const x = f32(randomValues(N * Q, 3, -4, 4));
  const y = Array.from({ length: N * Q }, (_, i) => [1, 0, -1, 0, 1][i % 5]);
  const w = [1, 2.5, 20];
  const loss = ops.bceWithLogits(ops.tensor(gpu, Float32Array.from(x), [N, Q]), ops.tensor(gpu, y, [N, Q]), ops.tensor(gpu, w, [Q]));
  assertClose([await loss.item()], [ref.bceWithLogits(x, y, Q, w)], { rtol: 2e-5, atol: 0 }, 'bce');
  await checkGradients({
    what: 'bceWithLogits', gpu, inputs: [{ data: x.slice(0, 4 * Q), shape: [4, Q] }],
    op: (a) => ops.bceWithLogits(a, ops.tensor(gpu, y.slice(0, 4 * Q), [4, Q]), ops.tensor(gpu, w, [Q])),
    reference: (a) => Float64Array.from([ref.bceWithLogits(a, y, Q, w)]),
  });
  assert.throws(() => ops.bceWithLogits(ops.zeros(gpu, [2, 3]), ops.zeros(gpu, [3, 2])), /logits \[2x3\] and labels \[3x2\] differ/);
});

t('binary cross-entropy at +-1e4 and +-20; a mean over no known label is 0 with zero gradient', async () => {
  const gpu = await testGpu();
  const Q = 4;
  const xs = [1e4, -1e4, 20, -20, 1e4, -1e4, 20, -20, 0.5, -80, 80, 3];
  const ys = [1, 1, 1, 1, 0, 0, 0, 0, 1, 0, -1, -1];
  const w = [1, 3, 0.5, 2];
  const x = ops.parameter(gpu, xs, [3, Q], 'x');
  const loss = ops.bceWithLogits(x, ops.tensor(gpu, ys, [3, Q]), ops.tensor(gpu, w, [Q]));
  // Terms of 1e4 and 2e-9 in one mean: f32 keeps the mean to a few ulps.
  closeEach([await loss.item()], [ref.bceWithLogits(f32(xs), ys, Q, w)], 2e-6, 0, 'bce at +-1e4');
  backward(loss);
  // d mean / dx = (w y (sigmoid(x) - 1) + (1 - y) sigmoid(x)) / known, in float64.
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const known = ys.filter((v) => v >= 0).length;
  const grad = xs.map((v, i) => (ys[i] < 0 ? 0 : (w[i % Q] * ys[i] * (sig(v) - 1) + (1 - ys[i]) * sig(v)) / known));
  // Values up to w / known = 0.3; 1e-7 absolute is a few ulps of them (sigmoid(20) - 1 =
  // -2e-9 rounds to 0 in f32, well within).
  closeEach(await x.grad!.floats(), grad, 0, 1e-7, 'bce gradient at +-1e4');
  assert.ok((await x.grad!.floats()).slice(10).every((g) => g === 0), 'unknown labels: exactly zero gradient');
  // Every term tiny: softplus(-20) = 2.06e-9 (log(1 + z) with 1 + z rounded to 1 gave 0).
  const tiny = ops.bceWithLogits(ops.tensor(gpu, [-20, -20, 20], [1, 3]), ops.tensor(gpu, [0, 0, 1], [1, 3]));
  // exp's few ulps near -20 (the driver's exp: up to 16 ulp, 1e-6): 2e-5 relative.
  closeEach([await tiny.item()], [ref.bceWithLogits(f32([-20, -20, 20]), [0, 0, 1], 3)], 2e-5, 0, 'bce of tiny terms');
  x.grad!.dispose();
  x.grad = null;
  const none = ops.bceWithLogits(x, ops.tensor(gpu, new Array(3 * Q).fill(-1), [3, Q]));
  assert.is(await none.item(), 0, 'no known label: 0');
  backward(none);
  assert.ok((await x.grad!.floats()).every((g) => g === 0), 'no known label: zero gradient');
  x.dispose();
});

t.run();
