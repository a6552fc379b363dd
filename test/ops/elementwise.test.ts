// Elementwise ops against float64 references: forward on random inputs at sizes that are
// not multiples of the workgroup (256) or of the vec4 width, and at size 1; backward
// against finite differences of the reference. Tolerances: see test/helpers/check.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import type { Tensor } from '../../src/tensor.ts';
import { backward } from '../../src/autograd.ts';

const t = suite('elementwise');

// Inputs kept in each function's domain (log, sqrt, pow need positives).
const domains: Record<string, [number, number]> = { log: [0.1, 3], sqrt: [0.1, 3], rsqrt: [0.1, 3], recip: [0.2, 3], powScalar: [0.1, 3] };
const unary: [string, (x: Tensor) => Tensor, number][] = [
  ['neg', ops.neg, 0], ['exp', ops.exp, 0], ['log', ops.log, 0], ['sqrt', ops.sqrt, 0], ['rsqrt', ops.rsqrt, 0],
  ['tanh', ops.tanh, 0], ['sigmoid', ops.sigmoid, 0], ['relu', ops.relu, 0], ['gelu', ops.gelu, 0], ['geluTanh', ops.geluTanh, 0], ['silu', ops.silu, 0], ['abs', ops.abs, 0],
  ['square', ops.square, 0], ['recip', ops.recip, 0], ['sin', ops.sin, 0], ['cos', ops.cos, 0], ['copy', ops.copy, 0],
  ['addScalar', (x) => ops.addScalar(x, 0.75), 0.75], ['mulScalar', (x) => ops.mulScalar(x, -1.5), -1.5], ['powScalar', (x) => ops.powScalar(x, 2.5), 2.5],
];

// gelu is the exact erf form now; the tanh form is geluTanh.
const unaryRef: Record<string, (x: number, a: number) => number> = { ...ref.unaryRef, gelu: ref.geluErf, geluTanh: ref.geluTanh, silu: ref.silu };

for (const [name, fn, alpha] of unary) {
  t(`${name}: forward at sizes 1, 7, 1031 and 4096; backward by finite differences`, async () => {
    const gpu = await testGpu();
    const [lo, hi] = domains[name] ?? [-2, 2];
    for (const n of [1, 7, 1031, 4096]) {
      const x = randomValues(n, n, lo, hi);
      const xt = ops.tensor(gpu, Float32Array.from(x), [n]);
      const y = await fn(xt).floats();
      const x32 = Float32Array.from(x);
      assertClose(y, Array.from(x32, (v) => unaryRef[name](v, alpha)), F32, `${name} n=${n}`);
      xt.dispose();
    }
    // relu and abs have a kink at 0: random inputs away from it.
    const x = randomValues(37, 5, lo, hi).map((v) => (['relu', 'abs'].includes(name) && Math.abs(v) < 0.05 ? v + 0.1 : v));
    await checkGradients({
      what: name, gpu, inputs: [{ data: x, shape: [37] }], op: fn,
      reference: (a) => a.map((v) => unaryRef[name](v, alpha)),
    });
  });
}

const binaryOps: [string, (a: Tensor, b: Tensor) => Tensor][] = [
  ['add', ops.add], ['sub', ops.sub], ['mul', ops.mul], ['div', ops.div], ['maximum', ops.maximum], ['minimum', ops.minimum], ['pow', ops.pow],
];
// same shape (vec4 and scalar paths), suffix broadcast (bias rows, scalars), general strides.
const shapes: [number[], number[]][] = [
  [[5, 7], [5, 7]], [[4, 8], [4, 8]], [[1], [1]], [[6, 5], [5]], [[3, 4, 8], [1, 8]], [[5], [1]],
  [[4, 1, 3], [1, 5, 1]], [[2, 3, 4], [3, 1]], [[7], [3, 1]],
];

for (const [name, fn] of binaryOps) {
  t(`${name}: broadcasting forward and backward`, async () => {
    const gpu = await testGpu();
    const pos = name === 'pow' || name === 'div';
    for (const [as, bs] of shapes) {
      const a = randomValues(ref.size(as), 1, pos ? 0.3 : -2, 2);
      const b = randomValues(ref.size(bs), 2, pos ? 0.3 : -2, 2);
      const at = ops.tensor(gpu, Float32Array.from(a), as);
      const bt = ops.tensor(gpu, Float32Array.from(b), bs);
      const out = fn(at, bt);
      const expected = ref.binary(name, Float64Array.from(Float32Array.from(a)), as, Float64Array.from(Float32Array.from(b)), bs);
      assert.equal([...out.shape], expected.shape, `${name} ${as} ${bs}: shape`);
      assertClose(await out.floats(), expected.out, F32, `${name} [${as}] , [${bs}]`);
      for (const x of [at, bt, out]) x.dispose();
      await checkGradients({
        what: `${name} [${as}],[${bs}]`, gpu,
        inputs: [{ data: a, shape: as }, { data: b, shape: bs }],
        op: fn,
        reference: (x, y) => ref.binary(name, x, as, y, bs).out,
      });
    }
  });
}

