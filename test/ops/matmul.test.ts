// matmul against float64 for every kernel variant (subgroup, tiled, tiled-wg at each tile
// this device holds, f16), every transpose combination, batched and broadcast operands, the
// bias epilogue, sizes that are not multiples of the tiles (32 x 32, 64 x 64, 128 x 128 per
// workgroup; k-steps of 8 and 16; vec4 along k and n) including 1, and extreme magnitudes.
// The subgroup kernel's transposed-A path (vec4 along m) on its own sizes, group widths and
// row counts. Backward by finite differences.
// Tolerances: f32 variants TOL below (F32 of test/helpers/check.ts with rtol scaled for
// K-term sums), and in the extreme-value test the worst-case bound (K + 2) 2^-24 sum|a b|
// (one rounding per multiply and per add). f16: the bound of f16Bound() below, derived
// from f16's rounding of each operand.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import { rng } from '../helpers/random.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { matmulVariantFor } from '../../src/ops/matmul.ts';
import { MATMUL_DEFAULT_TILE, MATMUL_TILES, matmulEpilogue, matmulTileName, matmulTileProblem, uniformBByDefault } from '../../src/launch/matmul.ts';
import { binary, unary, unaryBackward } from '../../src/launch/elementwise.ts';
import { linearResidual, mlpGelu } from '../../src/ops/matmul.ts';
import { backward } from '../../src/autograd.ts';
import { scope } from '../../src/tensor.ts';
import { normalCdf } from '../../src/launch/float64.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import type { MatmulTile } from '../../src/gpu/tuning.ts';
import type { Tensor } from '../../src/tensor.ts';
import { ShapeError } from '../../src/errors.ts';

const t = suite('matmul');
t.after.each(resetTuning);
const TOL = { rtol: 1e-4, atol: 2e-5 };
const sizes: [number, number, number][] = [[1, 1, 1], [5, 7, 3], [33, 17, 9], [64, 64, 64], [70, 130, 45], [40, 12, 36], [3, 200, 5], [1, 300, 70]];
// Each tile is checked on its three load paths (vec4 along k or m/n untransposed, vec4 with
// both transposes, scalar): a size past a 128 x 128 tile in both directions with k past
// two 16-steps and a remainder, and sizes below one tile down to 1 that share those paths
// (each path is one pipeline; a cold lavapipe compiles one in 1-6 s).
const tileCases: [number, number, number, boolean][] = [
  [136, 40, 132, false], [136, 40, 132, true], [4, 8, 4, false], [4, 8, 4, true],
  [133, 37, 139, false], [5, 7, 3, false], [1, 1, 1, false],
];

interface Variant {
  name: string;
  kind: 'subgroup' | 'tiled' | 'tiled-wg' | 'f16';
  tile?: MatmulTile;
}

/** Every variant this device runs; `allTiles`: tiled-wg at every tile of MATMUL_TILES it holds. */
async function variants(allTiles = false): Promise<Variant[]> {
  const gpu = await testGpu();
  const out: Variant[] = gpu.subgroupMinSize >= 8 ? [{ name: 'subgroup', kind: 'subgroup' }] : [];
  out.push({ name: 'tiled', kind: 'tiled' });
  for (const tile of allTiles ? MATMUL_TILES : [MATMUL_DEFAULT_TILE])
    if (!matmulTileProblem(gpu, tile, false)) out.push({ name: `tiled-wg ${matmulTileName(tile)}`, kind: 'tiled-wg', tile });
  if (gpu.features.has('shader-f16'))
    for (const tile of allTiles ? [MATMUL_DEFAULT_TILE, MATMUL_TILES[4]] : [MATMUL_DEFAULT_TILE]) out.push({ name: `f16 ${matmulTileName(tile)}`, kind: 'f16', tile });
  else console.log('  (no shader-f16 on this device: the f16 variant is not tested here)');
  return out;
}

function use(gpu: Gpu, v: Variant | null): void {
  gpu.tuning.matmul.variant = v ? v.kind : 'auto';
  gpu.tuning.matmul.tile = v?.tile ?? null;
}

/** f16's rounding of an f32 operand in WGSL: up or down (not necessarily to nearest), so
 * 2 * 2^-11 relative in f16's normal range, and at most 2^-14 absolute below it (subnormal
 * or flushed to zero). */
const e16 = (x: number) => (Math.abs(x) >= 2 ** -14 ? 2 ** -10 * Math.abs(x) : 2 ** -14);

/**
 * Per-entry error bound of op(A) @ op(B) (+ bias): with E = sum_k (|a| e16(b) + |b| e16(a) +
 * e16(a) e16(b)) the operands' f16 rounding (0 for f32 variants; an f16 x f16 product is
 * exact in f32, 22 significant bits of 24) and S = sum |a b|, the f32 multiply-adds add at
 * most (K + 2) 2^-24 (S + E + |bias|): a rounding per multiply and per add, first order.
 */
function bounds(a: Float64Array, b: Float64Array, M: number, K: number, N: number, transA: boolean, transB: boolean, f16: boolean, bias?: Float64Array): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let S = 0;
      let E = 0;
      for (let k = 0; k < K; k++) {
        const x = transA ? a[k * M + m] : a[m * K + k];
        const y = transB ? b[n * K + k] : b[k * N + n];
        S += Math.abs(x * y);
        if (f16) E += Math.abs(x) * e16(y) + Math.abs(y) * e16(x) + e16(x) * e16(y);
      }
      out[m * N + n] = E + (K + 2) * 2 ** -24 * (S + E + (bias ? Math.abs(bias[n]) : 0));
    }
  return out;
}

