// Experiment: the small preset's window attention ([32 windows x 4 heads] 129 tokens x 24) as
// the fused attention op against a materialized form (Q K^T as a batched matmul, softmax, P V,
// and autograd's rules for each), device time of forward + backward from timestamps, medians
// of N alternating rounds, and the largest difference of the outputs and gradients (inputs
// uniform in [-1, 1]; asserted below 1e-5: f32 sums of 129 and 24 terms of O(1) values).
//   N=7 node scripts/test-only.mjs scripts/issue11/attn-materialized.test.ts   (EACH=1 prints every round)
// Measured 2026-12-05 (family-26 EPYC, lavapipe): fused 20-32 ms in 3 dispatches, materialized
// 40-70 ms in 18 (8 of them products and softmaxes of 3-5 ms each, the [128 x 129 x 129] scores
// written and read four times), about 2x through the machine's load; outputs and gradients
// agree to 2e-7 (1.2e-6 with normal inputs). The fused kernels stay. Each round runs in a scope:
// without it the forward's intermediates leaked, every round took fresh 8.5 MB buffers, and the
// first kernel to write one took 30-45 ms instead of 4-7 (first touch of new memory on this VM;
// the pool is what keeps a training step from paying it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testGpu } from '../../test/helpers/gpu.ts';
import { randomArray } from '../../test/helpers/random.ts';
import { parameter, tensor } from '../../src/ops/creation.ts';
import { attention, matmul, softmax, permute, reshape, mulScalar } from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope, type Tensor } from '../../src/tensor.ts';
import { median } from '../../src/train/profile.ts';

function materialized(q: Tensor, k: Tensor, v: Tensor, B: number, L: number, H: number, D: number): Tensor {
  const heads = (x: Tensor) => reshape(permute(x, [0, 2, 1, 3]), [B * H, L, D]);
  const s = matmul(mulScalar(heads(q), 1 / Math.sqrt(D)), heads(k), { transB: true });
  const o = matmul(softmax(s), heads(v));
  return permute(reshape(o, [B, H, L, D]), [0, 2, 1, 3]);
}

test('window attention: fused against materialized', async () => {
  const gpu = await testGpu();
  const n = Number(process.env.N ?? 7);
  const [B, L, H, D] = (process.env.SHAPE ?? '32,129,4,24').split(',').map(Number);
  const shape = [B, L, H, D];
  const q = parameter(gpu, randomArray(B * L * H * D, 1), shape, 'q');
  const k = parameter(gpu, randomArray(B * L * H * D, 2), shape, 'k');
  const v = parameter(gpu, randomArray(B * L * H * D, 3), shape, 'v');
  const g = tensor(gpu, randomArray(B * L * H * D, 4), shape);
  const forms = { fused: (a: Tensor, b: Tensor, c: Tensor) => attention(a, b, c, { layout: 'blhd' }), materialized: (a: Tensor, b: Tensor, c: Tensor) => materialized(a, b, c, B, L, H, D) };
  const times: Record<string, number[]> = { fused: [], materialized: [] };
  const outs: Record<string, Float32Array[]> = {};
  for (let it = -1; it < n; it++) {
    for (const [name, f] of Object.entries(forms)) {
      for (const p of [q, k, v]) p.grad?.dispose(), (p.grad = null);
      await gpu.sync();
      gpu.startProfile(256);
      const o = scope(() => {
        const out = f(q, k, v);
        backward(out, g);
        return out;
      });
      const recs = await gpu.endProfile();
      if (it >= 0) times[name].push(recs.reduce((s, r) => s + r.ms, 0));
      if (process.env.EACH) console.log(it, name, recs.filter((r) => r.ms > 3).map((r) => `${r.label.slice(0, 44)} ${r.ms.toFixed(1)}`).join('; '));
      if (it === n - 1) {
        outs[name] = [await o.floats(), await q.grad!.floats(), await k.grad!.floats(), await v.grad!.floats()];
        console.log(name, recs.length, 'dispatches:', recs.map((r) => `${r.label.slice(0, 40)} ${r.ms.toFixed(2)}`).join('; '));
      }
      o.dispose();
    }
  }
  console.log(`[${shape}] device ms fwd+bwd: fused ${median(times.fused).toFixed(2)}, materialized ${median(times.materialized).toFixed(2)}`);
  let worst = 0;
  for (let i = 0; i < 4; i++) for (let j = 0; j < outs.fused[i].length; j++) worst = Math.max(worst, Math.abs(outs.fused[i][j] - outs.materialized[i][j]));
  console.log('largest difference', worst);
  assert.ok(worst < 1e-5, `the two forms differ by ${worst}`);
});

test.run();
