// The patch embedding forward and weight gradient at the small preset's step shape (8 crops 64x64x128, E 96,
// patch 16x16x4) with and without its 64x64x32 windows, timed in alternating rounds: does
// the windowed token order (the step's) cost the kernel anything?
//   node scripts/test-only.mjs scripts/issue11/patch-window.test.ts
import { test } from 'uvu';
import { testGpu } from '../../test/helpers/gpu.ts';
import { tensor } from '../../src/ops/creation.ts';
import { patchEmbed3d } from '../../src/ops/patch3d.ts';
import { patchEmbedWeightGrad } from '../../src/launch/patch3d.ts';
import { tensorsRunner } from '../../bench/lib/ours.ts';
import { measureInterleaved } from '../../bench/lib/measure.ts';
import { opRunner } from '../../bench/lib/ours.ts';
import { hostRandn } from '../../bench/lib/case.ts';
import { sideOf } from '../../bench/lib/row.ts';

test('patch embedding with and without windows', async () => {
  const gpu = await testGpu();
  const [B, X, Y, Z, E] = [8, 64, 64, 128, 96];
  const x = tensor(gpu, hostRandn(B * X * Y * Z, 1), [B, 1, X, Y, Z], 'x');
  const w = tensor(gpu, hostRandn(E * 1024, 2), [E, 1, 16, 16, 4], 'w');
  const b = tensor(gpu, hostRandn(E, 3), [E], 'b');
  const budget = { warmup: 2, tsSeconds: 2, wallSeconds: 0.3, rounds: 5, minIters: 5, maxIters: 40 };
  const [plain, windowed] = await measureInterleaved(
    [opRunner(gpu, () => patchEmbed3d(x, w, b)), opRunner(gpu, () => patchEmbed3d(x, w, b, { window: [64, 64, 32] }))],
    budget,
  );
  if (plain instanceof Error || windowed instanceof Error) throw plain instanceof Error ? plain : windowed;
  const [p, q] = [sideOf(plain).ms, sideOf(windowed).ms];
  const gf = (ms: number) => ((2 * 4096 * 1024 * E) / ms / 1e6).toFixed(1);
  console.log(`\nforward: no windows ${p.toFixed(2)} ms (${gf(p)} GFLOP/s), windows 64x64x32 ${q.toFixed(2)} ms (${gf(q)} GFLOP/s)`);
  // The weight gradient (dW, dbias) of the same shapes.
  const g = tensor(gpu, hostRandn(4096 * E, 4), [8, 512, E], 'g');
  const wg = (window?: [number, number, number]) => () => {
    const r = patchEmbedWeightGrad(x, w, g, true, window ? { window } : {});
    return [r.dw, r.db];
  };
  const [gp, gw] = await measureInterleaved([tensorsRunner(gpu, wg()), tensorsRunner(gpu, wg([64, 64, 32]))], budget);
  if (gp instanceof Error || gw instanceof Error) throw gp instanceof Error ? gp : gw;
  const [a, c] = [sideOf(gp).ms, sideOf(gw).ms];
  console.log(`weight gradient: no windows ${a.toFixed(2)} ms (${gf(a)} GFLOP/s), windows 64x64x32 ${c.toFixed(2)} ms (${gf(c)} GFLOP/s)\ndevice: ${gpu.describe()}`);
});
test.run();
