// rmsNorm against float64 in every layout (one invocation per row, a workgroup per row,
// a group of subgroup lanes per row): rows of 1, odd lengths (scalar path), multiples of 4
// (vec4), rows longer than a workgroup's stride, Qwen3's per-head [B, L, H, 128]; rows of
// extreme magnitude (1e-30 .. 1e30, eps 0 and 1e-6) mixed with ordinary ones; gradients of
// x and weight by finite differences, the weight's summed over chunks of rows, bit-for-bit
// the same on a second run.
//
// Tolerance: y = w x r with r from a sum of n squares in f32 (four or more partial sums,
// then r's inverse square root): relative error of r ~ (n / 4) * 6e-8 / 2 worst case for
// n = 1031 (1.5e-5), typically far less; F32 (2e-5 relative + 2e-6 of the largest |y|)
// holds with margin; a wrong eps, mean or index gives errors of 1e-3 and more.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { F32, assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';
import { defaultTuning } from '../../src/gpu/tuning.ts';
import type { RmsNormVariant } from '../../src/launch/rmsnorm.ts';

const t = suite('rmsnorm');
t.after.each(resetTuning);
const f32 = (a: ArrayLike<number>) => Float64Array.from(Float32Array.from(a));

// Every layout; 'row unfused' is the per-row layout with the weight gradient in its own
// kernels (the default fuses its first pass into the input gradient's kernel).
function variants(gpu: Gpu): [string, RmsNormVariant, boolean][] {
  const all: [string, RmsNormVariant, boolean][] = [['row', 'row', true], ['row unfused', 'row', false], ['workgroup', 'workgroup', true], ['auto', 'auto', true]];
  if (gpu.subgroupMinSize >= 4) all.push(['subgroup', 'subgroup', true]);
  return all;
}

async function eachVariant(gpu: Gpu, fn: (v: string) => Promise<void>): Promise<void> {
  try {
    for (const [name, v, fuse] of variants(gpu)) {
      gpu.tuning.rmsNorm = { variant: v, fuseWeightGrad: fuse };
      await fn(name);
    }
  } finally {
    gpu.tuning.rmsNorm = defaultTuning().rmsNorm;
  }
}

t('forward against float64: shapes [1x1], [3x5], [4x8], [70x300], [5x1031], [3x1024], [2x3x4x128] (per-head)', async () => {
  const gpu = await testGpu();
  await eachVariant(gpu, async (v) => {
    for (const shape of [[1, 1], [3, 5], [4, 8], [70, 300], [5, 1031], [3, 1024], [2, 3, 4, 128]]) {
      const n = shape[shape.length - 1];
      const x = f32(randomValues(ref.size(shape), n, -2, 2));
      const w = f32(randomValues(n, 1, 0.5, 1.5));
      const y = ops.rmsNorm(ops.tensor(gpu, x, shape), ops.tensor(gpu, w, [n]), 1e-6);
      assert.equal([...y.shape], shape);
      assertClose(await y.floats(), ref.rmsNorm(x, w, n, 1e-6), F32, `rmsNorm ${v} [${shape}]`);
    }
  });
});

t('extreme rows: magnitudes 1e-30 .. 1e30 (rescaled before squaring), zeros, eps 0 and 1e-6, eps dominating', async () => {
  const gpu = await testGpu();
  await eachVariant(gpu, async (v) => {
    for (const n of [8, 7, 300]) {
      const scales = [1, 1e30, 1e20, 1e17, 1e-15, 1e-20, 1e-30, 3e-4, 0];
      const x = new Float64Array(scales.length * n);
      scales.forEach((s, r) => x.set(randomValues(n, r + 7, -1, 1).map((u) => u * s), r * n));
      const x32 = f32(x);
      const w = f32(randomValues(n, 2, 0.5, 1.5));
      for (const eps of [1e-6, 0, 1e-35]) {
        const rows = eps === 0 ? scales.length - 1 : scales.length; // 0/0 for a zero row without eps
        const xs = x32.subarray(0, rows * n);
        const y = await ops.rmsNorm(ops.tensor(gpu, xs, [rows, n]), ops.tensor(gpu, w, [n]), eps).floats();
        const want = ref.rmsNorm(xs, w, n, eps);
        for (let r = 0; r < rows; r++)
          assertClose(y.subarray(r * n, (r + 1) * n), want.subarray(r * n, (r + 1) * n), F32, `rmsNorm ${v} n=${n} eps=${eps}, row of scale ${scales[r]}`);
      }
    }
  });
});

t('backward: x and weight by finite differences (scalar and vec4 rows, one chunk and several)', async () => {
  const gpu = await testGpu();
  await eachVariant(gpu, async (v) => {
    // n = 1: y = w x / sqrt(x^2 + eps) is flat but for eps, so a large eps there (with 1e-6
    // the x gradient is 1e-6 of its terms and f32 cancellation takes its leading digits).
    for (const [rows, n, eps] of [[3, 6, 1e-6], [5, 8, 1e-6], [1, 1, 0.5], [70, 4, 1e-6], [40, 9, 1e-6]]) {
      await checkGradients({
        what: `rmsNorm ${v} [${rows}x${n}]`, gpu,
        inputs: [{ data: randomValues(rows * n, rows + n, -2, 2), shape: [rows, n] }, { data: randomValues(n, 4, 0.5, 1.5), shape: [n] }],
        op: (x, w) => ops.rmsNorm(x, w, eps),
        reference: (x, w) => ref.rmsNorm(x, w, n, eps),
      });
    }
    // One input at a time (the fused kernel needs both).
    for (const wrt of [[0], [1]]) {
      await checkGradients({
        what: `rmsNorm ${v} [70x5], gradient of input ${wrt[0]} only`, gpu, wrt,
        inputs: [{ data: randomValues(350, 8, -2, 2), shape: [70, 5] }, { data: randomValues(5, 4, 0.5, 1.5), shape: [5] }],
        op: (x, w) => ops.rmsNorm(x, w, 1e-6),
        reference: (x, w) => ref.rmsNorm(x, w, 5, 1e-6),
      });
    }
    // A huge row (rescaled): the gradient, ~1e-20, keeps its relative accuracy.
    await checkGradients({
      what: `rmsNorm ${v}, rows of scale 1e20`, gpu,
      inputs: [{ data: randomValues(16, 9, -1e20, 1e20), shape: [2, 8] }, { data: randomValues(8, 4, 0.5, 1.5), shape: [8] }],
      op: (x, w) => ops.rmsNorm(x, w, 1e-6),
      reference: (x, w) => ref.rmsNorm(x, w, 8, 1e-6),
    });
  });
});