function assertWithin(actual: Float32Array, expected: Float64Array, bound: Float64Array, what: string): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= bound[i])) assert.unreachable(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (error ${err.toExponential(2)} > bound ${bound[i].toExponential(2)})`);
    worst = Math.max(worst, err / Math.max(bound[i], 1e-300));
  }
  return worst;
}

const f32of = (x: Float64Array) => Float64Array.from(Float32Array.from(x));

async function checkCase(gpu: Gpu, v: Variant, M: number, K: number, N: number, transA: boolean, transB: boolean, a: Float64Array, b: Float64Array, bias?: Float64Array): Promise<void> {
  const at = ops.tensor(gpu, Float32Array.from(a), transA ? [K, M] : [M, K]);
  const bt = ops.tensor(gpu, Float32Array.from(b), transB ? [N, K] : [K, N]);
  const biast = bias ? ops.tensor(gpu, Float32Array.from(bias), [N]) : undefined;
  const c = ops.matmul(at, bt, { transA, transB, bias: biast });
  assert.equal([...c.shape], [M, N]);
  const [a64, b64, bias64] = [f32of(a), f32of(b), bias ? f32of(bias) : undefined];
  const expect = ref.matmul(a64, b64, M, K, N, transA, transB, bias64);
  const what = `${v.name} ${M}x${K}x${N} transA=${transA} transB=${transB}${bias ? ' bias' : ''}`;
  if (v.kind === 'f16') assertWithin(await c.floats(), expect, bounds(a64, b64, M, K, N, transA, transB, true, bias64), what);
  else assertClose(await c.floats(), expect, TOL, what);
  for (const x of [at, bt, c, biast]) x?.dispose();
}

t('2D, all transposes, every variant, odd sizes', async () => {
  const gpu = await testGpu();
  try {
    for (const v of await variants()) {
      use(gpu, v);
      for (const [M, K, N] of sizes)
        for (const transA of [false, true])
          for (const transB of [false, true]) await checkCase(gpu, v, M, K, N, transA, transB, randomValues(M * K, M + K), randomValues(K * N, K + N));
    }
  } finally {
    use(gpu, null);
  }
});

t('tiled-wg and f16 at every tile: sizes past 128 x 128 and below one tile, each load path', async () => {
  const gpu = await testGpu();
  try {
    for (const v of (await variants(true)).filter((x) => x.tile)) {
      use(gpu, v);
      for (const [M, K, N, trans] of tileCases) await checkCase(gpu, v, M, K, N, trans, trans, randomValues(M * K, 3 * M + K), randomValues(K * N, 5 * K + N));
    }
  } finally {
    use(gpu, null);
  }
});

t('the subgroup kernel with 4-lane groups (as on SwiftShader), run here with shuffles', async () => {
  const gpu = await testGpu();
  if (gpu.subgroupMinSize < 4) {
    console.log('  skip: no subgroups of 4 or more lanes on this device');
    return;
  }
  gpu.tuning.matmul.variant = 'subgroup';
  gpu.tuning.matmul.group = 4;
  try {
    for (const [M, K, N] of [[5, 7, 3], [70, 130, 45], [64, 64, 64]])
      for (const transB of [false, true]) await checkCase(gpu, { name: '4-lane subgroup', kind: 'subgroup' }, M, K, N, false, transB, randomValues(M * K, 1), randomValues(K * N, 2));
  } finally {
    gpu.tuning.matmul.group = null;
    gpu.tuning.matmul.variant = 'auto';
  }
});

t('subgroup kernel, transposed A read along m (TA4): sizes past and below its tiles, 1, batches, bias, 8- and 4-lane groups, 64 rows', async () => {
  // The TA4 path runs for op(A) = A^T with M % 4 == 0 (a linear layer's weight gradient
  // G^T X). M: 4 (one vec4), 36 and 100 (past 32-row blocks, partial last block), 300 (10
  // blocks: several groups per workgroup, padded); K: 1, 7 and 130 (k past K reads 0); N: 1,
  // 3 and 45 (scalar stores), 64 (vec4 stores). Tolerance TOL as for every f32 variant.
  const gpu = await testGpu();
  if (gpu.subgroupMinSize < 4) {
    console.log('  skip: no subgroups of 4 or more lanes on this device');
    return;
  }
  const v: Variant = { name: 'subgroup TA4', kind: 'subgroup' };
  const cases: [number, number, number, boolean][] = [
    [4, 1, 1, false], [4, 7, 3, true], [36, 130, 45, false], [100, 33, 64, true], [300, 9, 20, false], [8, 130, 1, false],
  ];
  try {
    use(gpu, v);
    const groups: (4 | 8 | null)[] = gpu.subgroupMinSize >= 8 ? [null, 4] : [null];
    for (const group of groups)
      for (const rows of [32, 64]) {
        gpu.tuning.matmul.group = group;
        gpu.tuning.matmul.rows = rows;
        const name = { ...v, name: `${v.name} group ${group ?? 'auto'} rows ${rows}` };
        for (const [M, K, N, transB] of cases) await checkCase(gpu, name, M, K, N, true, transB, randomValues(M * K, M + 3 * K), randomValues(K * N, K + 5 * N));
        await checkCase(gpu, name, 36, 20, 13, true, false, randomValues(36 * 20, 7), randomValues(20 * 13, 8), randomValues(13, 9));
      }
    gpu.tuning.matmul.group = null;
    gpu.tuning.matmul.rows = 32;
    // The groups per workgroup follow the threads they are balanced over (1: the most groups;
    // 16: one group per workgroup): same results at each.
    for (const threads of [1, 3, 16]) {
      gpu.tuning.matmul.threads = threads;
      for (const [M, K, N] of [[300, 9, 20], [96, 130, 96]]) await checkCase(gpu, { ...v, name: `${v.name} threads ${threads}` }, M, K, N, true, false, randomValues(M * K, M + K), randomValues(K * N, K + N));
    }
    gpu.tuning.matmul.threads = null;
    // Batched transposed A: both batched, B shared (A^T is never folded into rows), A shared.
    const M = 12, K = 10, N = 6;
    for (const [as, bs] of [[[3, K, M], [3, K, N]], [[2, K, M], [K, N]], [[K, M], [4, K, N]]] as [number[], number[]][]) {
      const a = f32of(randomValues(ref.size(as), 5));
      const b = f32of(randomValues(ref.size(bs), 6));
      const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), as), ops.tensor(gpu, Float32Array.from(b), bs), { transA: true });
      const batch = Math.max(ref.size(as.slice(0, -2)), ref.size(bs.slice(0, -2)));
      const expect = new Float64Array(batch * M * N);
      for (let i = 0; i < batch; i++) {
        const ai = ref.size(as.slice(0, -2)) === 1 ? 0 : i, bi = ref.size(bs.slice(0, -2)) === 1 ? 0 : i;
        expect.set(ref.matmul(a.slice(ai * M * K, (ai + 1) * M * K), b.slice(bi * K * N, (bi + 1) * K * N), M, K, N, true), i * M * N);
      }
      assertClose(await c.floats(), expect, TOL, `${v.name} batched [${as}]ᵀ @ [${bs}]`);
    }
  } finally {
    gpu.tuning.matmul.group = null;
    gpu.tuning.matmul.rows = 32;
    gpu.tuning.matmul.threads = null;
    use(gpu, null);
  }
});

t('subgroup kernel with B in uniform slabs (UB) and in storage: slab counts, an uneven last slab, whole B, bias, shared-B batches, fallbacks', async () => {
  // Uniform bindings hold at most limits.maxUniformBufferBindingSize bytes (64 KiB on
  // lavapipe), so B^T [N, K] is cut into slabs of whole rows, one dispatch each, at most 3:
  // K = 96 gives slabs of at most 160 columns (N = 384: 3 slabs of 128; N = 161: 2 slabs, 96 + 65
  // with scalar stores; N = 500 would need 4: storage B), K = 512 the narrowest slab (32
  // columns), K = 520 none fits (storage B). B [K, N]
  // row-major is read from one binding when all of it fits (96 x 160), else from storage
  // (96 x 200). Each case is run both ways (uniformB true, false; by default it is on only on
  // lavapipe on AVX2 CPUs) against float64 at TOL, and the
  // two results must agree to the last bit: the same products summed in the same order.
  const gpu = await testGpu();
  if (gpu.subgroupMinSize < 4) {
    console.log('  skip: no subgroups of 4 or more lanes on this device');
    return;
  }
  const cases: [number, number, number, boolean, boolean, number][] = [
    // M, K, N, transB, bias, uniform dispatches (slabs) with 64 KiB bindings and 8-lane groups
    [70, 96, 384, true, true, 3], [33, 96, 161, true, false, 2], [1, 96, 1, true, false, 1], [9, 512, 70, true, true, 3],
    [5, 520, 12, true, false, 0], [6, 96, 500, true, false, 0], [40, 96, 160, false, true, 1], [7, 96, 200, false, false, 0], [3, 4, 4, false, false, 1],
  ];
  // The slab counts hold for lavapipe's limits; the kernels each dispatch ran come from the
  // profiler (timestamp queries), so that a path silently not taken fails here.
  const countable = gpu.features.has('timestamp-query') && gpu.limits.maxUniformBufferBindingSize === 65536 && gpu.subgroupMinSize === 8 && gpu.limits.minUniformBufferOffsetAlignment <= 256;
  if (!countable) console.log('  (not lavapipe\'s limits or no timestamp queries: the slab counts are not checked here)');
  try {
    use(gpu, { name: 'subgroup', kind: 'subgroup' });
    for (const [M, K, N, transB, withBias, slabs] of cases) {
      const a = f32of(randomValues(M * K, M + K)), b = f32of(randomValues(K * N, K + N)), bias = withBias ? f32of(randomValues(N, N)) : undefined;
      const outs: Float32Array[] = [];
      for (const uniformB of [true, false]) {
        gpu.tuning.matmul.uniformB = uniformB;
        const at = ops.tensor(gpu, Float32Array.from(a), [M, K]);
        const bt = ops.tensor(gpu, Float32Array.from(b), transB ? [N, K] : [K, N]);
        const biast = bias ? ops.tensor(gpu, Float32Array.from(bias), [N]) : undefined;
        if (countable) gpu.startProfile();
        const c = ops.matmul(at, bt, { transB, bias: biast });
        if (countable) {
          const kernels = (await gpu.endProfile()).map((r) => r.kernel);
          const ub = kernels.filter((k) => k === 'matmul.wgsl:matmul_sg_ub').length;
          assert.equal(ub, uniformB ? slabs : 0, `${M}x${K}x${N} transB=${transB} uniformB=${uniformB}: ${ub} uniform-B dispatches (${kernels.join(', ')})`);
          if (uniformB && slabs === 0) assert.equal(kernels, ['matmul.wgsl:matmul_sg'], 'a shape without slabs falls back to storage B');
        }
        outs.push(await c.floats());
        assertClose(outs[outs.length - 1], ref.matmul(a, b, M, K, N, false, transB, bias), TOL, `subgroup uniformB=${uniformB} ${M}x${K}x${N} transB=${transB}`);
        for (const x of [at, bt, c, biast]) x?.dispose();
      }
      assert.ok(outs[0].every((x, i) => Object.is(x, outs[1][i])), `${M}x${K}x${N} transB=${transB}: uniform and storage B differ`);
    }
    // A batch sharing B (folded into rows, and with A^T not folded): still one set of slabs.
    gpu.tuning.matmul.uniformB = true;
    const K = 96, N = 200;
    for (const transA of [false, true]) {
      const as = transA ? [3, K, 8] : [3, 8, K];
      const a = f32of(randomValues(3 * 8 * K, 21)), b = f32of(randomValues(N * K, 22));
      const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), as), ops.tensor(gpu, Float32Array.from(b), [N, K]), { transA, transB: true });
      const expect = new Float64Array(3 * 8 * N);
      for (let i = 0; i < 3; i++) expect.set(ref.matmul(a.slice(i * 8 * K, (i + 1) * 8 * K), b, 8, K, N, transA, true), i * 8 * N);
      assertClose(await c.floats(), expect, TOL, `subgroup uniformB batched [${as}]${transA ? 'ᵀ' : ''} @ [${N}x${K}]ᵀ`);
    }
  } finally {
    gpu.tuning.matmul.uniformB = null;
    use(gpu, null);
  }
});

t('uniform B by default only on lavapipe on an AVX2 CPU (measured faster there, not on AVX-512)', async () => {
  const gpu = await testGpu();
  for (const hostCpu of ['AMD EPYC, AVX2', 'AMD EPYC (family 23, model 49), AVX2']) assert.ok(uniformBByDefault({ isLavapipe: true, hostCpu }), hostCpu);
  for (const hostCpu of ['AMD EPYC, AVX-512', 'AMD EPYC', '', 'Intel Xeon, AVX', 'AMD EPYC, AVX2 x'])
    assert.not.ok(uniformBByDefault({ isLavapipe: true, hostCpu }), hostCpu);
  assert.not.ok(uniformBByDefault({ isLavapipe: false, hostCpu: 'AMD EPYC, AVX2' }));
  console.log(`  (this device: ${gpu.describe()}; uniform B by default: ${uniformBByDefault(gpu)})`);
});

t('bias epilogue, every variant', async () => {
  const gpu = await testGpu();
  try {
    for (const v of await variants()) {
      use(gpu, v);
      for (const [M, K, N] of [[6, 5, 7], [40, 16, 32], [70, 33, 65]])
        for (const transB of [false, true]) await checkCase(gpu, v, M, K, N, false, transB, randomValues(M * K, 1), randomValues(K * N, 2), randomValues(N, 3));
    }
  } finally {
    use(gpu, null);
  }
});

t('extreme magnitudes: f32 variants over 1e-15..1e15, f16 over its range (subnormal to 6e4)', async () => {
  const gpu = await testGpu();
  // sign * 10^u: products span 60 (f32) or 16 (f16) decades, so the sums cancel and round at
  // every scale; checked against the worst-case bound, not a relative tolerance.
  const mags = (n: number, seed: number, lo: number, hi: number) => {
    const r = rng(seed);
    return Float64Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1) * 10 ** (lo + (hi - lo) * r()));
  };
  try {
    for (const v of await variants()) {
      use(gpu, v);
      const [lo, hi] = v.kind === 'f16' ? [-7, 4.8] : [-15, 15];
      for (const [M, K, N] of [[9, 70, 13], [64, 64, 64]])
        for (const transA of [false, true]) {
          const a = f32of(mags(M * K, M + 1, lo, hi));
          const b = f32of(mags(K * N, N + 2, lo, hi));
          const at = ops.tensor(gpu, Float32Array.from(a), transA ? [K, M] : [M, K]);
          const bt = ops.tensor(gpu, Float32Array.from(b), [K, N]);
          const c = ops.matmul(at, bt, { transA });
          assertWithin(await c.floats(), ref.matmul(a, b, M, K, N, transA, false), bounds(a, b, M, K, N, transA, false, v.kind === 'f16'), `${v.name} extremes ${M}x${K}x${N} transA=${transA}`);
          for (const x of [at, bt, c]) x.dispose();
        }
    }
  } finally {
    use(gpu, null);
  }
});

t('f16 rounds its operands (the variant is not f32 in disguise) and stays within its bound', async () => {
  const gpu = await testGpu();
  if (!gpu.features.has('shader-f16')) {
    console.log('  skip: no shader-f16 on this device');
    return;
  }
  const M = 64, K = 256, N = 64;
  const a = f32of(randomValues(M * K, 11)), b = f32of(randomValues(K * N, 12));
  const expect = ref.matmul(a, b, M, K, N);
  const errs: number[] = [];
  try {
    for (const kind of ['tiled-wg', 'f16'] as const) {
      use(gpu, { name: kind, kind, tile: MATMUL_DEFAULT_TILE });
      const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), [M, K]), ops.tensor(gpu, Float32Array.from(b), [K, N]));
      const out = await c.floats();
      errs.push(Math.max(...out.map((x, i) => Math.abs(x - expect[i]))));
    }
  } finally {
    use(gpu, null);
  }
  // Operand rounding of 2^-11 relative gives errors near sqrt(K) 2^-11 |a b| ~ 2e-3 here, f32
  // near sqrt(K) 2^-24 ~ 1e-6: two orders of magnitude apart.
  assert.ok(errs[1] > 30 * errs[0], `f16 max error ${errs[1].toExponential(2)} should be far above f32's ${errs[0].toExponential(2)}`);
});

