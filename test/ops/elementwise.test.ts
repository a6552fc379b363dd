// Every op of the elementwise table (src/launch/elementwise-table.ts), checked by one loop
// against the table's float64 references: forward on random inputs at sizes that are not
// multiples of the workgroup (256) or of the vec4 width, and at size 1; the gradient against
// finite differences of the reference; the table's derivative reference against finite
// differences of its function; and each op's extreme inputs (logits of +-1e4, tails),
// forward and derivative, plus an exactly-zero output gradient, which must give exactly
// zero (not NaN) input gradients. Tolerances: F32 and GRAD (test/helpers/check.ts), and
// EXTREME below.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues, type Tolerance } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import type { Tensor } from '../../src/tensor.ts';
import { BINARY_NAMES, BINARY_OPS, UNARY_NAMES, UNARY_OPS, type UnaryName } from '../../src/launch/elementwise-table.ts';

const t = suite('elementwise');

/**
 * At extreme inputs: a relative 2e-5 (a few ulp of f32 after the op's argument reduction,
 * whose error grows with |x|: exp(80) carries 80 x 6e-8 = 5e-6 from the rounding of the
 * reduced argument alone) and an absolute part of 1e-30 only, so that a tail value such as
 * sigmoid(-100) = 3.7e-44 (subnormal in f32) or softplus(-80) = 1.8e-35 passes when the
 * GPU flushes or rounds it near 0, but a wrong O(1) value anywhere does not.
 */
const EXTREME: Tolerance = { rtol: 2e-5, atol: 0 };
const closeAt = (got: number, want: number) => Math.abs(got - want) <= EXTREME.rtol * Math.abs(want) + 1e-30;

// The differentiable op of each table entry, found by its name in src/ops.
function opOf(name: UnaryName): (x: Tensor) => Tensor {
  const a = (UNARY_OPS[name].cases as { alpha?: number }).alpha ?? 0;
  const f = (ops as unknown as Record<string, (x: Tensor, s?: number) => Tensor>)[name];
  assert.type(f, 'function', `src/ops exports no '${name}' for the table entry`);
  return (x) => f(x, a);
}

for (const name of UNARY_NAMES) {
  const def = UNARY_OPS[name];
  const cases = def.cases as { domain?: readonly [number, number]; alpha?: number; extremes?: readonly number[]; kinks?: readonly number[] };
  const alpha = cases.alpha ?? 0;
  const [lo, hi] = cases.domain ?? [-2, 2];
  const fn = opOf(name);
  t(`${name}: forward at sizes 1, 7, 1031, 4096; gradient by finite differences`, async () => {
    const gpu = await testGpu();
    for (const n of [1, 7, 1031, 4096]) {
      const x32 = Float32Array.from(randomValues(n, n, lo, hi));
      const xt = ops.tensor(gpu, x32, [n]);
      const y = fn(xt);
      assertClose(await y.floats(), Array.from(x32, (v) => def.ref(v, alpha)), F32, `${name} n=${n}`);
      xt.dispose();
      y.dispose();
    }
    // Away from kinks, where a difference quotient straddles the jump.
    const x = randomValues(37, 5, lo, hi).map((v) => ((cases.kinks ?? []).some((k) => Math.abs(v - k) < 0.05) ? v + 0.1 : v));
    await checkGradients({ what: name, gpu, inputs: [{ data: x, shape: [37] }], op: fn, reference: (a) => a.map((v) => def.ref(v, alpha)) });
    // The table's derivative reference agrees with its function (float64, central differences).
    for (const v of x) {
      const h = 1e-6 * Math.max(1, Math.abs(v));
      const fd = (def.ref(v + h, alpha) - def.ref(v - h, alpha)) / (2 * h);
      assert.ok(Math.abs(fd - def.dref(v, alpha)) <= 1e-6 * Math.max(1, Math.abs(fd)), `${name}: dref(${v}) = ${def.dref(v, alpha)}, finite differences ${fd}`);
    }
  });

  t(`${name}: extreme inputs, and a zero output gradient gives exactly zero`, async () => {
    const gpu = await testGpu();
    const xs = Float32Array.from(cases.extremes ?? [lo, hi]);
    const x = ops.tensor(gpu, xs, [xs.length]);
    x.requiresGrad = true;
    const y = fn(x);
    const yv = await y.floats();
    backward(y, ops.ones(gpu, y.shape));
    const gv = await x.grad!.floats();
    xs.forEach((v, i) => {
      assert.ok(closeAt(yv[i], def.ref(v, alpha)), `${name}(${v}) = ${yv[i]}, expected ${def.ref(v, alpha)}`);
      assert.ok(closeAt(gv[i], def.dref(v, alpha)), `${name}'(${v}) = ${gv[i]}, expected ${def.dref(v, alpha)}`);
    });
    x.grad!.dispose();
    x.grad = null;
    const y2 = fn(x);
    backward(y2, ops.zeros(gpu, y2.shape));
    const z = await x.grad!.floats();
    z.forEach((g, i) => assert.ok(Object.is(Math.abs(g), 0), `${name}: zero output gradient gave ${g} at x = ${xs[i]}`));
    x.dispose();
  });
}

t('softplus: the table entry is an op with its own kernel case (one entry added)', () => {
  assert.ok(UNARY_NAMES.includes('softplus'));
  assert.type(ops.softplus, 'function');
});

// same shape (vec4 and scalar paths), suffix broadcast (bias rows, scalars), general strides.
const shapes: [number[], number[]][] = [
  [[5, 7], [5, 7]], [[4, 8], [4, 8]], [[1], [1]], [[6, 5], [5]], [[3, 4, 8], [1, 8]], [[5], [1]],
  [[4, 1, 3], [1, 5, 1]], [[2, 3, 4], [3, 1]], [[7], [3, 1]],
];

for (const name of BINARY_NAMES) {
  const def = BINARY_OPS[name] as { ref: (a: number, b: number) => number; positive?: boolean };
  const fn = (ops as unknown as Record<string, (a: Tensor, b: Tensor) => Tensor>)[name];
  const differentiable = name !== 'eq' && name !== 'gt';
  t(`${name}: broadcasting forward${differentiable ? ' and backward' : ''}`, async () => {
    const gpu = await testGpu();
    for (const [as, bs] of shapes) {
      const a = randomValues(ref.size(as), 1, def.positive ? 0.3 : -2, 2);
      // eq needs ties to be tested: b copies some of a's values.
      const b = randomValues(ref.size(bs), 2, def.positive ? 0.3 : -2, 2).map((v, i) => (name === 'eq' && i % 2 === 0 ? a[i % a.length] : v));
      const at = ops.tensor(gpu, Float32Array.from(a), as);
      const bt = ops.tensor(gpu, Float32Array.from(b), bs);
      const out = fn(at, bt);
      const a64 = Float64Array.from(Float32Array.from(a));
      const b64 = Float64Array.from(Float32Array.from(b));
      const expected = ref.broadcastBinary(def.ref, a64, as, b64, bs);
      assert.equal([...out.shape], expected.shape, `${name} ${as} ${bs}: shape`);
      assertClose(await out.floats(), expected.out, F32, `${name} [${as}] , [${bs}]`);
      for (const x of [at, bt, out]) x.dispose();
      if (differentiable)
        await checkGradients({
          what: `${name} [${as}],[${bs}]`, gpu,
          inputs: [{ data: a, shape: as }, { data: b, shape: bs }],
          op: fn,
          reference: (x, y) => ref.broadcastBinary(def.ref, x, as, y, bs).out,
        });
    }
  });
}

t.run();
