// softmax / logSoftmax over the last axis against float64, rows of lengths 1, 7 and 301
// (larger than a workgroup); backward by finite differences.
import { suite } from 'uvu';
import { testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';

const t = suite('softmax');
for (const log of [false, true]) {
  const name = log ? 'logSoftmax' : 'softmax';
  const fn = log ? ops.logSoftmax : ops.softmax;
  t(`${name}: forward and backward`, async () => {
    const gpu = await testGpu();
    for (const [rows, n] of [[1, 1], [3, 7], [65, 301], [2, 5]]) {
      // Large logits check the max subtraction (exp(80) would overflow f32 without it).
      const x = randomValues(rows * n, n, -4, 4).map((v, i) => (i % 3 === 0 ? v + 80 : v));
      const y = await fn(ops.tensor(gpu, Float32Array.from(x), [rows, n])).floats();
      assertClose(y, ref.softmax(Float64Array.from(Float32Array.from(x)), n, log), F32, `${name} ${rows}x${n}`);
    }
    await checkGradients({ what: name, gpu, inputs: [{ data: randomValues(4 * 6, 2, -2, 2), shape: [2, 2, 6] }], op: fn, reference: (a) => ref.softmax(a, 6, log) });
  });
}
t.run();
