// The fused matmul epilogues (kernels/lib/matmul-store.wgsl) against matmul plus the separate
// elementwise ops they replace, at the x1 model's MLP shapes (4128 rows, width 96, hidden 384):
// device time (timestamp queries) of each form, 15 alternating rounds, median and minimum.
//   node scripts/test-only.mjs scripts/issue11/epilogue-cost.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import * as ops from '../../src/ops/index.ts';
import { scope } from '../../src/tensor.ts';
import { matmulEpilogue } from '../../src/launch/matmul.ts';
import { unary, unaryBackward, binary } from '../../src/launch/elementwise.ts';

test('epilogue cost', async () => {
  const gpu = await testGpu();
  const M = 4128, D = 96, H = 384;
  const r = (n: number) => new Float32Array(n).map(() => Math.random() - 0.5);
  const x = ops.tensor(gpu, r(M * D), [M, D]), w1 = ops.tensor(gpu, r(H * D), [H, D]), b1 = ops.tensor(gpu, r(H), [H]);
  const dp = ops.tensor(gpu, r(M * D), [M, D]), w2 = ops.tensor(gpu, r(D * H), [D, H]), pre = ops.tensor(gpu, r(M * H), [M, H]);
  const w3 = ops.tensor(gpu, r(D * H), [D, H]), res = ops.tensor(gpu, r(M * D), [M, D]), sc = ops.tensor(gpu, r(D), [D]);
  const a = ops.tensor(gpu, r(M * H), [M, H]);
  const cases: [string, () => void][] = [
    ['fc1 plain + gelu', () => { unary('gelu', ops.matmul(x, w1, { transB: true, bias: b1 })); }],
    ['fc1 gelu epilogue', () => { matmulEpilogue(x, w1, { transB: true, bias: b1 }, { op: 'gelu' }); }],
    ['dX plain + gelu backward', () => { unaryBackward('gelu', pre, pre, ops.matmul(dp, w2)); }],
    ['dX geluBackward epilogue', () => { matmulEpilogue(dp, w2, {}, { op: 'geluBackward', pre }); }],
    ['fc2 plain + mul + add', () => { binary('add', res, binary('mul', ops.matmul(a, w3, { transB: true }), sc.view([1, D]))); }],
    ['fc2 residual epilogue', () => { matmulEpilogue(a, w3, { transB: true }, { op: 'residual', residual: res, scale: sc }); }],
  ];
  const t: number[][] = cases.map(() => []);
  for (let k = 0; k < 15; k++) for (let i = 0; i < cases.length; i++) {
    gpu.startProfile();
    scope(cases[i][1]);
    const recs = await gpu.endProfile();
    t[i].push(recs.reduce((s, x) => s + x.ms, 0));
  }
  cases.forEach(([n], i) => { const s = t[i].sort((p, q) => p - q); console.log(`${n.padEnd(28)} median ${s[7].toFixed(2)} min ${s[0].toFixed(2)} ms`); });
  console.log(`device: ${gpu.describe()}`);
});
test.run();
