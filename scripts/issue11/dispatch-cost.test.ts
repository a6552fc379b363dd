// What one dispatch costs on this adapter by itself: N adds of tiny tensors (one workgroup
// each) encoded into one submit, wall time per dispatch; and N adds of a [4128x96] tensor.
//   node scripts/test-only.mjs scripts/issue11/dispatch-cost.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { scope } from '../../src/tensor.ts';
import * as ops from '../../src/ops/index.ts';

test('dispatch cost', async () => {
  const gpu = await testGpu();
  for (const n of [16, 4128 * 96]) {
    const a = ops.tensor(gpu, new Float32Array(n).fill(1), [n]);
    for (const count of [200, 1000]) {
      const times: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        scope(() => {
          let x = a;
          for (let i = 0; i < count; i++) x = ops.add(x, a);
        });
        await gpu.sync();
        times.push(performance.now() - t0);
      }
      times.sort((x, y) => x - y);
      console.log(`add [${n}] x${count}: ${(times[2] / count * 1000).toFixed(1)} us/dispatch wall (median of 5)`);
    }
  }
});
test.run();
