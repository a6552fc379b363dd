// weightNorm(g, v) = g * v / ||v|| per output row (torch weight_norm, dim 0) against float64,
// and the gradients of g and v through the tape by finite differences. Tolerances:
// test/helpers/check.ts (the norm is a sum of I squares in f32, as in the reductions).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { noGrad } from '../../src/autograd.ts';

const t = suite('weightnorm');
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

t('forward against float64: g [O, 1] and [O]; [1x1], [5x7], [3x1030], v [4x3x2] with g [4x1x1]', async () => {
  const gpu = await testGpu();
  const cases: [number[], number[]][] = [[[1, 1], [1, 1]], [[5, 1], [5, 7]], [[3], [3, 1030]], [[4, 1, 1], [4, 3, 2]], [[4], [4, 3, 2]]];
  for (const [gs, vs] of cases) {
    const O = vs[0];
    const I = ref.size(vs) / O;
    const g = f32(randomValues(O, 1, -2, 2));
    const v = f32(randomValues(O * I, 2, -3, 3));
    const w = ops.weightNorm(ops.tensor(gpu, g, gs), ops.tensor(gpu, v, vs));
    assert.equal([...w.shape], vs);
    assertClose(await w.floats(), ref.weightNorm(g, v, O, I), F32, `weightNorm g [${gs}] v [${vs}]`);
    // Without a tape the same numbers (and the intermediates are freed at once).
    const w2 = noGrad(() => ops.weightNorm(ops.tensor(gpu, g, gs), ops.tensor(gpu, v, vs)));
    assert.equal(Array.from(await w2.floats()), Array.from(await w.floats()));
  }
});

t('backward: g and v by finite differences ([5x7], [1x1], [3x2x3])', async () => {
  const gpu = await testGpu();
  for (const [gs, vs] of [[[5, 1], [5, 7]], [[1, 1], [1, 1]], [[3, 1, 1], [3, 2, 3]]] as [number[], number[]][]) {
    const O = vs[0];
    const I = ref.size(vs) / O;
    await checkGradients({
      what: `weightNorm g [${gs}] v [${vs}]`, gpu,
      inputs: [{ data: randomValues(O, 3, -2, 2), shape: gs }, { data: randomValues(O * I, 4, -3, 3), shape: vs }],
      op: (g, v) => ops.weightNorm(g, v),
      reference: (g, v) => ref.weightNorm(g, v, O, I),
    });
  }
});

t('bad shapes', async () => {
  const gpu = await testGpu();
  const v = ops.tensor(gpu, new Float32Array(6).fill(1), [2, 3]);
  assert.throws(() => ops.weightNorm(ops.tensor(gpu, [1, 1, 1], [3, 1]), v), /weightNorm: g \[3x1\] must be \[2\] or \[2x1\] for v \[2x3\]/);
  assert.throws(() => ops.weightNorm(ops.tensor(gpu, [1, 1], [1, 2]), v), /weightNorm: g \[1x2\]/);
  assert.throws(() => ops.weightNorm(ops.tensor(gpu, [1, 1, 1], [3]), ops.tensor(gpu, [1, 2, 3], [3])), /needs at least two dimensions/);
});

t.run();
