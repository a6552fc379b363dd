// 3D patch embedding (kernels/patch3d.wgsl) against a float64 Conv3d written from its
// definition (test/reference/cpu.ts conv3dStrided, patchEmbed3d): one and two channels,
// patches with three different sides (depth a multiple of 4: the vec4 path; depth 3: the
// masked scalar path), widths E and token counts that are not multiples of the 32 x 32
// tiles, E = 1, a single patch, windows on a 2x1x3 grid, B = 2; every lane grouping the
// device allows (8-lane broadcasts, 4-lane shuffles, no subgroups). Gradients of the
// weight, the bias and the volume by central finite differences.
//
// Tolerances: forward F32-like, rtol 1e-5 + 2e-6 of the largest |output| for K <= 1024-term
// f32 sums of O(1) products (worst-case roundoff ~ K * 6e-8 relative to the sum of |terms|,
// typically sqrt(K) * 6e-8; an indexing error is O(1)). Gradients: GRAD (1e-4 relative,
// 1e-5 of the largest), the f64 finite difference being exact to ~1e-9 here.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { resetTuning, testGpu } from '../helpers/gpu.ts';
import { assertClose, checkGradients, randomValues } from '../helpers/check.ts';
import * as ref from '../reference/cpu.ts';
import * as ops from '../../src/ops/index.ts';
import { backward } from '../../src/autograd.ts';
import type { Gpu } from '../../src/gpu/runtime.ts';

const t = suite('patch3d');
t.after.each(resetTuning);
const TOL = { rtol: 1e-5, atol: 2e-6 };
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

/** Lane groupings this device runs: 8 (broadcast), 4 (shuffle), 1 (no subgroups). */
function groups(gpu: Gpu): (1 | 4 | 8)[] {
  return ([8, 4, 1] as const).filter((g) => g === 1 || gpu.subgroupMinSize >= g);
}
/** The device's own grouping runs every case; the others (each a fresh compile) a few. */
const forOtherGroups = <T>(all: T[], pick: number[]): T[] => pick.map((i) => all[i]);

type Case = { x: number[]; w: number[]; window?: number[]; bias?: boolean; what: string };
const cases: Case[] = [
  { what: 'C=1, 3x2x4 patches, E=5', x: [1, 1, 6, 4, 8], w: [5, 1, 3, 2, 4] },
  { what: 'B=2, C=2, windows 2x1x3, E=36', x: [2, 2, 12, 4, 24], w: [36, 2, 3, 2, 4], window: [6, 4, 8] },
  { what: 'E=1, a single patch, no bias', x: [1, 1, 3, 2, 4], w: [1, 1, 3, 2, 4], bias: false },
  { what: '160 rows (not whole tiles), E=40, depth 8', x: [2, 1, 8, 8, 40], w: [40, 1, 2, 2, 8] },
  { what: 'K=1024 (16x16x4), 2 windows, E=33', x: [1, 1, 32, 32, 16], w: [33, 1, 16, 16, 4], window: [32, 16, 16] },
  { what: 'depth 3 (scalar path), C=2, windows 2x1x3, E=7', x: [2, 2, 8, 3, 18], w: [7, 2, 2, 3, 3], window: [4, 3, 6] },
];

t('forward against a float64 Conv3d, every lane grouping', async () => {
  const gpu = await testGpu();
  try {
    for (const [i, g] of groups(gpu).entries()) {
      gpu.tuning.patchEmbed.group = g;
      for (const c of i === 0 ? cases : forOtherGroups(cases, [1])) {
        const x = f32(randomValues(ref.size(c.x), 1)), w = f32(randomValues(ref.size(c.w), 2)), b = f32(randomValues(c.w[0], 3));
        const useBias = c.bias !== false;
        const xt = ops.tensor(gpu, Float32Array.from(x), c.x), wt = ops.tensor(gpu, Float32Array.from(w), c.w);
        const bt = useBias ? ops.tensor(gpu, Float32Array.from(b), [c.w[0]]) : undefined;
        const y = ops.patchEmbed3d(xt, wt, bt, c.window ? { window: c.window as [number, number, number] } : {});
        const expect = ref.patchEmbed3d(x, c.x, w, c.w, useBias ? b : undefined, c.window);
        const nWin = c.window ? c.x.slice(2).reduce((a, s, i) => a * (s / c.window![i]), 1) : 1;
        assert.equal([...y.shape], [c.x[0] * nWin, expect.length / (c.x[0] * nWin * c.w[0]), c.w[0]], `${c.what}: shape`);
        assertClose(await y.floats(), expect, TOL, `group ${g}: ${c.what}`);
        for (const z of [xt, wt, bt, y]) z?.dispose();
      }
    }
  } finally {
    gpu.tuning.patchEmbed.group = null;
  }
});

t('without windows the tokens are Conv3d (B, E, nH, nW, nD) channels-last', async () => {
  // The two references agree by construction only if the permutation is right: check one
  // against the other directly on a tiny case, then the GPU against conv3dStrided.
  const gpu = await testGpu();
  const xs = [1, 1, 4, 2, 8], ws = [3, 1, 2, 1, 4];
  const x = f32(randomValues(ref.size(xs), 7)), w = f32(randomValues(ref.size(ws), 8));
  const conv = ref.conv3dStrided(x, xs, w, ws); // (1, 3, 2, 2, 2)
  const y = await ops.patchEmbed3d(ops.tensor(gpu, Float32Array.from(x), xs), ops.tensor(gpu, Float32Array.from(w), ws), undefined).floats();
  const tokens = ref.permute(conv, [1, 3, 8], [0, 2, 1]); // (E, T) -> (T, E)
  assertClose(y, tokens, TOL, 'tokens = Conv3d output permuted');
});