// Accuracy in units in the last place of f32, against float64. The bound for GELU, SiLU and
// sigmoid is 8 ulp: their kernels measured at most 4.9 (GELU), 3.6 (SiLU) over 2M points of
// [-10, 10] and the tails (a fitted erfcx, Cody-Waite exp; see kernels/elementwise.wgsl),
// so 8 leaves room for another driver's rounding of division and still catches any change of
// formula or coefficient (an error of 1e-6 relative is ~17 ulp). Derivatives are sums of two
// terms (GELU' = Phi + x phi, which is 0 at x = -0.75), so their error is bounded by ulps of
// the sum of the terms' magnitudes. Values under 1e-37 (subnormal; a driver may flush them)
// only need to be that small.
const ulp = (v: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(v))), -126) - 23);
function gridF32(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.fround(lo + ((hi - lo) * i) / (n - 1)));
}
const accuracyCases: { name: string; fn: (x: Tensor) => Tensor; f: (x: number) => number; df: (x: number) => number; scale: (x: number) => number }[] = [
  {
    name: 'gelu', fn: ops.gelu, f: ref.geluErf, df: ref.geluErfGrad,
    scale: (x) => ref.normalCdf(x) + Math.abs(x * ref.normalPdf(x)),
  },
  {
    name: 'silu', fn: ops.silu, f: ref.silu, df: ref.siluGrad,
    scale: (x) => { const s = ref.unaryRef.sigmoid(x, 0); return s + Math.abs(x * s * (1 - s)); },
  },
  {
    name: 'sigmoid', fn: ops.sigmoid, f: (x) => ref.unaryRef.sigmoid(x, 0), df: (x) => { const s = ref.unaryRef.sigmoid(x, 0); return s * (1 - s); },
    scale: (x) => { const s = ref.unaryRef.sigmoid(x, 0); return s * (1 - s); },
  },
];
for (const c of accuracyCases) {
  t(`${c.name}: within 8 ulp of float64 on [-10, 10] (dense), the tails to -16 and 16, and tiny |x|; gradient too`, async () => {
    const gpu = await testGpu();
    const xs = [...gridF32(-10, 10, 40001), ...gridF32(-16, -10, 3001), ...gridF32(10, 16, 301), ...[1e-30, -1e-30, 1e-7, -1e-7, 3e-4, -3e-4, 0]];
    // Both kernel paths: vec4 (a multiple of 4 elements) and scalar.
    for (const n of [xs.length - (xs.length % 4), xs.length - (xs.length % 4) - 1]) {
      const x = ops.tensor(gpu, xs.slice(0, n), [n]);
      x.requiresGrad = true;
      const y = c.fn(x);
      backward(y, ops.ones(gpu, [n]));
      const [yv, gv] = [await y.floats(), await x.grad!.floats()];
      for (let i = 0; i < n; i++) {
        const want = c.f(xs[i]);
        const err = Math.abs(yv[i] - want);
        if (!(err <= 8 * ulp(want) || (Math.abs(want) < 1e-37 && Math.abs(yv[i]) < 1e-37)))
          assert.unreachable(`${c.name}(${xs[i]}) = ${yv[i]}, float64 ${want}: ${(err / ulp(want)).toFixed(1)} ulp (n=${n})`);
        const dwant = c.df(xs[i]);
        const derr = Math.abs(gv[i] - dwant);
        const dscale = c.scale(xs[i]);
        if (!(derr <= 8 * ulp(dscale) || (dscale < 1e-37 && Math.abs(gv[i]) < 1e-37)))
          assert.unreachable(`${c.name}'(${xs[i]}) = ${gv[i]}, float64 ${dwant}: ${(derr / ulp(dscale)).toFixed(1)} ulp of ${dscale} (n=${n})`);
      }
      for (const z of [x, y]) z.dispose();
    }
  });
}

