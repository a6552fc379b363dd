// sum / mean / max over each axis and over everything, including axes long enough to take
// the two-pass (chunked) path, against float64; backward by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { sumSquares } from '../../src/launch/reduce.ts';

const t = suite('reduce');
const cases: [number[], number | undefined][] = [
  [[1], undefined], [[7], 0], [[5, 3], 0], [[5, 3], 1], [[3, 4, 5], 1], [[3, 4, 5], 2], [[2, 3, 4], undefined],
  [[10000], undefined], [[3, 5000], 1], [[6000, 3], 0],
];

for (const op of ['sum', 'mean', 'max'] as const) {
  t(`${op}: every axis, long axes (two passes), keepdim`, async () => {
    const gpu = await testGpu();
    for (const [shape, axis] of cases) {
      const x = randomValues(ref.size(shape), shape.length + (axis ?? 9));
      const xt = ops.tensor(gpu, Float32Array.from(x), shape);
      const y = ops[op](xt, axis);
      const expect = ref.reduce(op, Float64Array.from(Float32Array.from(x)), shape, axis);
      assertClose(await y.floats(), expect, { rtol: 2e-5, atol: 1e-5 }, `${op} [${shape}] axis ${axis}`);
      const yk = ops[op](xt, axis, true);
      assert.equal([...yk.shape], shape.map((d, i) => (axis === undefined || i === axis ? 1 : d)), 'keepdim shape');
      assertClose(await yk.floats(), expect, { rtol: 2e-5, atol: 1e-5 }, `${op} keepdim`);
      for (const z of [xt, y, yk]) z.dispose();
    }
    for (const [shape, axis] of [[[4, 5], 1], [[3, 4, 2], 0], [[6], undefined]] as [number[], number | undefined][]) {
      await checkGradients({
        what: `${op} [${shape}] axis ${axis}`, gpu,
        inputs: [{ data: randomValues(ref.size(shape), 3), shape }],
        op: (a) => ops[op](a, axis),
        reference: (a) => ref.reduce(op, a, shape, axis),
      });
    }
  });
}

t('sumToShape reduces broadcast axes', async () => {
  const gpu = await testGpu();
  const x = randomValues(2 * 3 * 4, 1);
  const xt = ops.tensor(gpu, Float32Array.from(x), [2, 3, 4]);
  const s = await ops.sumToShape(xt, [3, 1]).floats();
  const expect = new Float64Array(3);
  const x32 = Float32Array.from(x);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expect[j] += x32[(i * 3 + j) * 4 + k];
  assertClose(s, expect, F32, 'sumToShape');
});

// sumSquares (the gradient norm's per-tensor term): one pass, and the long-axis split whose
// second pass must sum the partial sums of squares, not square them again. Tolerance F32.
t('sumSquares: all elements (sizes 1, 1031, 70000: the two-pass split), per axis', async () => {
  const gpu = await testGpu();
  for (const n of [1, 1031, 70000]) {
    const x32 = Float32Array.from(randomValues(n, n, -3, 3));
    const got = await sumSquares(ops.tensor(gpu, x32, [n])).floats();
    assertClose(got, [x32.reduce((a, v) => a + v * v, 0)], F32, `sumSquares n=${n}`);
  }
  const x32 = Float32Array.from(randomValues(5 * 7, 3, -3, 3));
  const got = await sumSquares(ops.tensor(gpu, x32, [5, 7]), 1).floats();
  assertClose(got, Array.from({ length: 5 }, (_, r) => x32.slice(r * 7, r * 7 + 7).reduce((a, v) => a + v * v, 0)), F32, 'sumSquares axis 1');
});

t('bad axis names the op', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2, 3], [3]);
  assert.throws(() => ops.sum(x, 2), /sum: axis 2 is out of range for rank 1/);
});

t.run();