t('batched: both batched, shared B (folded), shared A, leading batch dims, every variant', async () => {
  const gpu = await testGpu();
  const M = 9, K = 8, N = 6;
  try {
    for (const v of await variants()) {
      use(gpu, v);
      for (const [as, bs] of [[[3, M, K], [3, K, N]], [[2, 3, M, K], [K, N]], [[M, K], [4, K, N]], [[2, 1, M, K], [1, K, N]]] as [number[], number[]][]) {
        const a = f32of(randomValues(ref.size(as), 5));
        const b = f32of(randomValues(ref.size(bs), 6));
        const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), as), ops.tensor(gpu, Float32Array.from(b), bs));
        const batch = Math.max(ref.size(as.slice(0, -2)), ref.size(bs.slice(0, -2)));
        const expect = new Float64Array(batch * M * N);
        const bound = new Float64Array(batch * M * N);
        for (let i = 0; i < batch; i++) {
          const ai = ref.size(as.slice(0, -2)) === 1 ? 0 : i, bi = ref.size(bs.slice(0, -2)) === 1 ? 0 : i;
          const [ax, bx] = [a.slice(ai * M * K, (ai + 1) * M * K), b.slice(bi * K * N, (bi + 1) * K * N)];
          expect.set(ref.matmul(ax, bx, M, K, N), i * M * N);
          bound.set(bounds(ax, bx, M, K, N, false, false, true), i * M * N);
        }
        const what = `${v.name} batched [${as}] @ [${bs}]`;
        if (v.kind === 'f16') assertWithin(await c.floats(), expect, bound, what);
        else assertClose(await c.floats(), expect, TOL, what);
      }
    }
  } finally {
    use(gpu, null);
  }
});

