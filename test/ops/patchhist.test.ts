// Soft patch histograms (kernels/patchhist.wgsl) against a float64 reference built another way:
// each bin's membership volume w_k(x) is computed voxel by voxel from the hat formula
// max(0, min((v - c_{k-1}) / (c_k - c_{k-1}), (c_{k+1} - v) / (c_{k+1} - c_k))) (ends extended),
// then averaged per patch by the float64 Conv3d reference (test/reference/cpu.ts patchEmbed3d)
// with a constant 1 / |patch| weight, so the row order is checked against the patch
// embedding's. Cases: patches that are not multiples of anything (3x2x5), size-1 patches, K = 2
// and K = 32, windows on a 2x1x3 grid, B = 2, values beyond both end centres, values exactly on
// centres, and extreme values (+-1e30, +-3.4e38).
//
// Tolerance: rtol 1e-5, atol 1e-5. Each output is K / |patch| times a sum of <= 1024 terms in
// [0, 1] summed in f32 (roundoff ~ sqrt(1024) * 6e-8 of the sum typically, i.e. ~2e-6 of K <= 32
// relative: atol 1e-5 plus rtol on the value); a wrong bin, weight or row is O(K / |patch|) >=
// 2e-3.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('patchhist');
const TOL = { rtol: 1e-5, atol: 1e-5 };

function hat(v: number, c: Float64Array, k: number): number {
  const K = c.length;
  if (k === 0 && v <= c[0]) return 1;
  if (k === K - 1 && v >= c[K - 1]) return 1;
  const up = k > 0 ? (v - c[k - 1]) / (c[k] - c[k - 1]) : Infinity;
  const down = k < K - 1 ? (c[k + 1] - v) / (c[k + 1] - c[k]) : Infinity;
  return Math.max(0, Math.min(up, down, 1));
}

/** Float64 reference: [B * nWin, T, K]. */
function reference(x: Float64Array, xs: number[], c: Float64Array, patch: number[], window?: number[]): Float64Array {
  const K = c.length;
  const n = patch[0] * patch[1] * patch[2];
  const w = new Float64Array(n).fill(K / n);
  const per = Array.from({ length: K }, (_, k) => ref.patchEmbed3d(Float64Array.from(x, (v) => hat(v, c, k)), xs, w, [1, 1, ...patch], undefined, window));
  const rows = per[0].length;
  const out = new Float64Array(rows * K);
  for (let m = 0; m < rows; m++) for (let k = 0; k < K; k++) out[m * K + k] = per[k][m];
  return out;
}

const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

type Case = { what: string; x: number[]; patch: [number, number, number]; window?: [number, number, number]; centres: number[] };
const ascending = (K: number, lo: number, hi: number) => Array.from({ length: K }, (_, i) => lo + ((hi - lo) * i) / (K - 1));
const cases: Case[] = [
  { what: '3x2x5 patches, K=5 (uneven centres)', x: [1, 1, 6, 4, 10], patch: [3, 2, 5], centres: [-0.8, -0.5, 0, 0.1, 0.7] },
  { what: 'B=2, windows 2x1x3, K=7', x: [2, 1, 12, 4, 24], patch: [3, 2, 4], window: [6, 4, 8], centres: ascending(7, -1, 1) },
  { what: '1x1x1 patches, K=2', x: [1, 1, 3, 2, 5], patch: [1, 1, 1], centres: [-0.25, 0.5] },
  { what: '16x16x4 patches (1024 voxels), 2 windows, K=32', x: [1, 1, 32, 16, 8], patch: [16, 16, 4], window: [16, 16, 8], centres: ascending(32, -0.9, 0.9) },
  { what: 'a single patch, K=3', x: [1, 1, 2, 3, 4], patch: [2, 3, 4], centres: [-0.1, 0, 0.1] },
];