const gradCases: Case[] = [
  { what: 'vec4 path, B=2, windows 2x1x3 of 2x2x2 tokens, E=4', x: [2, 1, 12, 4, 24], w: [4, 1, 3, 2, 4], window: [6, 4, 8] },
  { what: 'scalar path (depth 3), C=2', x: [1, 2, 4, 2, 6], w: [3, 2, 2, 1, 3] },
];

t('gradients of weight, bias and volume by finite differences', async () => {
  const gpu = await testGpu();
  try {
    for (const [i, g] of groups(gpu).entries()) {
      gpu.tuning.patchEmbed.group = g;
      for (const c of i === 0 ? gradCases : forOtherGroups(gradCases, [0])) {
        const opts = c.window ? { window: c.window as [number, number, number] } : {};
        await checkGradients({
          what: `patchEmbed3d group ${g}: ${c.what}`,
          gpu,
          inputs: [{ data: randomValues(ref.size(c.x), 4), shape: c.x }, { data: randomValues(ref.size(c.w), 5), shape: c.w }, { data: randomValues(c.w[0], 6), shape: [c.w[0]] }],
          op: (x, w, b) => ops.patchEmbed3d(x, w, b, opts),
          reference: (x, w, b) => ref.patchEmbed3d(x, c.x, w, c.w, b, c.window),
        });
      }
    }
  } finally {
    gpu.tuning.patchEmbed.group = null;
  }
});

t('weight gradient alone (volume as data, no bias), 8x8x4 patches, deterministic', async () => {
  // 2 volumes x 2x1x2 windows of 2x2x6 tokens: 192 rows, 6 depth tokens (not a multiple of 4).
  const gpu = await testGpu();
  const xs = [2, 1, 32, 16, 48], ws = [37, 1, 8, 8, 4], window = [16, 16, 24];
  const x = f32(randomValues(ref.size(xs), 11)), w = f32(randomValues(ref.size(ws), 12));
  const T = 24, rows = 2 * 4 * T;
  const G = f32(randomValues(rows * ws[0], 13));
  const run = async () => {
    const xt = ops.tensor(gpu, Float32Array.from(x), xs);
    const wt = ops.tensor(gpu, Float32Array.from(w), ws);
    wt.requiresGrad = true;
    const y = ops.patchEmbed3d(xt, wt, undefined, { window: [16, 16, 24] });
    assert.equal([...y.shape], [8, T, 37]);
    backward(y, ops.tensor(gpu, Float32Array.from(G), y.shape));
    const out = await wt.grad!.floats();
    for (const z of [xt, wt, y]) z.dispose();
    return out;
  };
  const a = await run();
  // dW[e, k] = sum over rows of G[row, e] A[row, k]: A from the reference with a one-hot weight is
  // slow; instead the adjoint identity <dW, V> = <G, patchEmbed(x; V)> for a random V.
  const V = f32(randomValues(ref.size(ws), 14));
  const yv = ref.patchEmbed3d(x, xs, V, ws, undefined, window);
  let lhs = 0, rhs = 0, scale = 0;
  for (let i = 0; i < a.length; i++) lhs += a[i] * V[i];
  for (let i = 0; i < G.length; i++) (rhs += G[i] * yv[i]), (scale += Math.abs(G[i] * yv[i]));
  assert.ok(Math.abs(lhs - rhs) <= 1e-5 * scale, `<dW, V> ${lhs} vs <G, y(V)> ${rhs}`);
  const b = await run();
  assert.ok(a.every((v, i) => Object.is(v, b[i])), 'two runs give bitwise equal weight gradients');
});

t('shape errors name the op and the shapes', async () => {
  const gpu = await testGpu();
  const z = (s: number[]) => ops.zeros(gpu, s);
  const w = z([4, 1, 2, 2, 4]);
  assert.throws(() => ops.patchEmbed3d(z([1, 4, 4, 8]), w, undefined), /patchEmbed3d: x \[1x4x4x8\].*must be a volume/);
  assert.throws(() => ops.patchEmbed3d(z([1, 1, 4, 4, 8]), z([4, 16]), undefined), /patchEmbed3d: .*weight \[4x16\].*Conv3d weight/);
  assert.throws(() => ops.patchEmbed3d(z([1, 2, 4, 4, 8]), w, undefined), /weight has 1 input channel\(s\), x has 2/);
  assert.throws(() => ops.patchEmbed3d(z([1, 1, 4, 4, 8]), w, z([5])), /bias \[5\].*must be \[4\]/);
  assert.throws(() => ops.patchEmbed3d(z([1, 1, 5, 4, 8]), w, undefined), /x \[1x1x5x4x8\].*volume 5x4x8 is not a whole number of 2x2x4 patches/);
  assert.throws(() => ops.patchEmbed3d(z([1, 1, 4, 4, 8]), w, undefined, { window: [2, 2, 6] }), /window 2x2x6 is not a whole number of 2x2x4 patches/);
  assert.throws(() => ops.patchEmbed3d(z([1, 1, 4, 4, 12]), w, undefined, { window: [2, 2, 8] }), /volume 4x4x12 is not a whole number of 2x2x8 windows/);
});

t.run();
