// matmul against float64 for both kernel variants, every transpose combination, batched
// and broadcast operands, the bias epilogue, and sizes that are not multiples of the tiles
// (32 x 32 per workgroup, vec4 along k and n) including 1. Backward by finite differences.
// Tolerance: F32 (test/helpers/check.ts) with rtol scaled for K-term sums.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { matmulVariantFor } from '../../src/ops/matmul.ts';

const t = suite('matmul');
const TOL = { rtol: 1e-4, atol: 2e-5 };
const sizes: [number, number, number][] = [[1, 1, 1], [5, 7, 3], [33, 17, 9], [64, 64, 64], [70, 130, 45], [40, 12, 36], [3, 200, 5]];

async function variants(): Promise<('subgroup' | 'tiled')[]> {
  const gpu = await testGpu();
  return gpu.subgroupMinSize >= 8 ? ['subgroup', 'tiled'] : ['tiled'];
}

t('2D, all transposes, both variants, odd sizes', async () => {
  const gpu = await testGpu();
  for (const v of await variants()) {
    gpu.tuning.matmul.variant = v;
    for (const [M, K, N] of sizes)
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          const a = randomValues(M * K, M + K), b = randomValues(K * N, K + N);
          const at = ops.tensor(gpu, Float32Array.from(a), transA ? [K, M] : [M, K]);
          const bt = ops.tensor(gpu, Float32Array.from(b), transB ? [N, K] : [K, N]);
          const c = ops.matmul(at, bt, { transA, transB });
          assert.equal([...c.shape], [M, N]);
          const expect = ref.matmul(Float64Array.from(Float32Array.from(a)), Float64Array.from(Float32Array.from(b)), M, K, N, transA, transB);
          assertClose(await c.floats(), expect, TOL, `${v} ${M}x${K}x${N} transA=${transA} transB=${transB}`);
          for (const x of [at, bt, c]) x.dispose();
        }
  }
  gpu.tuning.matmul.variant = 'auto';
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
      for (const transB of [false, true]) {
        const a = randomValues(M * K, 1), b = randomValues(K * N, 2);
        const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), [M, K]), ops.tensor(gpu, Float32Array.from(b), transB ? [N, K] : [K, N]), { transB });
        const expect = ref.matmul(Float64Array.from(Float32Array.from(a)), Float64Array.from(Float32Array.from(b)), M, K, N, false, transB);
        assertClose(await c.floats(), expect, TOL, `4-lane groups ${M}x${K}x${N} transB=${transB}`);
      }
  } finally {
    gpu.tuning.matmul.group = null;
    gpu.tuning.matmul.variant = 'auto';
  }
});

t('bias epilogue', async () => {
  const gpu = await testGpu();
  for (const v of await variants()) {
    gpu.tuning.matmul.variant = v;
    for (const [M, K, N] of [[6, 5, 7], [40, 16, 32]]) {
      const a = randomValues(M * K, 1), b = randomValues(K * N, 2), bias = randomValues(N, 3);
      const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), [M, K]), ops.tensor(gpu, Float32Array.from(b), [K, N]), { bias: ops.tensor(gpu, Float32Array.from(bias), [N]) });
      const expect = ref.matmul(...[a, b].map((x) => Float64Array.from(Float32Array.from(x))) as [Float64Array, Float64Array], M, K, N, false, false, Float64Array.from(Float32Array.from(bias)));
      assertClose(await c.floats(), expect, TOL, `${v} bias ${M}x${K}x${N}`);
    }
  }
  gpu.tuning.matmul.variant = 'auto';
});

t('batched: both batched, shared B (folded), shared A, leading batch dims', async () => {
  const gpu = await testGpu();
  const M = 9, K = 8, N = 6;
  for (const [as, bs] of [[[3, M, K], [3, K, N]], [[2, 3, M, K], [K, N]], [[M, K], [4, K, N]], [[2, 1, M, K], [1, K, N]]] as [number[], number[]][]) {
    const a = Float64Array.from(Float32Array.from(randomValues(ref.size(as), 5)));
    const b = Float64Array.from(Float32Array.from(randomValues(ref.size(bs), 6)));
    const c = ops.matmul(ops.tensor(gpu, Float32Array.from(a), as), ops.tensor(gpu, Float32Array.from(b), bs));
    const batch = Math.max(ref.size(as.slice(0, -2)), ref.size(bs.slice(0, -2)));
    const expect = new Float64Array(batch * M * N);
    for (let i = 0; i < batch; i++) {
      const ai = ref.size(as.slice(0, -2)) === 1 ? 0 : i, bi = ref.size(bs.slice(0, -2)) === 1 ? 0 : i;
      expect.set(ref.matmul(a.slice(ai * M * K, (ai + 1) * M * K), b.slice(bi * K * N, (bi + 1) * K * N), M, K, N), i * M * N);
    }
    assertClose(await c.floats(), expect, TOL, `batched [${as}] @ [${bs}]`);
  }
});

t('backward: every transpose, bias, shared-B batch (both variants)', async () => {
  const gpu = await testGpu();
  for (const v of await variants()) {
    gpu.tuning.matmul.variant = v;
    const M = 5, K = 6, N = 3;
    for (const transA of [false, true])
      for (const transB of [false, true])
        await checkGradients({
          what: `${v} matmul backward transA=${transA} transB=${transB}`, gpu,
          inputs: [{ data: randomValues(M * K, 1), shape: transA ? [K, M] : [M, K] }, { data: randomValues(K * N, 2), shape: transB ? [N, K] : [K, N] }, { data: randomValues(N, 3), shape: [N] }],
          op: (a, b, bias) => ops.matmul(a, b, { transA, transB, bias }),
          reference: (a, b, bias) => ref.matmul(a, b, M, K, N, transA, transB, bias),
        });
    await checkGradients({
      what: `${v} batched shared-B backward`, gpu,
      inputs: [{ data: randomValues(2 * M * K, 4), shape: [2, M, K] }, { data: randomValues(K * N, 5), shape: [K, N] }],
      op: (a, b) => ops.matmul(a, b),
      reference: (a, b) => Float64Array.from([...ref.matmul(a.slice(0, M * K), b, M, K, N), ...ref.matmul(a.slice(M * K), b, M, K, N)]),
    });
  }
  gpu.tuning.matmul.variant = 'auto';
});

t('bad input names the op and shapes', async () => {
  const gpu = await testGpu();
  const a = ops.tensor(gpu, new Float32Array(6), [2, 3]);
  const b = ops.tensor(gpu, new Float32Array(8), [4, 2]);
  assert.throws(() => ops.matmul(a, b), /matmul: \[2x3\] @ \[4x2\]: inner dimensions differ \(3 vs 4\)/);
  assert.throws(() => ops.matmul(a, ops.tensor(gpu, [1, 2, 3], [3])), /at least 2 dimensions/);
  assert.throws(() => ops.matmul(a, ops.tensor(gpu, new Float32Array(6), [3, 2]), { bias: ops.tensor(gpu, [1, 2, 3], [3]) }), /bias \[3\] must have shape \[2\]/);
  assert.throws(() => ops.matmul(ops.tensor(gpu, new Float32Array(12), [2, 2, 3]), ops.tensor(gpu, new Float32Array(18), [3, 3, 2])), /batch dimensions/);
  assert.ok(['subgroup', 'tiled'].includes(matmulVariantFor(gpu)));
});

t.run();