t('backward: every transpose, bias, shared-B batch (f32 variants)', async () => {
  const gpu = await testGpu();
  try {
    for (const v of (await variants()).filter((x) => x.kind !== 'f16')) {
      use(gpu, v);
      const M = 5, K = 6, N = 3;
      for (const transA of [false, true])
        for (const transB of [false, true])
          await checkGradients({
            what: `${v.name} matmul backward transA=${transA} transB=${transB}`, gpu,
            inputs: [{ data: randomValues(M * K, 1), shape: transA ? [K, M] : [M, K] }, { data: randomValues(K * N, 2), shape: transB ? [N, K] : [K, N] }, { data: randomValues(N, 3), shape: [N] }],
            op: (a, b, bias) => ops.matmul(a, b, { transA, transB, bias }),
            reference: (a, b, bias) => ref.matmul(a, b, M, K, N, transA, transB, bias),
          });
      // A linear layer whose weight gradient G^T X has M % 4 == 0 (the subgroup kernel's TA4 path).
      await checkGradients({
        what: `${v.name} linear backward (weight gradient with transposed A along m)`, gpu,
        inputs: [{ data: randomValues(7 * 8, 6), shape: [7, 8] }, { data: randomValues(4 * 8, 7), shape: [4, 8] }, { data: randomValues(4, 8), shape: [4] }],
        op: (x, w, bias) => ops.matmul(x, w, { transB: true, bias }),
        reference: (x, w, bias) => ref.matmul(x, w, 7, 8, 4, false, true, bias),
      });
      await checkGradients({
        what: `${v.name} batched shared-B backward`, gpu,
        inputs: [{ data: randomValues(2 * M * K, 4), shape: [2, M, K] }, { data: randomValues(K * N, 5), shape: [K, N] }],
        op: (a, b) => ops.matmul(a, b),
        reference: (a, b) => Float64Array.from([...ref.matmul(a.slice(0, M * K), b, M, K, N), ...ref.matmul(a.slice(M * K), b, M, K, N)]),
      });
    }
  } finally {
    use(gpu, null);
  }
});

