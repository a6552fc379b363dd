// l2Normalize (src/model/model.ts: RMSNorm with a unit weight, scaled by 1/sqrt(C)) against
// float64 x / sqrt(sum(x^2) + eps^2): rows of 1, odd widths and multiples of 4, a zero row
// (finite: 0), rows of large and small magnitude, and a row near eps (|x| ~ 1e-12: there the
// sum of squares and eps^2 are alike, so eps^2 passed unscaled to the RMSNorm, or not at all,
// moves the result by 10% and more); its gradient by finite differences.
// Tolerance F32 (2e-5 relative + 2e-6 of the largest |y|): a sum of at most 130 squares in f32
// and one inverse square root (rmsnorm.test.ts has the bound); a wrong scale or eps is off by
// far more (1/sqrt(C) alone is 0.09 at C = 130).
import { test } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import { tensor } from '../../src/ops/creation.ts';
import { l2Normalize } from '../../src/model/model.ts';

function reference(x: Float64Array, C: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[r * C + c] ** 2;
    const inv = 1 / Math.sqrt(s + eps * eps);
    for (let c = 0; c < C; c++) y[r * C + c] = x[r * C + c] * inv;
  }
  return y;
}

test('l2Normalize: float64 reference, zero and extreme rows', async () => {
  const gpu = await testGpu();
  for (const C of [1, 5, 64, 130]) {
    const rows = 7;
    const x = Float64Array.from(Float32Array.from(randomValues(rows * C, C, -2, 2)));
    x.fill(0, 2 * C, 3 * C); // a zero row: 0, not NaN
    for (let c = 0; c < C; c++) {
      x[3 * C + c] = Math.fround(x[3 * C + c] * 1e15);
      x[4 * C + c] = Math.fround(x[4 * C + c] * 1e-8);
      x[5 * C + c] = Math.fround(x[5 * C + c] * (1e-12 / Math.sqrt(C)));
    }
    const xt = tensor(gpu, Float32Array.from(x), [rows, C]);
    const y = await l2Normalize(xt).floats();
    xt.dispose();
    assertClose(y, reference(x, C, 1e-12), F32, `C ${C}`);
    for (let c = 0; c < C; c++) if (y[2 * C + c] !== 0) throw new Error(`C ${C}: zero row gave ${y[2 * C + c]}`);
  }
});

test('l2Normalize: gradient by finite differences (batched leading axes)', async () => {
  const gpu = await testGpu();
  // (C = 1 is left to the forward test: y = sign(x) has a zero gradient, which the relative
  // tolerance cannot judge.)
  for (const shape of [[3, 5], [2, 3, 8], [4, 2]]) {
    const C = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b);
    await checkGradients({
      what: `l2Normalize [${shape.join('x')}]`,
      gpu,
      inputs: [{ data: randomValues(n, n + 3, -1.5, 1.5), shape }],
      op: (x) => l2Normalize(x),
      reference: (x) => reference(x, C, 1e-12),
    });
  }
});

test.run();
