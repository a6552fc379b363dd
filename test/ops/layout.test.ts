// reshape, permute, transpose, slice, concat and expand against float64 index arithmetic, in
// each layout of the strided copy (runs of 64 per invocation, one element per invocation,
// 32x32 tiles for the gathers that transpose); backward by finite differences.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { strided, transposeAxis, rowStrides, type LayoutVariant } from '../../src/launch/layout.ts';
import { Tensor } from '../../src/tensor.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('layout');
t.after.each(resetTuning);
const EXACT = { rtol: 0, atol: 0 };
const VARIANTS: LayoutVariant[] = ['run', 'element', 'tiled'];

for (const variant of VARIANTS) t(`permute and transpose (${variant}), ranks 2 to 4`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = variant;
  // Tiles of 32: edges of 1, 3, 13 and 35 elements, one tile, several, batches of tiles.
  const cases = [[[3, 5], [1, 0]], [[2, 3, 4], [2, 0, 1]], [[2, 3, 4, 5], [0, 2, 1, 3]], [[1, 7], [1, 0]], [[130, 3], [1, 0]], [[2, 70, 3], [0, 2, 1]], [[67, 45], [1, 0]], [[3, 33, 64], [0, 2, 1]], [[5, 1, 35], [2, 1, 0]], [[4, 6, 5, 3], [3, 1, 2, 0]]];
  for (const [shape, perm] of cases as [number[], number[]][]) {
    const x = randomValues(ref.size(shape), 4);
    const xt = ops.tensor(gpu, Float32Array.from(x), shape);
    gpu.startProfile();
    const y = ops.permute(xt, perm);
    const [ran] = (await gpu.endProfile()).map((r) => r.kernel);
    // The variant asked for is the kernel that ran ('tiled' only where the permute transposes).
    const xs = rowStrides(shape);
    const tiles = transposeAxis(perm.map((p) => shape[p]), perm.map((p) => xs[p])) >= 0;
    assert.is(ran, `layout.wgsl:${variant === 'tiled' && tiles ? 'gather_tiled' : 'gather'}`, `permute [${shape}] [${perm}] (${variant}): kernel`);
    assert.equal([...y.shape], perm.map((p) => shape[p]));
    assertClose(await y.floats(), ref.permute(Float64Array.from(Float32Array.from(x)), shape, perm), EXACT, `permute [${shape}] [${perm}]`);
    if (ref.size(shape) <= 300) await checkGradients({ what: `permute [${shape}]`, gpu, inputs: [{ data: x, shape }], op: (a) => ops.permute(a, perm), reference: (a) => ref.permute(a, shape, perm) });
  }
  const x = ops.tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
  assert.equal([...(await ops.transpose(x).floats())], [1, 4, 2, 5, 3, 6]);
});

// A strided gather at an offset (no op passes one to a transposing gather today; the kernel
// takes it): out[i, j] = x[123 + i + 50 j], a [10, 7] window read column-wise.
for (const variant of VARIANTS) t(`strided gather at an offset (${variant})`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = variant;
  const x = Float32Array.from({ length: 600 }, (_, i) => i);
  const xt = ops.tensor(gpu, x, [600]);
  const y = new Tensor(gpu, [10, 7], 'f32');
  strided(gpu, 'gather', xt.buffer, y.buffer, [10, 7], [1, 50], 123, 'gather at an offset');
  assert.equal([...(await y.floats())], Array.from({ length: 70 }, (_, k) => 123 + Math.floor(k / 7) + 50 * (k % 7)));
  xt.dispose();
  y.dispose();
});

t('reshape is a view; -1 is inferred', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, [1, 2, 3, 4, 5, 6], [2, 3]);
  const y = ops.reshape(x, [3, -1]);
  assert.equal([...y.shape], [3, 2]);
  assert.is(y.buffer, x.buffer, 'shares storage');
  assert.throws(() => ops.reshape(x, [4, 2]), /reshape: \[2x3\] \(6 elements\) cannot become \[4x2\]/);
  await checkGradients({ what: 'reshape', gpu, inputs: [{ data: randomValues(6, 1), shape: [2, 3] }], op: (a) => ops.reshape(a, [6]), reference: (a) => a });
});