t('gelu, geluTanh, silu, sigmoid at extreme inputs: exact limits, no inf or NaN (values and gradients)', async () => {
  const gpu = await testGpu();
  const xs = [1e4, -1e4, 1e30, -1e30, 3.4e38, -3.4e38, 50, -50, 20, -20];
  const limits: Record<string, [(x: number) => number, (x: number) => number]> = {
    gelu: [(x) => (x > 0 ? x : 0), (x) => (x > 0 ? 1 : 0)],
    geluTanh: [(x) => (x > 0 ? x : 0), (x) => (x > 0 ? 1 : 0)],
    silu: [(x) => (x > 0 ? x : x * Math.exp(x)), (x) => (x > 0 ? 1 : Math.exp(x) * (1 + x))],
    sigmoid: [(x) => (x > 0 ? 1 : Math.exp(x)), (x) => Math.exp(-Math.abs(x))],
  };
  for (const [name, fn] of [['gelu', ops.gelu], ['geluTanh', ops.geluTanh], ['silu', ops.silu], ['sigmoid', ops.sigmoid]] as const) {
    for (const n of [8, 10]) {
      const x = ops.tensor(gpu, xs.slice(0, n), [n]);
      x.requiresGrad = true;
      const y = fn(x);
      backward(y, ops.ones(gpu, [n]));
      const [yv, gv] = [await y.floats(), await x.grad!.floats()];
      for (let i = 0; i < n; i++) {
        const [f, df] = limits[name];
        const want = Math.fround(f(xs[i]));
        const dwant = Math.fround(df(xs[i]));
        assert.ok(Number.isFinite(yv[i]) && Number.isFinite(gv[i]), `${name}(${xs[i]}): ${yv[i]}, gradient ${gv[i]}`);
        assert.ok(Math.abs(yv[i] - want) <= 1e-6 * Math.abs(want) + 1e-30, `${name}(${xs[i]}) = ${yv[i]}, expected ${want}`);
        assert.ok(Math.abs(gv[i] - dwant) <= 1e-6 * Math.abs(dwant) + 1e-30, `${name}'(${xs[i]}) = ${gv[i]}, expected ${dwant}`);
      }
    }
  }
});

t('pow with a negative base: integer exponents keep the sign rule, others give NaN (as in JavaScript)', async () => {
  const gpu = await testGpu();
  const x = [-2, -1.5, 3, -0.5, 0, 2];
  for (const e of [2, 3, -1, 0.5]) {
    const expect = x.map((v) => v ** e);
    for (const n of [6, 8]) {
      const xs = [...x, ...x].slice(0, n);
      const got = await ops.powScalar(ops.tensor(gpu, xs, [n]), e).floats();
      xs.forEach((v, i) => {
        const want = v ** e;
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]), `${v}^${e} should be NaN, got ${got[i]}`);
        else assert.ok(Math.abs(got[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)) || (!Number.isFinite(want) && got[i] === want), `${v}^${e} = ${got[i]}, expected ${want}`);
      });
    }
    const b = await ops.pow(ops.tensor(gpu, x, [6]), ops.full(gpu, [6], e)).floats();
    expect.forEach((want, i) => assert.ok(Number.isNaN(want) ? Number.isNaN(b[i]) : Math.abs(b[i] - want) <= 1e-5 * Math.max(1, Math.abs(want)) || b[i] === want, `pow ${x[i]}^${e}`));
  }
  await checkGradients({ what: 'powScalar, negative base', gpu, inputs: [{ data: Float64Array.from([-2, -1.5, -0.7, 1.2]), shape: [4] }], op: (a) => ops.powScalar(a, 3), reference: (a) => a.map((v) => v ** 3) });
});

t('broadcasts whose inner dimension spans several runs of 64', async () => {
  const gpu = await testGpu();
  for (const [as, bs] of [[[3, 150], [3, 1]], [[2, 3, 130], [1, 3, 1]], [[200], [1]]] as [number[], number[]][]) {
    const a = randomValues(ref.size(as), 1), b = randomValues(ref.size(bs), 2);
    const out = ops.mul(ops.tensor(gpu, Float32Array.from(a), as), ops.tensor(gpu, Float32Array.from(b), bs));
    assertClose(await out.floats(), ref.binary('mul', Float64Array.from(Float32Array.from(a)), as, Float64Array.from(Float32Array.from(b)), bs).out, F32, `mul [${as}] [${bs}]`);
  }
});

t('comparisons give 1/0 and no gradient', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, [1, 2, 3, 4], [4]);
  const b = ops.tensor(gpu, [1, 0, 5, 4], [4]);
  assert.equal([...(await ops.eq(a, b).floats())], [1, 0, 0, 1]);
  assert.equal([...(await ops.gt(a, b).floats())], [0, 1, 0, 0]);
});

t('full, zeros and ones fill every element (sizes past one workgroup)', async () => {
  const gpu = await testGpu();
  for (const n of [1, 257, 3001]) {
    assert.ok((await ops.full(gpu, [n], 2.5).floats()).every((v) => v === 2.5));
    assert.ok((await ops.zeros(gpu, [n]).floats()).every((v) => v === 0));
  }
});

t('bad input: broadcast mismatch, non-finite scalar, disposed tensor, two devices', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, [1, 2, 3], [3]);
  const b = ops.tensor(gpu, [1, 2], [2]);
  assert.throws(() => ops.add(a, b), /add: shapes \[3\] and \[2\] cannot be broadcast/);
  assert.throws(() => ops.mulScalar(a, NaN), /mulScalar: scalar must be a finite number/);
  assert.throws(() => ops.addScalar(a, Infinity), /finite/);
  b.dispose();
  assert.throws(() => ops.add(a, b), /was disposed/);
  assert.throws(() => ops.tensor(gpu, [1, NaN], [2]), /not finite/);
});

t.run();
