// Comparing GPU results with float64 references.
import * as assert from 'uvu/assert';
import type { Tensor } from '../../src/tensor.ts';
import { backward } from '../../src/autograd.ts';
import { tensor } from '../../src/ops/creation.ts';
import { numericGrad, type F64 } from '../reference/cpu.ts';
import { rng } from './random.ts';

export interface Tolerance {
  /** Relative part, scaled by |expected|. */
  rtol: number;
  /** Absolute part, scaled by the largest |expected| (so it tracks the data's magnitude). */
  atol: number;
}

/**
 * Default tolerance for f32 kernels against float64: f32 has a 6e-8 unit roundoff; sums of
 * K terms can lose ~K * 6e-8 in the worst case and ~sqrt(K) * 6e-8 typically. For the sizes
 * in these tests (K <= a few hundred) a relative 2e-5 plus 2e-6 of the largest magnitude
 * holds with margin while catching any indexing or formula error (those give O(1) errors).
 */
export const F32: Tolerance = { rtol: 2e-5, atol: 2e-6 };

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const allowed = tol.atol * Math.max(scale, 1e-30) + tol.rtol * Math.abs(expected[i]);
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= allowed)) {
      const excess = Number.isNaN(err) ? Infinity : err / allowed;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (worst >= 0)
    assert.unreachable(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (error ${Math.abs(actual[worst] - expected[worst]).toExponential(2)} > allowed ${(tol.atol * scale + tol.rtol * Math.abs(expected[worst])).toExponential(2)})`,
    );
}

/** Random values in [lo, hi) from a seed. */
export function randomValues(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/**
 * Checks the autograd gradients of `op` against central finite differences of a float64
 * reference. The scalar is L = sum(op(x) * R) with a fixed random R, so every output
 * element's gradient path is exercised with a distinct weight.
 */
export async function checkGradients(opts: {
  what: string;
  gpu: import('../../src/gpu/runtime.ts').Gpu;
  inputs: { data: F64; shape: number[] }[];
  /** Inputs that need a gradient (default: all). */
  wrt?: number[];
  op: (...xs: Tensor[]) => Tensor;
  reference: (...xs: F64[]) => F64;
  tol?: Tolerance;
  seed?: number;
}): Promise<void> {
  const { gpu, inputs, op, reference, what } = opts;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const xs = inputs.map((inp, i) => {
    const t = tensor(gpu, Float32Array.from(inp.data), inp.shape, `in${i}`);
    t.requiresGrad = wrt.includes(i);
    return t;
  });
  // Use exactly the f32 values the GPU sees in the reference too.
  const x64 = inputs.map((inp) => Float64Array.from(Float32Array.from(inp.data)));
  const y = op(...xs);
  const R = randomValues(y.size, opts.seed ?? 99);
  const seed = tensor(gpu, Float32Array.from(R), y.shape, 'seed');
  backward(y, seed);
  for (const i of wrt) {
    const g = xs[i].grad;
    assert.ok(g, `${what}: input ${i} got no gradient`);
    const gpuGrad = await g!.floats();
    const num = numericGrad((xi) => {
      const args = x64.map((v, j) => (j === i ? xi : v));
      const out = reference(...args);
      let s = 0;
      for (let k = 0; k < out.length; k++) s += out[k] * R[k];
      return s;
    }, x64[i]);
    assertClose(gpuGrad, num, opts.tol ?? GRAD, `${what}: gradient of input ${i}`);
  }
  for (const t of [...xs, y, seed]) t.dispose();
}

/**
 * Default tolerance for analytic f32 gradients against float64 finite differences: the
 * difference quotient itself is accurate to ~1e-9 (float64, h = 1e-5); the GPU gradient
 * carries f32 roundoff of the forward values it reuses (~1e-7 relative) amplified by the
 * chain of a few ops, so 1e-4 relative plus 1e-5 of the largest magnitude.
 */
export const GRAD: Tolerance = { rtol: 1e-4, atol: 1e-5 };
