// The subgroup matmul with B through uniform bindings against B from storage
// (gpu.tuning.matmul.uniformB true / false, kernels/matmul.wgsl UB) on chosen shapes, timed in
// alternating rounds by timestamp queries (the bench's measureInterleaved), outputs compared.
// SHAPES: M x K x N and t (B^T stored [N, K], the forward x W^T) or n (B [K, N], the input
// gradient G W); default: the x1 model's and the harness's shapes.
//   SHAPES='4128x96x96t 4128x96x96n' node scripts/test-only.mjs scripts/issue11/uniform-b-shapes.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { tensor } from '../../src/ops/creation.ts';
import { matmul } from '../../src/ops/matmul.ts';
import { measureInterleaved } from '../../bench/lib/measure.ts';
import { opRunner } from '../../bench/lib/ours.ts';
import { hostRandn } from '../../bench/lib/case.ts';
import { sideOf } from '../../bench/lib/row.ts';

test('uniform B against storage B, per shape', async () => {
  const gpu = await testGpu();
  const shapes = (process.env.SHAPES ?? '4128x96x96t 4128x96x96n 4128x128x128t 4128x128x128n 4128x96x192t 4128x192x96n 1536x64x160t 1536x160x64n').split(/\s+/);
  const budget = { warmup: 2, tsSeconds: 2, wallSeconds: 0.3, rounds: 5, minIters: 5, maxIters: 40 };
  for (const spec of shapes) {
    const m = /^(\d+)x(\d+)x(\d+)([tn])$/.exec(spec);
    if (!m) throw new Error(`SHAPES: '${spec}' is not MxKxN followed by t or n`);
    const [M, K, N] = m.slice(1, 4).map(Number);
    const transB = m[4] === 't';
    const a = tensor(gpu, hostRandn(M * K, 1), [M, K], 'A');
    const b = tensor(gpu, hostRandn(K * N, 2), transB ? [N, K] : [K, N], 'B');
    const setting = gpu.tuning.matmul.uniformB;
    const call = (on: boolean) => () => {
      gpu.tuning.matmul.uniformB = on;
      try {
        return matmul(a, b, { transB });
      } finally {
        gpu.tuning.matmul.uniformB = setting;
      }
    };
    const [u, st] = await measureInterleaved([opRunner(gpu, call(true)), opRunner(gpu, call(false))], budget);
    if (u instanceof Error || st instanceof Error) throw u instanceof Error ? u : st;
    const [x, y] = [await call(true)().floats(), await call(false)().floats()];
    const same = x.every((v, i) => Object.is(v, y[i]));
    const [mu, ms] = [sideOf(u).ms, sideOf(st).ms];
    const gf = (ms_: number) => ((2 * M * N * K) / ms_ / 1e6).toFixed(1);
    console.log(`\n${spec.padEnd(16)} uniform ${mu.toFixed(3)} ms (${gf(mu)} GFLOP/s), storage ${ms.toFixed(3)} ms (${gf(ms)}): storage / uniform ${(ms / mu).toFixed(2)}${same ? '' : '  OUTPUTS DIFFER'}`);
    a.dispose();
    b.dispose();
  }
  console.log(`(each shape: ${budget.rounds} alternating rounds of timestamp queries, ${budget.tsSeconds} s of them per side, medians)`);
  console.log(`device: ${gpu.describe()}`);
});
test.run();
