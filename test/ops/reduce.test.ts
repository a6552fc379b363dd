// sum / mean / max over each axis and over everything, including axes long enough to take
// the two-pass (chunked) path, against float64, in both layouts of contiguous reductions (one
// invocation, one workgroup of 64 per output); backward by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { sumSquares, sumToShape, type ReduceLayout } from '../../src/launch/reduce.ts';

const t = suite('reduce');
t.after.each(resetTuning);
const LAYOUTS: ReduceLayout[] = ['row', 'workgroup'];
const cases: [number[], number | undefined][] = [
  [[1], undefined], [[7], 0], [[5, 3], 0], [[5, 3], 1], [[3, 4, 5], 1], [[3, 4, 5], 2], [[2, 3, 4], undefined],
  [[10000], undefined], [[3, 5000], 1], [[6000, 3], 0],
];

for (const [op, variant] of (['sum', 'mean', 'max'] as const).flatMap((o) => LAYOUTS.map((v) => [o, v] as const))) {
  t(`${op} (${variant}): every axis, long axes (two passes), keepdim`, async () => {
    const gpu = await testGpu();
    gpu.tuning.reduce.variant = variant;
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
for (const variant of LAYOUTS) t(`sumSquares (${variant}): all elements (sizes 1, 1031, 70000: the two-pass split), per axis`, async () => {
  const gpu = await testGpu();
  gpu.tuning.reduce.variant = variant;
  for (const n of [1, 1031, 70000]) {
    const x32 = Float32Array.from(randomValues(n, n, -3, 3));
    const got = await sumSquares(ops.tensor(gpu, x32, [n])).floats();
    assertClose(got, [x32.reduce((a, v) => a + v * v, 0)], F32, `sumSquares n=${n}`);
  }
  const x32 = Float32Array.from(randomValues(5 * 7, 3, -3, 3));
  const got = await sumSquares(ops.tensor(gpu, x32, [5, 7]), 1).floats();
  assertClose(got, Array.from({ length: 5 }, (_, r) => x32.slice(r * 7, r * 7 + 7).reduce((a, v) => a + v * v, 0)), F32, 'sumSquares axis 1');
});

// The workgroup layout's edges: more outputs than one grid dimension holds (70001 rows; they
// go on in its second dimension), rows of -inf (the max of a masked row is -inf, not the
// lowest float), and the accumulated gradient added in the store (sumToShape's `take`).
for (const variant of LAYOUTS) t(`reduce (${variant}): 70001 rows, rows of -inf, an accumulated sum`, async () => {
  const gpu = await testGpu();
  gpu.tuning.reduce.variant = variant;
  const rows = 70001;
  const x32 = Float32Array.from(randomValues(rows * 2, 5, -3, 3));
  assertClose(await ops.sum(ops.tensor(gpu, x32, [rows, 2]), 1).floats(), Array.from({ length: rows }, (_, r) => x32[2 * r] + x32[2 * r + 1]), F32, `sum [${rows}, 2] axis 1`);
  // ops.tensor refuses -inf: log(0) makes it on the device. Row 0 all -inf, row 1 one finite.
  const masked = ops.log(ops.tensor(gpu, Array.from({ length: 2 * 200 }, (_, i) => (i === 333 ? 2 : 0)), [2, 200]));
  const m = await ops.max(masked, 1).floats();
  assert.ok(m[0] === -Infinity && Math.abs(m[1] - Math.log(2)) < 1e-6, `max of masked rows: ${m[0]}, ${m[1]} (expected -inf, ${Math.log(2)})`);
  const g = Float32Array.from(randomValues(300, 6));
  const add = ops.tensor(gpu, [0.25], [1]);
  const got = await sumToShape(ops.tensor(gpu, g, [300]), [1], () => add).floats();
  assertClose(got, [g.reduce((a, v) => a + v, 0) + 0.25], F32, 'sumToShape [300] to [1] with an accumulated 0.25');
});

// Few outputs and a long axis split it into chunks; at [7, 1198081] the split used to ask for
// 1170 chunks of 1025 elements, the last four starting past the row's end, and max's empty
// chunks read the next row's first element. Row r holds r: its max must be r, not r + 1.
for (const variant of LAYOUTS) t(`max and sum (${variant}): [7, 1198081], no chunk past a row's end`, async () => {
  const gpu = await testGpu();
  gpu.tuning.reduce.variant = variant;
  const [rows, n] = [7, 1198081];
  const x = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) x.fill(r, r * n, (r + 1) * n);
  const xt = ops.tensor(gpu, x, [rows, n]);
  assert.equal([...(await ops.max(xt, 1).floats())], [0, 1, 2, 3, 4, 5, 6], 'max of each row');
  assertClose(await ops.sum(xt, 1).floats(), Array.from({ length: rows }, (_, r) => r * n), F32, 'sum of each row');
  xt.dispose();
});

t('bad axis names the op', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2, 3], [3]);
  assert.throws(() => ops.sum(x, 2), /sum: axis 2 is out of range for rank 1/);
});

t.run();
