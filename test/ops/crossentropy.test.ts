// cross-entropy against float64 (including masked rows and large logits); gradient by
// finite differences of the float64 mean loss.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('crossentropy');
t('rows and mean over valid rows', async () => {
  const gpu = await testGpu();
  const rows = 9, C = 13;
  const x = randomValues(rows * C, 1, -3, 3).map((v, i) => (i === 5 ? v + 60 : v));
  const targets = [0, 12, 5, -1, 3, 3, -1, 7, 1];
  const x64 = Float64Array.from(Float32Array.from(x));
  const perRow = ref.crossEntropyRows(x64, targets, C);
  const lt = ops.tensor(gpu, Float32Array.from(x), [rows, C]);
  const tt = ops.fromInts(gpu, targets, [rows]);
  assertClose(await ops.crossEntropyRows(lt, tt).floats(), perRow, F32, 'rows');
  const mean = perRow.reduce((a, b) => a + b, 0) / 7;
  assertClose([await ops.crossEntropy(lt, tt).item()], [mean], F32, 'mean over the 7 valid rows');
  await checkGradients({
    what: 'crossEntropy', gpu, inputs: [{ data: x.slice(0, 4 * C), shape: [4, C] }],
    op: (a) => ops.crossEntropy(a, ops.fromInts(gpu, [2, -1, 0, 12], [4])),
    reference: (a) => Float64Array.from([ref.crossEntropyRows(a, [2, -1, 0, 12], C).reduce((s, v) => s + v, 0) / 3]),
  });
});
t('targets past the classes are refused', async () => {
  const gpu = await testGpu();
  assert.throws(() => ops.crossEntropy(ops.tensor(gpu, new Float32Array(6), [2, 3]), ops.fromInts(gpu, [0, 3], [2])), /target 3 at row 1 is not below the 3 classes/);
  assert.throws(() => ops.crossEntropy(ops.tensor(gpu, new Float32Array(6), [2, 3]), ops.fromInts(gpu, [0], [1])), /2 rows but targets \[1\] have 1/);
});
t('binary cross-entropy with logits: positive weights per column, unknown labels masked', async () => {
  const gpu = await testGpu();
  const N = 70, Q = 3;
  const x = Float64Array.from(Float32Array.from(randomValues(N * Q, 3, -4, 4)));
  const y = Array.from({ length: N * Q }, (_, i) => [1, 0, -1, 0, 1][i % 5]);
  const w = [1, 2.5, 20];
  const sp = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));
  const refBce = (xs: Float64Array, ys: number[], rows: number) => {
    let s = 0, c = 0;
    for (let i = 0; i < rows * Q; i++) {
      if (ys[i] < 0) continue;
      s += w[i % Q] * ys[i] * sp(-xs[i]) + (1 - ys[i]) * sp(xs[i]);
      c++;
    }
    return s / c;
  };
  const loss = ops.bceWithLogits(ops.tensor(gpu, Float32Array.from(x), [N, Q]), ops.tensor(gpu, y, [N, Q]), ops.tensor(gpu, w, [Q]));
  assertClose([await loss.item()], [refBce(x, y, N)], { rtol: 2e-5, atol: 0 }, 'bce');
  await checkGradients({
    what: 'bceWithLogits', gpu, inputs: [{ data: x.slice(0, 4 * Q), shape: [4, Q] }],
    op: (a) => ops.bceWithLogits(a, ops.tensor(gpu, y.slice(0, 4 * Q), [4, Q]), ops.tensor(gpu, w, [Q])),
    reference: (a) => Float64Array.from([refBce(a, y, 4)]),
  });
  assert.throws(() => ops.bceWithLogits(ops.zeros(gpu, [2, 3]), ops.zeros(gpu, [3, 2])), /logits \[2x3\] and labels \[3x2\] differ/);
});

t.run();