// More tiles than one dimension of a dispatch holds: 70001 batches of one tile each.
t('permute (tiled): 70001 batches of 3x2 tiles', async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = 'tiled';
  const shape = [70001, 2, 3];
  const x = Float32Array.from(randomValues(ref.size(shape), 8));
  const y = await ops.permute(ops.tensor(gpu, x, shape), [0, 2, 1]).floats();
  assertClose(y, ref.permute(Float64Array.from(x), shape, [0, 2, 1]), EXACT, `permute [${shape}] [0,2,1]`);
});

for (const variant of VARIANTS) t(`slice along each axis (${variant}), and its backward`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = variant;
  const shape = [4, 5, 3];
  const x = randomValues(60, 7);
  const x32 = Float32Array.from(x);
  const xt = ops.tensor(gpu, x32, shape);
  const refSlice = (a: Float64Array, axis: number, s: number, e: number) => {
    const out: number[] = [];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 5; j++) for (let k = 0; k < 3; k++) {
      const c = [i, j, k][axis];
      if (c >= s && c < e) out.push(a[(i * 5 + j) * 3 + k]);
    }
    return Float64Array.from(out);
  };
  for (const [axis, s, e] of [[0, 1, 3], [1, 2, 5], [2, 0, 1], [-1, 1, 3]]) {
    const ax = axis < 0 ? 3 + axis : axis;
    assertClose(await ops.slice(xt, axis, s, e).floats(), refSlice(Float64Array.from(x32), ax, s, e), EXACT, `slice axis ${axis}`);
    await checkGradients({ what: `slice axis ${axis}`, gpu, inputs: [{ data: x, shape }], op: (a) => ops.slice(a, axis, s, e), reference: (a) => refSlice(a, ax, s, e) });
  }
  assert.throws(() => ops.slice(xt, 1, 3, 3), /slice: \[3, 3\) is not a non-empty range inside axis 1/);
  assert.throws(() => ops.slice(xt, 0, 0, 9), /slice/);
});

for (const variant of VARIANTS) t(`concat along an inner axis (${variant}), and its backward`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = variant;
  const a = randomValues(2 * 3, 1), b = randomValues(2 * 2, 2);
  const refCat = (x: Float64Array, y: Float64Array) => Float64Array.from([...x.slice(0, 3), ...y.slice(0, 2), ...x.slice(3), ...y.slice(2)]);
  const out = ops.concat([ops.tensor(gpu, Float32Array.from(a), [2, 3]), ops.tensor(gpu, Float32Array.from(b), [2, 2])], 1);
  assert.equal([...out.shape], [2, 5]);
  assertClose(await out.floats(), refCat(Float64Array.from(Float32Array.from(a)), Float64Array.from(Float32Array.from(b))), EXACT, 'concat');
  await checkGradients({ what: 'concat', gpu, inputs: [{ data: a, shape: [2, 3] }, { data: b, shape: [2, 2] }], op: (x, y) => ops.concat([x, y], 1), reference: refCat });
  assert.throws(() => ops.concat([ops.tensor(gpu, [1, 2], [2, 1]), ops.tensor(gpu, [1, 2, 3], [3, 1])], 1), /concat: shapes \[2x1\], \[3x1\] differ outside axis 1/);
});

// [3, 1] to [2, 3, 2]: strides [0, 1, 0], a gather the tiled layout takes (P = 1, Q stride 0).
for (const variant of VARIANTS) t(`expand broadcasts (${variant}); its backward sums`, async () => {
  const gpu = await testGpu();
  gpu.tuning.layout.variant = variant;
  const x = randomValues(3, 3);
  const refExp = (a: Float64Array) => Float64Array.from({ length: 12 }, (_, i) => a[Math.floor(i / 2) % 3]);
  assertClose(await ops.expand(ops.tensor(gpu, Float32Array.from(x), [3, 1]), [2, 3, 2]).floats(), refExp(Float64Array.from(Float32Array.from(x))), EXACT, 'expand');
  await checkGradients({ what: 'expand', gpu, inputs: [{ data: x, shape: [3, 1] }], op: (a) => ops.expand(a, [2, 3, 2]), reference: refExp });
});

t.run();
