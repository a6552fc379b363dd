// softmax / logSoftmax over the last axis against float64 in both kernel layouts (one
// invocation per row, one workgroup of 64 per row), rows of lengths 1, 7, 64 and 301 (not a
// multiple of the workgroup); backward by finite differences.
import { suite } from 'uvu';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import type { SoftmaxLayout } from '../../src/launch/softmax.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import * as assert from 'uvu/assert';
import { backward } from '../../src/autograd.ts';

const t = suite('softmax');
t.after.each(resetTuning);
const LAYOUTS: SoftmaxLayout[] = ['row', 'workgroup'];

for (const [log, variant] of [false, true].flatMap((l) => LAYOUTS.map((v) => [l, v] as const))) {
  const name = `${log ? 'logSoftmax' : 'softmax'} (${variant})`;
  const fn = log ? ops.logSoftmax : ops.softmax;
  t(`${name}: forward and backward`, async () => {
    const gpu = await testGpu();
    gpu.tuning.softmax.variant = variant;
    for (const [rows, n] of [[1, 1], [3, 7], [65, 301], [2, 5], [4, 64]]) {
      // Large logits check the max subtraction (exp(80) would overflow f32 without it).
      const x = randomValues(rows * n, n, -4, 4).map((v, i) => (i % 3 === 0 ? v + 80 : v));
      const y = await fn(ops.tensor(gpu, Float32Array.from(x), [rows, n])).floats();
      assertClose(y, ref.softmax(Float64Array.from(Float32Array.from(x)), n, log), F32, `${name} ${rows}x${n}`);
    }
    await checkGradients({ what: name, gpu, inputs: [{ data: randomValues(4 * 6, 2, -2, 2), shape: [2, 2, 6] }], op: fn, reference: (a) => ref.softmax(a, 6, log) });
  });
}

// Logits of +-1e4 in rows of 4096: a kernel that rounds m + log(s) before subtracting it from
// x loses log(s) against m (the ulp of 1e4 is 1e-3: logSoftmax([1e4, 1e4]) came out -0.693359).
// With (x - m) - log(s) the result is exact to f32 rounding of values of size ~10: F32.
for (const variant of LAYOUTS) t(`logSoftmax and softmax (${variant}): logits of +-1e4, rows of 4096, masked entries, zero gradients`, async () => {
  const gpu = await testGpu();
  gpu.tuning.softmax.variant = variant;
  const pair = ops.tensor(gpu, [1e4, 1e4], [1, 2]);
  pair.requiresGrad = true;
  const ls = ops.logSoftmax(pair);
  const v = await ls.floats();
  assert.ok(Math.abs(v[0] + Math.LN2) < 1e-6 && Math.abs(v[1] + Math.LN2) < 1e-6, `logSoftmax([1e4, 1e4]) = ${v[0]}, ${v[1]}`);
  backward(ls, ops.tensor(gpu, [1, 0], [1, 2]));
  const g = await pair.grad!.floats();
  assert.ok(Math.abs(g[0] - 0.5) < 1e-6 && Math.abs(g[1] + 0.5) < 1e-6, `its gradient ${g[0]}, ${g[1]} (expected 0.5, -0.5)`);
  for (const log of [false, true]) {
    const n = 4096;
    const x = randomValues(3 * n, 7, -1e4, 1e4).map((v, i) => (i % 97 === 0 ? 1e4 - (i % 5) : v));
    const xt = ops.tensor(gpu, Float32Array.from(x), [3, n]);
    xt.requiresGrad = true;
    const y = log ? ops.logSoftmax(xt) : ops.softmax(xt);
    assertClose(await y.floats(), ref.softmax(Float64Array.from(Float32Array.from(x)), n, log), F32, `${log ? 'logSoftmax' : 'softmax'} 3x4096 of +-1e4`);
    backward(y, ops.zeros(gpu, y.shape));
    const gz = await xt.grad!.floats();
    assert.ok(gz.every((e) => Object.is(Math.abs(e), 0)), 'a zero output gradient gives exactly zero');
  }
  // -inf (an attention mask's value) gives exactly 0, and the other entries are the softmax of
  // the finite ones; rows of 200 leave some lanes of the workgroup layout only masked entries.
  // ops.tensor refuses -inf, so the masked logits are made on the device as log(0).
  const n = 200;
  const e = Float32Array.from(randomValues(2 * n, 9, -3, 3).map((v, i) => (i % n < 150 || i % 7 === 0 ? 0 : Math.exp(v))));
  const xt = ops.log(ops.tensor(gpu, e, [2, n]));
  const x = await xt.floats();
  const y = await ops.softmax(xt).floats();
  const finite = (r: number) => [...x.subarray(r * n, (r + 1) * n)].filter(Number.isFinite);
  const expected = [0, 1].flatMap((r) => [...ref.softmax(Float64Array.from(finite(r)), finite(r).length)]);
  const bad = [...y].findIndex((v, i) => x[i] === -Infinity && !Object.is(v, 0));
  assert.ok(bad < 0, `softmax of -inf is exactly 0 (element ${bad}: ${y[bad]})`);
  assertClose([...y].filter((_, i) => x[i] !== -Infinity), expected, F32, `softmax 2x${n} with masked entries`);
});

// More rows than one dimension of a dispatch holds (65535 workgroups): the workgroup layout's
// rows continue in the grid's second dimension.
t('softmax (workgroup): 70001 rows of 3', async () => {
  const gpu = await testGpu();
  gpu.tuning.softmax.variant = 'workgroup';
  const rows = 70001;
  const x = Float32Array.from(randomValues(rows * 3, 11, -5, 5));
  const y = await ops.softmax(ops.tensor(gpu, x, [rows, 3])).floats();
  assertClose(y, ref.softmax(Float64Array.from(x), 3), F32, `softmax ${rows}x3`);
});

t.run();
