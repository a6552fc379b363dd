// embedding gather against indexing, and the scatter-add gradient (with repeated ids)
// against the analytic float64 sum.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, randomValues } from '../helpers/check.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';

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
t.run();