t('bad input names the op and shapes; a bad tile or variant names the tuning field', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, new Float32Array(6), [2, 3]);
  const b = ops.tensor(gpu, new Float32Array(8), [4, 2]);
  assert.throws(() => ops.matmul(a, b), /matmul: \[2x3\] @ \[4x2\]: inner dimensions differ \(3 vs 4\)/);
  assert.throws(() => ops.matmul(a, ops.tensor(gpu, [1, 2, 3], [3])), /at least 2 dimensions/);
  assert.throws(() => ops.matmul(a, ops.tensor(gpu, new Float32Array(6), [3, 2]), { bias: ops.tensor(gpu, [1, 2, 3], [3]) }), /bias \[3\] must have shape \[2\]/);
  assert.throws(() => ops.matmul(ops.tensor(gpu, new Float32Array(12), [2, 2, 3]), ops.tensor(gpu, new Float32Array(18), [3, 3, 2])), /batch dimensions/);
  assert.ok(['subgroup', 'tiled'].includes(matmulVariantFor(gpu)));
  const b2 = ops.tensor(gpu, new Float32Array(6), [3, 2]);
  try {
    use(gpu, { name: 'bad tile', kind: 'tiled-wg', tile: { bm: 64, bn: 64, bk: 16, tm: 6, tn: 4 } });
    assert.throws(() => ops.matmul(a, b2), /matmul: gpu\.tuning\.matmul\.tile: tile 64x64x16\/6x4 needs .*multiples of 4/);
    use(gpu, { name: 'huge tile', kind: 'tiled-wg', tile: { bm: 256, bn: 256, bk: 64, tm: 4, tn: 4 } });
    assert.throws(() => ops.matmul(a, b2), /gpu\.tuning\.matmul\.tile: tile 256x256x64\/4x4 needs 4096 invocations per workgroup/);
    gpu.tuning.matmul.variant = 'nope' as 'auto';
    assert.throws(() => ops.matmul(a, b2), /gpu\.tuning\.matmul\.variant = 'nope' is not one of/);
    if (gpu.subgroupMinSize >= 4) {
      use(gpu, { name: 'subgroup', kind: 'subgroup' });
      gpu.tuning.matmul.threads = 0;
      assert.throws(() => ops.matmul(a, b2), /gpu\.tuning\.matmul\.threads = 0 is not a positive integer/);
    }
  } finally {
    gpu.tuning.matmul.threads = null;
    use(gpu, null);
  }
});