t('forward against a float64 reference', async () => {
  const gpu = await testGpu();
  for (const [i, c] of cases.entries()) {
    // Values from -1.5 to 1.5: below the first centre, above the last, and between.
    const x = f32(randomValues(ref.size(c.x), 10 + i, -1.5, 1.5));
    const cs = f32(c.centres);
    // A few voxels exactly on centres.
    for (let j = 0; j < Math.min(x.length, 3 * cs.length); j += 3) x[j] = cs[(j / 3) % cs.length];
    const xt = ops.tensor(gpu, Float32Array.from(x), c.x);
    const ct = ops.tensor(gpu, Float32Array.from(cs), [cs.length]);
    const y = ops.patchHistogram3d(xt, ct, { patch: c.patch, window: c.window, hostCentres: cs });
    const expect = reference(x, c.x, cs, c.patch, c.window);
    const nWin = c.window ? c.x.slice(2).reduce((a, s, j) => a * (s / c.window![j]), 1) : 1;
    const T = (c.window ?? c.x.slice(2)).reduce((a, s, j) => a * (s / c.patch[j]), 1);
    assert.equal([...y.shape], [c.x[0] * nWin, T, cs.length], `${c.what}: shape`);
    const got = await y.floats();
    assertClose(got, expect, TOL, c.what);
    // Every row is K times a distribution.
    for (let m = 0; m < got.length / cs.length; m++) {
      let s = 0;
      for (let k = 0; k < cs.length; k++) s += got[m * cs.length + k];
      assert.ok(Math.abs(s / cs.length - 1) < 1e-5, `${c.what}: row ${m} sums to ${s}, not K = ${cs.length}`);
    }
    assert.is(y.requiresGrad, false);
    for (const z of [xt, ct, y]) z.dispose();
  }
});

t('extreme values land in the end bins', async () => {
  const gpu = await testGpu();
  const xs = [1, 1, 2, 1, 2];
  const x = ops.tensor(gpu, new Float32Array([-1e30, 1e30, 3.4e38, -3.4e38]), xs);
  const ct = ops.tensor(gpu, new Float32Array([-1, 0, 1]), [3]);
  const y = await ops.patchHistogram3d(x, ct, { patch: [1, 1, 1] }).floats();
  assert.equal(Array.from(y), [3, 0, 0, 0, 0, 3, 0, 0, 3, 3, 0, 0]);
});

t('errors name the op and what is wrong', async () => {
  const gpu = await testGpu();
  const z = (s: number[]) => ops.zeros(gpu, s);
  const c = z([4]);
  assert.throws(() => ops.patchHistogram3d(z([1, 4, 4, 8]), c, { patch: [2, 2, 4] }), /patchHistogram3d: x \[1x4x4x8\].*one-channel volume/);
  assert.throws(() => ops.patchHistogram3d(z([1, 2, 4, 4, 8]), c, { patch: [2, 2, 4] }), /one-channel volume/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), z([33]), { patch: [2, 2, 4] }), /centres must be \[K\] with 2 <= K <= 32/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), z([1]), { patch: [2, 2, 4] }), /centres must be \[K\]/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), c, { patch: [2, 2, 4], hostCentres: [0, 1, 1, 2] }), /strictly ascending \(centre 2 is 1, after 1\)/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 5, 4, 8]), c, { patch: [2, 2, 4] }), /volume 5x4x8 is not a whole number of 2x2x4 patches/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), c, { patch: [2, 2, 4], window: [2, 2, 6] }), /window 2x2x6 is not a whole number of 2x2x4 patches/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), c, { patch: [2, 2, 4], hostCentres: [0, 1, 2] }), /3 host centres for a centres tensor of 4/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), c, { patch: [2, 2, 4], hostCentres: [-Infinity, 0, 1, 2] }), /centre 0 is -Infinity, not a finite number/);
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), c, { patch: [2, 2, 4], window: [4, 4] as unknown as [number, number, number] }), /patch and window must be 3 positive integers each/);
  const g = z([1, 1, 4, 4, 8]);
  g.requiresGrad = true;
  assert.throws(() => ops.patchHistogram3d(g, c, { patch: [2, 2, 4] }), /patchHistogram3d: x .* requires a gradient/);
  const cg = z([4]);
  cg.requiresGrad = true;
  assert.throws(() => ops.patchHistogram3d(z([1, 1, 4, 4, 8]), cg, { patch: [2, 2, 4] }), /patchHistogram3d: centres .* requires a gradient/);
});

t.run();
