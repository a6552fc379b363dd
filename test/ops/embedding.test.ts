// embedding gather against indexing, and the scatter-add gradient (with repeated ids)
// against the analytic float64 sum.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, randomValues } from '../helpers/check.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import { embeddingBackward, embeddingSegments } from '../../src/launch/embedding.ts';
import { Tensor } from '../../src/tensor.ts';
import { rng } from '../helpers/random.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

const t = suite('embedding');
t('gather and scatter-add (repeated ids, vocabulary past one workgroup)', async () => {
  const gpu = await testGpu();
  const V = 131, D = 5;
  const ids = [3, 7, 3, 0, 130, 3, 64, 7];
  const w = randomValues(V * D, 1);
  const w32 = Float32Array.from(w);
  const W = ops.parameter(gpu, w32, [V, D], 'W');
  const idt = ops.fromInts(gpu, ids, [2, 4], 'ids');
  const out = ops.embedding(W, idt);
  assert.equal([...out.shape], [2, 4, D]);
  const expect = ids.flatMap((i) => [...w32.slice(i * D, (i + 1) * D)]);
  assertClose(await out.floats(), expect, { rtol: 0, atol: 0 }, 'gather');
  const R = randomValues(ids.length * D, 2);
  backward(out, ops.tensor(gpu, Float32Array.from(R), out.shape));
  const gw = new Float64Array(V * D);
  const R32 = Float32Array.from(R);
  ids.forEach((id, i) => { for (let c = 0; c < D; c++) gw[id * D + c] += R32[i * D + c]; });
  assertClose(await W.grad!.floats(), gw, { rtol: 1e-6, atol: 1e-7 }, 'scatter-add gradient');
});
t('ids outside the vocabulary and wrong dtypes are refused', async () => {
  const gpu = await testGpu();
  const W = ops.tensor(gpu, new Float32Array(12), [4, 3]);
  assert.throws(() => ops.embedding(W, ops.fromInts(gpu, [1, 4], [2], 'ids')), /embedding: id 4 at position 1 of 'ids' is outside the vocabulary \[0, 4\)/);
  assert.throws(() => ops.embedding(W, ops.tensor(gpu, [1, 2], [2])), /must be i32/);
  assert.throws(() => ops.fromInts(gpu, [1.5], [1]), /not a 32-bit integer/);
});
t('segments group positions by id, ascending, without ids outside the vocabulary', () => {
  const { segs, uniques } = embeddingSegments(Int32Array.from([5, 2, 5, -1, 9, 2, 5, 0]), 9);
  assert.is(uniques, 3);
  // rows [0, 2, 5], starts [0, 1, 3, 6], order [7 | 1, 5 | 0, 2, 6]
  assert.equal([...segs], [0, 2, 5, 0, 1, 3, 6, 7, 1, 5, 0, 2, 6]);
  assert.equal([...embeddingSegments(new Int32Array(0), 4).segs], [0]);
});

/** Ids in a device buffer with no host copy (as ids computed on the device would be). */
function deviceIds(gpu: Gpu, ids: Int32Array): Tensor {
  const t = new Tensor(gpu, [ids.length], 'i32', undefined, 'device ids');
  gpu.upload(t.buffer, ids);
  return t;
}
const bits = async (t: Tensor) => new Uint32Array((await t.floats()).buffer);
/** Bit-for-bit equality naming the first difference (uvu's diff of a million-entry array would not end). */
function sameBits(a: Uint32Array, b: Uint32Array, what: string): void {
  assert.is(a.length, b.length, `${what}: lengths`);
  const i = a.findIndex((x, k) => x !== b[k]);
  if (i >= 0) assert.unreachable(`${what}: first difference at ${i}: 0x${a[i].toString(16)} vs 0x${b[i].toString(16)} (${a.filter((x, k) => x !== b[k]).length} differ)`);
}