t('weight gradient over 3000 rows: deterministic (bit-identical twice) and equal to the float64 sum', async () => {
  const gpu = await testGpu();
  await eachVariant(gpu, async (v) => {
    const [rows, n] = [3000, 12];
    const x = f32(randomValues(rows * n, 1, -2, 2));
    const w = f32(randomValues(n, 2, 0.5, 1.5));
    const gy = f32(randomValues(rows * n, 3));
    const grads: Float32Array[] = [];
    for (let k = 0; k < 2; k++) {
      const xt = ops.tensor(gpu, x, [rows, n]);
      const wt = ops.tensor(gpu, w, [n]);
      xt.requiresGrad = wt.requiresGrad = true;
      backward(ops.rmsNorm(xt, wt), ops.tensor(gpu, gy, [rows, n]));
      grads.push(await wt.grad!.floats());
    }
    assert.equal(Array.from(grads[1]), Array.from(grads[0]), `${v}: two runs differ`);
    // d/dw_j = sum_rows gy * x * r
    const want = new Float64Array(n);
    const y1 = ref.rmsNorm(x, new Float64Array(n).fill(1), n, 1e-6);
    for (let i = 0; i < rows * n; i++) want[i % n] += gy[i] * y1[i];
    assertClose(grads[0], want, { rtol: 1e-4, atol: 1e-5 }, `rmsNorm ${v}: weight gradient`);
  });
});

// Timings, only on request: CTVLM_BENCH=1 node scripts/test-only.mjs test/ops/rmsnorm.test.ts
// (GPU timestamps; medians of interleaved rounds, as the machine may be shared).
t('timing of each layout against layerNorm (CTVLM_BENCH=1)', async () => {
  if (!process.env.CTVLM_BENCH) return;
  const gpu = await testGpu();
  if (!gpu.canProfile) return console.log('  (no timestamp queries: no timings)');
  const shapes = (process.env.CTVLM_BENCH_SHAPES ?? '4096x1024,1024x4096,65536x128,32768x8').split(',').map((v) => v.split('x').map(Number));
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
  try {
    for (const [rows, n] of shapes) {
      const x = ops.randn(gpu, [rows, n], 1), w = ops.randn(gpu, [n], 2), gy = ops.randn(gpu, [rows, n], 3);
      const gamma = ops.ones(gpu, [n]), beta = ops.zeros(gpu, [n]);
      const times = new Map<string, number[]>();
      for (let round = 0; round < 6; round++) {
        for (const [name, v, fuse] of [...variants(gpu).filter(([nm]) => nm !== 'auto'), ['layerNorm', 'auto', true] as const]) {
          await gpu.sync();
          gpu.startProfile(64);
          if (name === 'layerNorm') {
            x.requiresGrad = true;
            backward(ops.layerNorm(x, gamma, beta), gy);
          } else {
            gpu.tuning.rmsNorm = { variant: v, fuseWeightGrad: fuse };
            x.requiresGrad = w.requiresGrad = true;
            backward(ops.rmsNorm(x, w), gy);
          }
          x.requiresGrad = w.requiresGrad = false;
          x.grad?.dispose();
          w.grad?.dispose();
          x.grad = w.grad = null;
          const recs = await gpu.endProfile();
          if (round === 0) continue; // pipelines compiled
          const fwd = recs[0].ms, bwd = recs.slice(1).reduce((a, r) => a + r.ms, 0);
          for (const [k, ms] of [[`${name} forward`, fwd], [`${name} backward`, bwd]] as const) (times.get(k) ?? times.set(k, []).get(k)!).push(ms);
        }
      }
      console.log(`\n  [${rows}x${n}], ms (x read, y written: GB/s):`);
      for (const [k, a] of times) console.log(`    ${k.padEnd(24)} ${med(a).toFixed(2).padStart(8)} ms  ${((8 * rows * n) / 1e6 / med(a)).toFixed(2)} GB/s`);
      for (const tt of [x, w, gy, gamma, beta]) tt.dispose();
    }
  } finally {
    gpu.tuning.rmsNorm = defaultTuning().rmsNorm;
  }
});

t('bad input: weight shape, negative eps', async () => {
  const gpu = await testGpu();
  const x = ops.tensor(gpu, new Float32Array(6), [2, 3]);
  assert.throws(() => ops.rmsNorm(x, ops.tensor(gpu, [1, 1], [2])), /rmsNorm: weight \[2\] must be \[3\] for input \[2x3\]/);
  assert.throws(() => ops.rmsNorm(x, ops.tensor(gpu, [1, 1, 1], [3]), -1), /rmsNorm: eps must be >= 0/);
});

t.run();
