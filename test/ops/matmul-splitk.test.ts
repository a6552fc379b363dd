// Split-K matmul (src/launch/matmul-splitk.ts) against float64: forced through
// gpu.tuning.matmul.splitK on each f32 kernel (subgroup, tiled, tiled-wg at its default tile),
// every transpose combination, sizes that are not multiples of the tiles, a K with no divisor
// (no split), the accumulate epilogue summed into the slices' sum, the cases that fall back to
// one pass (bias, a kept pre-epilogue value, a batch), extreme magnitudes, and a linear layer's
// weight gradient by finite differences. The profiler's labels show which path each product took,
// so that a split silently not taken (or taken where it must not be) fails here.
// Tolerance: the worst-case bound (K + 2) 2^-24 (sum |a b| + |residual|) of any order of f32
// sums: a split sums Ks-term slices and then S partials, Ks + S + 1 <= K + 2 roundings deep.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { MATMUL_DEFAULT_TILE, matmulEpilogue, matmulTileProblem, matmulTuner, parseMatmulChoice, matmulChoiceName } from '../../src/launch/matmul.ts';
import { MIN_SLICE, splitKCandidates, splitKSlices } from '../../src/launch/matmul-splitk.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import type { Tensor } from '../../src/tensor.ts';
import type { MatmulChoice } from '../../src/launch/matmul.ts';

const t = suite('matmul split-K');
t.after.each(resetTuning);

const f32of = (x: Float64Array) => Float64Array.from(Float32Array.from(x));

async function kinds(): Promise<MatmulChoice[]> {
  const gpu = await testGpu();
  const out: MatmulChoice[] = gpu.subgroupMinSize >= 8 ? [{ kind: 'subgroup' }] : [];
  out.push({ kind: 'tiled' });
  if (!matmulTileProblem(gpu, MATMUL_DEFAULT_TILE, false)) out.push({ kind: 'tiled-wg', tile: MATMUL_DEFAULT_TILE });
  return out;
}

function use(gpu: Gpu, c: MatmulChoice, splitK: number | null): void {
  gpu.tuning.matmul.variant = c.kind;
  gpu.tuning.matmul.tile = c.tile ?? null;
  gpu.tuning.matmul.splitK = splitK;
}

/** Per-entry bound of op(A) op(B) (+ residual): see the head of this file. */
function bound(a: Float64Array, b: Float64Array, M: number, K: number, N: number, transA: boolean, transB: boolean, res?: Float64Array): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let S = res ? Math.abs(res[m * N + n]) : 0;
      for (let k = 0; k < K; k++) S += Math.abs((transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]));
      out[m * N + n] = (K + 2) * 2 ** -24 * S;
    }
  return out;
}