// The grouped scatter (host ids) against the scan (device ids) bit for bit, both against the
// float64 sum. Tolerance: each output sums at most n float32 terms of |x| <= 1 in order, so its
// error is below n * 2^-24 * sum|x|; rtol 1e-5 and atol 1e-6 cover n <= ~100 repeats at a time.
for (const [V, D, T, distinct, what] of [
  [3001, 67, 257, false, 'a vocabulary of 3001 rows, dim 67 (not a multiple of 64), 257 tokens with repeats'],
  [1, 1, 1, false, 'size 1'],
  [70000, 3, 40, false, 'a vocabulary of 70,000 rows, few tokens'],
  [5000, 1024, 4200, true, '4200 distinct ids of dim 1024: a two-dimensional grid of workgroups (past 65,535 in x)'],
] as const) {
  t(`grouped and scanned scatter give the same bits: ${what}`, async () => {
    const gpu = await testGpu();
    const r = rng(V + T);
    // Few distinct ids, so that many positions share a row, or all distinct; the first and last rows included.
    const pool = [0, V - 1, ...Array.from({ length: 7 }, () => Math.floor(r() * V))];
    const perm = Array.from({ length: V }, (_, i) => i).sort(() => r() - 0.5);
    const ids = Int32Array.from({ length: T }, (_, i) => (distinct ? [0, V - 1, ...perm.filter((v) => v !== 0 && v !== V - 1)][i] : i < 2 ? pool[i] : pool[Math.floor(r() * pool.length)]));
    const gy = Float32Array.from(randomValues(T * D, V));
    const W = [V, D];
    const G = ops.tensor(gpu, gy, [T, D], 'gy');
    // dW then reuses a pooled buffer full of 7s: rows of absent ids must be cleared.
    ops.tensor(gpu, new Float32Array(V * D).fill(7), [V, D], 'dirty').dispose();
    const grouped = embeddingBackward(W, deviceIds(gpu, ids), G, ids);
    const scanned = embeddingBackward(W, deviceIds(gpu, ids), G);
    sameBits(await bits(grouped), await bits(scanned), 'grouped vs scanned');
    const ref = new Float64Array(V * D);
    ids.forEach((id, i) => { for (let c = 0; c < D; c++) ref[id * D + c] += gy[i * D + c]; });
    assertClose(await grouped.floats(), ref, { rtol: 1e-5, atol: 1e-6 }, 'grouped vs float64');
    for (const x of [G, grouped, scanned]) x.dispose();
  });
}

t('the op passes its host ids: the backward of ops.embedding runs the grouped kernel', async () => {
  const gpu = await testGpu();
  if (!gpu.canProfile) {
    console.log('  skip: no timestamp-query on this adapter (the kernel entries come from the profiler)');
    return;
  }
  const W = ops.parameter(gpu, new Float32Array(40 * 3), [40, 3], 'W');
  const out = ops.embedding(W, ops.fromInts(gpu, [5, 1, 5], [3], 'ids'));
  await gpu.sync();
  gpu.startProfile();
  backward(out, ops.tensor(gpu, new Float32Array(9).fill(1), [3, 3]));
  const kernels = (await gpu.endProfile()).map((r) => r.kernel);
  assert.ok(kernels.includes('embedding.wgsl:scatter_sorted'), kernels.join(', '));
  assert.not.ok(kernels.includes('embedding.wgsl:scatter'), kernels.join(', '));
});

t('extreme values: overflowing and subnormal terms give the same bits on both paths', async () => {
  const gpu = await testGpu();
  const V = 6, D = 4;
  const ids = Int32Array.from([1, 1, 4, 1, 4, 0]);
  const gy = Float32Array.from([3e38, -3e38, 1e-38, 7, 3e38, 3e38, -1e-45, 0, 1, 2, 3, 4, 3e38, 1, 1e-45, -0, 1e-30, 5e-39, 6, -7, -3e38, -3e38, 0, 0]);
  const W = [V, D];
  const G = ops.tensor(gpu, gy, [6, D], 'gy');
  const grouped = embeddingBackward(W, deviceIds(gpu, ids), G, ids);
  const scanned = embeddingBackward(W, deviceIds(gpu, ids), G);
  sameBits(await bits(grouped), await bits(scanned), 'grouped vs scanned');
  const g = await grouped.floats();
  // row 1 = gy rows 0 + 1 + 3, in that order: -3e38 + 3e38 cancels exactly before the 1 is
  // added. (The overflowing column and the subnormal terms are compared only between the two
  // paths: WGSL leaves f32 overflow indeterminate, and flushing subnormals is the device's choice.)
  assert.is(g[1 * D + 1], 1);
  assert.equal([...g.slice(2 * D, 4 * D)], new Array(2 * D).fill(0), 'rows of absent ids are cleared');
});

t('out-of-range ids given straight to the launch contribute nothing on either path', async () => {
  const gpu = await testGpu();
  const ids = Int32Array.from([2, -3, 7, 2]);
  const W = [4, 2];
  const G = ops.tensor(gpu, Float32Array.from([1, 2, 10, 20, 100, 200, 3, 4]), [4, 2], 'gy');
  const expect = [0, 0, 0, 0, 4, 6, 0, 0];
  assert.equal([...(await embeddingBackward(W, deviceIds(gpu, ids), G, ids).floats())], expect);
  assert.equal([...(await embeddingBackward(W, deviceIds(gpu, ids), G).floats())], expect);
});
t.run();