// The fused epilogues (kernels/matmul.wgsl GELU, DGELU, RES) must give the bits of the
// separate ops they replace (matmul, then gelu / the gelu gradient / LayerScale's mul and the
// residual add): the training step's numbers do not move when the model fuses them. Checked
// in every variant (f16 too: the epilogue acts after its f32 sum), with the kept pre-epilogue
// value equal to the plain matmul, on sizes off every tile and on a shared-B batch.
t('fused epilogues: the bits of the separate ops, every variant', async () => {
  const gpu = await testGpu();
  const bits = async (x: Tensor, y: Tensor, what: string) => {
    const [p, q] = [new Uint32Array((await x.floats()).buffer), new Uint32Array((await y.floats()).buffer)];
    let diff = 0;
    for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) diff++;
    assert.is(diff, 0, `${what}: ${diff} of ${p.length} entries differ from the separate ops`);
  };
  const cases: [number[], number[], boolean][] = [[[37, 20], [44, 20], true], [[70, 36], [36, 68], false], [[3, 33, 8], [12, 8], true]];
  const all = await variants();
  // The subgroup kernel once more with B in uniform bindings (matmul_sg_ub; off by default on AVX-512).
  const sg = all.find((v) => v.kind === 'subgroup');
  for (const v of [...all, ...(sg ? [{ ...sg, name: 'subgroup, uniform B', uniformB: true }] : [])] as (Variant & { uniformB?: boolean })[]) {
    use(gpu, v);
    gpu.tuning.matmul.uniformB = v.uniformB ?? null;
    for (const [as, bs, transB] of cases) {
      const M = as.slice(0, -1).reduce((x, y) => x * y, 1), K = as[as.length - 1], N = transB ? bs[0] : bs[1];
      const outShape = [...as.slice(0, -1), N];
      const rnd = (n: number, seed: number, scale = 2) => Float32Array.from(randomValues(n, seed, -scale, scale));
      const a = ops.tensor(gpu, rnd(M * K, 1), as), b = ops.tensor(gpu, rnd(K * N, 2), bs), bias = ops.tensor(gpu, rnd(N, 3), [N]);
      const pre = ops.tensor(gpu, rnd(M * N, 4, 4), outShape), residual = ops.tensor(gpu, rnd(M * N, 5), outShape), scale = ops.tensor(gpu, rnd(N, 6), [N]);
      const what = `${v.name} ${as.join('x')} @ ${bs.join('x')}${transB ? 'ᵀ' : ''}`;
      const plain = ops.matmul(a, b, { transB, bias });
      const g = matmulEpilogue(a, b, { transB, bias }, { op: 'gelu' });
      await bits(g.out, unary('gelu', plain), `${what} gelu`);
      await bits(g.kept!, plain, `${what} gelu (kept)`);
      const d = matmulEpilogue(a, b, { transB, bias }, { op: 'geluBackward', pre });
      assert.is(d.kept, null);
      await bits(d.out, unaryBackward('gelu', pre, unary('gelu', pre), plain), `${what} gelu backward`);
      const r = matmulEpilogue(a, b, { transB, bias }, { op: 'residual', residual, scale });
      await bits(r.out, binary('add', residual, binary('mul', plain, scale.view([1, N]))), `${what} residual + scale`);
      await bits(r.kept!, plain, `${what} residual (kept)`);
      const r2 = matmulEpilogue(a, b, { transB, bias }, { op: 'residual', residual });
      await bits(r2.out, binary('add', residual, plain), `${what} residual`);
      // Without keeping v (inference): nothing kept, the same output.
      const g2 = matmulEpilogue(a, b, { transB, bias }, { op: 'gelu', keep: false });
      assert.is(g2.kept, null);
      await bits(g2.out, g.out, `${what} gelu without keeping v`);
      const r3 = matmulEpilogue(a, b, { transB, bias }, { op: 'residual', residual, scale, keep: false });
      assert.is(r3.kept, null);
      await bits(r3.out, r.out, `${what} residual without keeping v`);
      // and the float64 meaning of one of them, so that equal bits are not equal nonsense
      if (v.kind !== 'f16') {
        const p64 = ref.matmul(ref.f64(await a.floats()), ref.f64(await b.floats()), M, K, N, false, transB, ref.f64(await bias.floats()));
        const s64 = await scale.floats(), r64 = await residual.floats();
        assertClose(await r.out.floats(), p64.map((x, i) => r64[i] + s64[i % N] * x), TOL, `${what} residual + scale against float64`);
      }
    }
  }
  use(gpu, null);
  gpu.tuning.matmul.uniformB = null;
});