function assertWithin(actual: Float32Array, expected: Float64Array, b: Float64Array, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= b[i])) assert.unreachable(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (error ${err.toExponential(2)} > bound ${b[i].toExponential(2)})`);
  }
}

/** Runs `f` under the profiler (where the device has timestamp queries) and returns the labels of its dispatches, or null. */
async function labelsOf(gpu: Gpu, f: () => void): Promise<string[] | null> {
  if (!gpu.canProfile) {
    f();
    return null;
  }
  gpu.startProfile();
  f();
  return (await gpu.endProfile()).map((r) => r.label);
}

function assertSplit(labels: string[] | null, slices: number, what: string): void {
  if (!labels) return;
  const split = labels.filter((l) => / split-K \d+x\d+$/.test(l));
  if (slices < 2) assert.equal(split, [], `${what}: no split expected, dispatched ${labels.join('; ')}`);
  else {
    assert.equal(split.length, 1, `${what}: one split product expected, dispatched ${labels.join('; ')}`);
    assert.ok(split[0].includes(` split-K ${slices}x`), `${what}: ${split[0]} is not ${slices} slices`);
    assert.ok(labels.some((l) => l.startsWith(`sum [${slices}x`)), `${what}: no sum of the partials in ${labels.join('; ')}`);
  }
}

t('splitKSlices: the divisor of K nearest the wish, slices of at least MIN_SLICE, 1 where none', () => {
  assert.is(splitKSlices(1024, 4), 4);
  assert.is(splitKSlices(1024, 64), 64);
  assert.is(splitKSlices(96, 4), 4);
  assert.is(splitKSlices(96, 5), 6); // 4 and 6 are log-equidistant from 5 within 1.5%; 6 is nearer
  assert.is(splitKSlices(97, 4), 1); // prime
  assert.is(splitKSlices(32, 4), 2); // 4 slices of 8 would be shorter than MIN_SLICE
  assert.is(splitKSlices(31, 4), 1);
  assert.is(splitKSlices(1000, 1), 1);
  for (const K of [64, 100, 512, 1536, 3000, 4096])
    for (const want of [2, 4, 16, 64]) {
      const s = splitKSlices(K, want);
      assert.ok(s === 1 || (K % s === 0 && K / s >= MIN_SLICE && s <= 2 * want), `K=${K} want=${want}: ${s}`);
    }
});

t('forced split-K: every f32 kernel, every transpose, odd sizes, a K with no divisor', async () => {
  const gpu = await testGpu();
  const cases: [number, number, number][] = [[5, 96, 7], [33, 128, 20], [64, 64, 64], [3, 97, 5], [1, 64, 1], [70, 80, 12]];
  for (const c of await kinds())
    for (const [M, K, N] of cases)
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          use(gpu, c, 4);
          const a = f32of(randomValues(M * K, M + 3 * K)), b = f32of(randomValues(K * N, 7 * K + N));
          const at = ops.tensor(gpu, Float32Array.from(a), transA ? [K, M] : [M, K]);
          const bt = ops.tensor(gpu, Float32Array.from(b), transB ? [N, K] : [K, N]);
          let out: Tensor | null = null;
          const labels = await labelsOf(gpu, () => void (out = ops.matmul(at, bt, { transA, transB })));
          const what = `${matmulChoiceName(c)} splitK4 ${M}x${K}x${N} transA=${transA} transB=${transB}`;
          assertSplit(labels, splitKSlices(K, 4), what);
          assertWithin(await out!.floats(), ref.matmul(a, b, M, K, N, transA, transB), bound(a, b, M, K, N, transA, transB), what);
          for (const x of [at, bt, out!]) x.dispose();
        }
});

t('the accumulate epilogue adds its residual in the sum; bias, a kept value and a batch run unsplit', async () => {
  const gpu = await testGpu();
  const [M, K, N] = [12, 160, 20];
  const a = f32of(randomValues(K * M, 1)), b = f32of(randomValues(K * N, 2)), r = f32of(randomValues(M * N, 3, -50, 50)), bias = f32of(randomValues(N, 4));
  for (const c of await kinds()) {
    use(gpu, c, 8);
    const name = matmulChoiceName(c);
    const at = ops.tensor(gpu, Float32Array.from(a), [K, M]), bt = ops.tensor(gpu, Float32Array.from(b), [K, N]), rt = ops.tensor(gpu, Float32Array.from(r), [M, N]);
    const plain = ref.matmul(a, b, M, K, N, true, false);
    for (const keep of [false, true]) {
      let res: { out: Tensor; kept: Tensor | null } | null = null;
      const labels = await labelsOf(gpu, () => void (res = matmulEpilogue(at, bt, { transA: true }, { op: 'residual', residual: rt, keep, as: 'accumulate' })));
      const what = `${name} splitK8 ${M}x${K}x${N} accumulate keep=${keep}`;
      assertSplit(labels, keep ? 1 : 8, what);
      const expect = plain.map((v, i) => v + r[i]);
      assertWithin(await res!.out.floats(), expect, bound(a, b, M, K, N, true, false, r), what);
      if (res!.kept) assertWithin(await res!.kept.floats(), plain, bound(a, b, M, K, N, true, false), `${what} (kept)`);
      res!.out.dispose();
      res!.kept?.dispose();
    }
    const biast = ops.tensor(gpu, Float32Array.from(bias), [N]);
    let y: Tensor | null = null;
    assertSplit(await labelsOf(gpu, () => void (y = ops.matmul(at, bt, { transA: true, bias: biast }))), 1, `${name} with bias`);
    const withBias = ref.matmul(a, b, M, K, N, true, false, bias);
    assertWithin(await y!.floats(), withBias, bound(a, b, M, K, N, true, false, Float64Array.from({ length: M * N }, (_, i) => bias[i % N])), `${name} with bias`);
    const a3 = f32of(randomValues(2 * K * M, 5)), a3t = ops.tensor(gpu, Float32Array.from(a3), [2, K, M]);
    let z: Tensor | null = null;
    assertSplit(await labelsOf(gpu, () => void (z = ops.matmul(a3t, bt, { transA: true }))), 1, `${name} batched`);
    const zs = await z!.floats();
    for (let i = 0; i < 2; i++) {
      const ai = a3.slice(i * K * M, (i + 1) * K * M);
      assertWithin(zs.subarray(i * M * N, (i + 1) * M * N), ref.matmul(ai, b, M, K, N, true, false), bound(ai, b, M, K, N, true, false), `${name} batched entry ${i}`);
    }
    for (const x of [at, bt, rt, biast, a3t, y!, z!]) x.dispose();
  }
});

t('extreme magnitudes: products near 1 from operands near 1e18 and 1e-18, and tiny ones', async () => {
  const gpu = await testGpu();
  const [M, K, N] = [4, 256, 8];
  const a = f32of(randomValues(M * K, 11).map((v, i) => v * (i % 3 === 0 ? 1e18 : i % 3 === 1 ? 1e-18 : 1))), b = f32of(randomValues(K * N, 12).map((v, i) => v * (i % 2 ? 1e-18 : 1e18)));
  for (const c of await kinds()) {
    use(gpu, c, 16);
    const at = ops.tensor(gpu, Float32Array.from(a), [M, K]), bt = ops.tensor(gpu, Float32Array.from(b), [K, N]);
    const y = ops.matmul(at, bt);
    const out = await y.floats();
    assert.ok(out.every(Number.isFinite), `${matmulChoiceName(c)}: non-finite output`);
    assertWithin(out, ref.matmul(a, b, M, K, N), bound(a, b, M, K, N, false, false), `${matmulChoiceName(c)} splitK16 extreme`);
    for (const x of [at, bt, y]) x.dispose();
  }
});

t('a linear layer\'s weight gradient through split-K, by finite differences', async () => {
  const gpu = await testGpu();
  for (const c of await kinds()) {
    use(gpu, c, 4);
    // dW = dY^T X: M = 4, N = 8, K = 64 rows (split 4 x 16); the forward (K = 8) and dX (K = 4) run unsplit.
    await checkGradients({
      what: `${matmulChoiceName(c)} splitK4 linear backward`, gpu,
      inputs: [{ data: randomValues(64 * 8, 21), shape: [64, 8] }, { data: randomValues(4 * 8, 22), shape: [4, 8] }],
      op: (x, w) => ops.matmul(x, w, { transB: true }),
      reference: (x, w) => ref.matmul(x, w, 64, 8, 4, false, true),
    });
  }
});

t('autotune times split-K only for small outputs over long K; names round-trip; a bad splitK names the field', async () => {
  const gpu = await testGpu();
  const small = { M: 64, N: 192, K: 4096, batch: 1, transA: true, transB: false };
  assert.equal(splitKCandidates(small).map(matmulChoiceName), ['tiled-wg 64x64x16/4x4 splitK4', 'tiled-wg 64x64x16/4x4 splitK16', 'tiled-wg 64x64x16/4x4 splitK64']);
  assert.equal(splitKCandidates({ ...small, K: 512 }), [], 'short K');
  assert.equal(splitKCandidates({ ...small, M: 4096, N: 1024 }), [], 'a big output');
  assert.equal(splitKCandidates({ ...small, batch: 2 }), [], 'a batch');
  assert.equal(splitKCandidates({ ...small, K: 4099 }), [], 'a prime K');
  const names = matmulTuner.candidates(gpu, small);
  if (!matmulTileProblem(gpu, MATMUL_DEFAULT_TILE, false)) assert.ok(names.includes('tiled-wg 64x64x16/4x4 splitK16'), names.join(', '));
  assert.not.ok(matmulTuner.candidates(gpu, { ...small, K: 64 }).some((n) => n.includes('splitK')));
  for (const n of ['tiled-wg 64x64x16/4x4 splitK16', 'subgroup splitK4', 'tiled']) assert.is(matmulChoiceName(parseMatmulChoice(n)!), n);
  assert.is(parseMatmulChoice('tiled splitK1'), null);
  const x = ops.tensor(gpu, new Float32Array(4), [2, 2]);
  gpu.tuning.matmul.splitK = 0;
  assert.throws(() => ops.matmul(x, x), /gpu\.tuning\.matmul\.splitK = 0 is not a positive integer/);
  gpu.tuning.matmul.splitK = null;
  x.dispose();
});

t.run();