t('fused epilogues: bad shapes name the epilogue and the tensor', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, new Float32Array(6 * 8), [6, 8]), b = ops.tensor(gpu, new Float32Array(8 * 12), [8, 12]);
  assert.throws(() => matmulEpilogue(a, b, {}, { op: 'geluBackward', pre: ops.tensor(gpu, new Float32Array(12), [1, 12]) }), (e: Error) => e instanceof ShapeError && /geluBackward epilogue: pre \[1x12\] must have the output's shape \[6x12\]/.test(e.message));
  assert.throws(() => matmulEpilogue(a, b, {}, { op: 'residual', residual: ops.tensor(gpu, new Float32Array(72), [6, 12]), scale: ops.tensor(gpu, new Float32Array(6), [6]) }), (e: Error) => e instanceof ShapeError && /scale \[6\] must have shape \[12\]/.test(e.message));
  const b3 = ops.tensor(gpu, new Float32Array(8 * 6), [8, 6]);
  assert.throws(() => matmulEpilogue(a, b3, {}, { op: 'gelu' }), (e: Error) => e instanceof ShapeError && /last dimension 6 must be a multiple of 4/.test(e.message));
});

// The fused layers (src/ops/matmul.ts) against the same layers built from separate ops
// (gpu.tuning.fuseEpilogues = false): output and every gradient bit for bit, with and without
// LayerScale, a 3D input (the batch folded into the rows), in the default variant; and
// mlpGelu's gradients against central differences of a float64 Mlp.
t('fused linear layers: linearResidual and mlpGelu give the separate ops\' bits, forward and backward (GELU gradient fused or not)', async () => {
  const gpu = await testGpu();
  const [B, L, D, H] = [2, 7, 12, 20];
  const rnd = (n: number, seed: number, s = 1) => Float32Array.from(randomValues(n, seed, -s, s));
  const run = async (fuse: boolean, withScale: boolean, geluBackward: boolean | null = null) => {
    gpu.tuning.fuseEpilogues = fuse;
    gpu.tuning.fuseGeluBackward = geluBackward;
    const P = (data: Float32Array, shape: number[], name: string) => ops.parameter(gpu, data, shape, name);
    const x = P(rnd(B * L * D, 1), [B, L, D], 'x');
    const pw = P(rnd(D * D, 2), [D, D], 'proj.w'), pb = P(rnd(D, 3), [D], 'proj.b');
    const w1 = P(rnd(H * D, 4), [H, D], 'fc1.w'), b1 = P(rnd(H, 5), [H], 'fc1.b'), w2 = P(rnd(D * H, 6), [D, H], 'fc2.w'), b2 = P(rnd(D, 7), [D], 'fc2.b');
    const s1 = P(rnd(D, 8), [D], 'ls1'), s2 = P(rnd(D, 9), [D], 'ls2');
    const y = ops.tensor(gpu, rnd(B * L * D, 10), [B, L, D]);
    const h = linearResidual(ops.mul(x, x), { weight: pw, bias: pb }, { residual: x, scale: withScale ? s1 : null });
    const o = mlpGelu(h, { weight: w1, bias: b1 }, { weight: w2, bias: b2 }, { residual: h, scale: withScale ? s2 : null });
    backward(ops.sum(ops.mul(o, y)));
    const out = [await o.floats()];
    for (const t of [x, pw, pb, w1, b1, w2, b2, ...(withScale ? [s1, s2] : [])]) out.push(await t.grad!.floats());
    return out;
  };
  for (const [withScale, geluBackward] of [[true, true], [true, false], [false, true]] as const) {
    const [fused, plain] = [await run(true, withScale, geluBackward), await run(false, withScale)];
    const names = ['output', 'dx', 'dproj.w', 'dproj.b', 'dfc1.w', 'dfc1.b', 'dfc2.w', 'dfc2.b', 'dls1', 'dls2'];
    fused.forEach((f, i) => {
      const [p, q] = [new Uint32Array(f.buffer), new Uint32Array(plain[i].buffer)];
      let diff = 0;
      for (let j = 0; j < p.length; j++) if (p[j] !== q[j]) diff++;
      assert.is(diff, 0, `${names[i]}${withScale ? '' : ' (no LayerScale)'}${geluBackward ? ' (GELU gradient fused)' : ''}: ${diff} of ${p.length} entries differ between fused and separate ops`);
    });
  }
  gpu.tuning.fuseEpilogues = true;
  gpu.tuning.fuseGeluBackward = null;
  // Only fc2 and LayerScale trainable: fc1's side gets no gradient and costs no dispatch.
  {
    const x = ops.tensor(gpu, rnd(B * L * D, 31), [B, L, D]);
    const w1 = ops.tensor(gpu, rnd(H * D, 32), [H, D]), w2 = ops.parameter(gpu, rnd(D * H, 33), [D, H], 'fc2.w'), s2 = ops.parameter(gpu, rnd(D, 34), [D], 'ls2');
    const grads: Float32Array[][] = [];
    for (const fuse of [true, false]) {
      gpu.tuning.fuseEpilogues = fuse;
      w2.grad = null;
      s2.grad = null;
      gpu.startProfile();
      scope(() => backward(ops.sum(mlpGelu(x, { weight: w1 }, { weight: w2 }, { residual: x, scale: s2 }))));
      const labels = (await gpu.endProfile()).map((rec) => rec.label);
      if (fuse) assert.not.ok(labels.some((l) => /gelu\.backward|geluBackward|\]@\[12x20\]$/.test(l)), `no GELU gradient and no hidden-activation gradient when fc1 is frozen: ${labels.join('; ')}`);
      grads.push([await w2.grad!.floats(), await s2.grad!.floats()]);
    }
    gpu.tuning.fuseEpilogues = true;
    assert.equal([...grads[0][0]], [...grads[1][0]], 'fc2 weight gradient, frozen fc1');
    assert.equal([...grads[0][1]], [...grads[1][1]], 'LayerScale gradient, frozen fc1');
    // Only LayerScale trainable (with and without biases): its gradient, nothing else computed.
    for (const withBias of [true, false]) {
      const sg: Float32Array[] = [];
      for (const fuse of [true, false]) {
        gpu.tuning.fuseEpilogues = fuse;
        s2.grad = null;
        const fc1 = { weight: w1, bias: withBias ? ops.tensor(gpu, rnd(H, 35), [H]) : null }, fc2 = { weight: ops.tensor(gpu, rnd(D * H, 36), [D, H]), bias: withBias ? ops.tensor(gpu, rnd(D, 37), [D]) : null };
        scope(() => backward(ops.sum(mlpGelu(x, fc1, fc2, { residual: x, scale: s2 }))));
        sg.push(await s2.grad!.floats());
      }
      gpu.tuning.fuseEpilogues = true;
      assert.equal([...sg[0]], [...sg[1]], `LayerScale gradient, only LayerScale trainable${withBias ? ', with biases' : ''}`);
    }
  }
  // A residual and scale that broadcast run the separate ops (the same result either way).
  {
    const x = ops.tensor(gpu, rnd(B * L * D, 41), [B, L, D]), w = ops.tensor(gpu, rnd(D * D, 42), [D, D]);
    const res = ops.tensor(gpu, rnd(L * D, 43), [L, D]), sc = ops.tensor(gpu, rnd(D, 44), [1, D]);
    const outs: number[][] = [];
    for (const fuse of [true, false]) {
      gpu.tuning.fuseEpilogues = fuse;
      outs.push([...(await linearResidual(x, { weight: w }, { residual: res, scale: sc }).floats())]);
    }
    gpu.tuning.fuseEpilogues = true;
    assert.equal(outs[0], outs[1], 'broadcast residual and scale');
  }
  // Gradients of the fused Mlp with LayerScale and residual against float64 finite differences.
  const [M, Di, Hi] = [5, 8, 12];
  const gelu64 = (v: number) => v * normalCdf(v);
  await checkGradients({
    what: 'mlpGelu with LayerScale and residual',
    gpu,
    inputs: [
      { data: randomValues(M * Di, 21, -2, 2), shape: [M, Di] }, { data: randomValues(Hi * Di, 22), shape: [Hi, Di] }, { data: randomValues(Hi, 23), shape: [Hi] },
      { data: randomValues(Di * Hi, 24), shape: [Di, Hi] }, { data: randomValues(Di, 25), shape: [Di] }, { data: randomValues(Di, 26), shape: [Di] }, { data: randomValues(M * Di, 27), shape: [M, Di] },
    ],
    op: (x, w1, b1, w2, b2, s, r) => mlpGelu(x, { weight: w1, bias: b1 }, { weight: w2, bias: b2 }, { residual: r, scale: s }),
    reference: (x, w1, b1, w2, b2, s, r) => {
      const hid = ref.matmul(x, w1, M, Di, Hi, false, true, b1).map(gelu64);
      const m = ref.matmul(hid, w2, M, Hi, Di, false, true, b2);
      return m.map((v, i) => r[i] + s[i % Di] * v);
    },
  });
});

t.run();
