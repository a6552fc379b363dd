// Runs in Chromium (test/browser/kernels.test.ts drives it): the same kernels and runtime
// as in Node, on the browser's navigator.gpu. Returns raw results; the Node side compares
// them with the float64 references. runChecks: the default kernels, a gradient and a short
// training run; runVariantChecks: every matmul, attention, softmax, reduce and layout variant
// this adapter runs (issue 11: each variant is tested in Chromium even where it is slow there).
import { Gpu } from '../../src/gpu/runtime.ts';
import * as ops from '../../src/ops/index.ts';
import { AdamW } from '../../src/optim/index.ts';
import { MLP } from '../../src/nn/index.ts';
import { backward } from '../../src/autograd.ts';
import { scope, scopeAsync } from '../../src/tensor.ts';
import { matmulVariantFor } from '../../src/ops/matmul.ts';
import { MATMUL_DEFAULT_TILE, matmulTileProblem } from '../../src/launch/matmul.ts';
import { attentionVariants } from '../../src/launch/attention.ts';
import { laneGroup } from '../../src/gpu/tuning.ts';

export interface BrowserChecks {
  device: string;
  matmulVariant: string;
  matmul: { M: number; K: number; N: number; a: number[]; b: number[]; c: number[] }[];
  softmax: { x: number[]; y: number[] };
  layerNorm: { x: number[]; y: number[] };
  grad: { x: number[]; g: number[] };
  lossFirst: number;
  lossLast: number;
}

/** One matmul of a variant: inputs as stored (A [K, M] with transA, B [N, K] with transB), output C [M, N]. */
export interface VariantMatmul {
  variant: string;
  kind: 'subgroup' | 'tiled' | 'tiled-wg' | 'f16';
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  a: number[];
  b: number[];
  bias: number[] | null;
  c: number[];
  /** The kernel entry points its dispatches ran (from the profiler; null without timestamp queries). */
  kernels: string[] | null;
}

/** One attention of a variant, [B, H, L, D] operands, key mask [B, Lk], and its gradients for the output gradient g. */
export interface VariantAttention {
  variant: string;
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  D: number;
  q: number[];
  k: number[];
  v: number[];
  mask: number[];
  g: number[];
  out: number[];
  dq: number[];
  dk: number[];
  dv: number[];
}

export interface VariantChecks {
  device: string;
  matmul: VariantMatmul[];
  attention: VariantAttention[];
  /** mlpGelu with LayerScale and residual: output and gradients (x, fc1 weight, fc2 weight,
   * scale) fused (GELU gradient fused or not) and from separate ops, to compare bit for bit. */
  epilogues: { name: string; values: number[][] }[];
  /** Row ops in each layout (softmax and reduce: one invocation or one workgroup per row) on
   * x [rows, n]: softmax, logSoftmax, the gradient of sum(softmax(x) * g) in x, sum and max over
   * the last axis; layerNorm (beta 0) and the gradient of sum(layerNorm(x) * g) in x. */
  rows: { variant: string; rows: number; n: number; x: number[]; g: number[]; softmax: number[]; logSoftmax: number[]; dx: number[]; sum: number[]; max: number[]; gamma: number[]; layerNorm: number[]; layerNormDx: number[] }[];
  /** Each layout of the strided copy: x [3, 33, 40] permuted [0, 2, 1] (a transpose), and
   * e [40, 1] expanded to [2, 40, 3]. */
  layouts: { variant: string; x: number[]; permuted: number[]; e: number[]; expanded: number[] }[];
  /** Variants this adapter cannot run, with the reason. */
  skipped: string[];
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

async function runChecks(): Promise<BrowserChecks> {
  const gpu = await Gpu.create();
  try {
    const matmul = [];
    for (const [M, K, N] of [[5, 7, 3], [33, 64, 40], [64, 36, 64]]) {
      const a = seeded(M * K, M), b = seeded(K * N, N);
      const c = await ops.matmul(ops.tensor(gpu, a, [M, K]), ops.tensor(gpu, b, [K, N])).floats();
      matmul.push({ M, K, N, a: [...a], b: [...b], c: [...c] });
    }
    const sx = seeded(3 * 10, 3);
    const sy = await ops.softmax(ops.tensor(gpu, sx, [3, 10])).floats();
    const lx = seeded(4 * 8, 4);
    const ly = await ops.layerNorm(ops.tensor(gpu, lx, [4, 8]), ops.ones(gpu, [8]), ops.zeros(gpu, [8])).floats();
    // d/dx sum(tanh(x) * x) = tanh(x) + x (1 - tanh(x)^2)
    const gx = seeded(9, 9);
    const xt = ops.parameter(gpu, gx, [9], 'x');
    backward(ops.sum(ops.mul(ops.tanh(xt), xt)));
    const g = await xt.grad!.floats();
    // A tiny training run: the loss must fall.
    const xs = seeded(64 * 2, 11).map((v) => 2 * v);
    const ys = Float32Array.from({ length: 64 }, (_, i) => Math.sin(3 * xs[2 * i]) + xs[2 * i] * xs[2 * i + 1]);
    const X = ops.tensor(gpu, xs, [64, 2]).keep();
    const Y = ops.tensor(gpu, ys, [64, 1]).keep();
    const model = new MLP(gpu, [2, 32, 1], 'tanh', 1);
    const opt = new AdamW(model.parameters(), { lr: 0.02 });
    let first = 0, last = 0;
    for (let i = 0; i < 150; i++) {
      const loss = scope(() => {
        const l = ops.mean(ops.square(ops.sub(model.forward(X), Y)));
        backward(l);
        opt.step();
        opt.zeroGrad();
        return l;
      });
      if (i === 0) first = await loss.item();
      if (i === 149) last = await loss.item();
      loss.dispose();
    }
    return {
      device: gpu.describe(),
      matmulVariant: matmulVariantFor(gpu),
      matmul,
      softmax: { x: [...sx], y: [...sy] },
      layerNorm: { x: [...lx], y: [...ly] },
      grad: { x: [...gx], g: [...g] },
      lossFirst: first,
      lossLast: last,
    };
  } finally {
    gpu.destroy();
  }
}

/** The matmul variants this adapter runs (as test/ops/matmul.test.ts picks them in Node). */
function matmulVariantsHere(gpu: Gpu, skipped: string[]): { variant: string; kind: VariantMatmul['kind']; uniformB?: boolean }[] {
  const out: { variant: string; kind: VariantMatmul['kind']; uniformB?: boolean }[] = [];
  if (laneGroup(gpu.subgroupMinSize) > 0) out.push({ variant: 'subgroup', kind: 'subgroup', uniformB: false }, { variant: 'subgroup (uniform B)', kind: 'subgroup', uniformB: true });
  else skipped.push('matmul subgroup: no subgroups of 4 or more lanes');
  out.push({ variant: 'tiled', kind: 'tiled' });
  const wg = matmulTileProblem(gpu, MATMUL_DEFAULT_TILE, false);
  if (wg) skipped.push(`matmul tiled-wg: ${wg}`);
  else out.push({ variant: 'tiled-wg', kind: 'tiled-wg' });
  const f16 = gpu.features.has('shader-f16') ? matmulTileProblem(gpu, MATMUL_DEFAULT_TILE, true) : 'no shader-f16';
  if (f16) skipped.push(`matmul f16: ${f16}`);
  else out.push({ variant: 'f16', kind: 'f16' });
  return out;
}

async function runVariantChecks(): Promise<VariantChecks> {
  const gpu = await Gpu.create();
  const skipped: string[] = [];
  try {
    const matmul: VariantMatmul[] = [];
    // Sizes off every tile and vec4 width; each transpose; bias on two of them.
    const shapes: [number, number, number, boolean, boolean, boolean][] = [[37, 20, 44, false, false, true], [16, 33, 9, true, false, false], [70, 36, 66, false, true, true]];
    for (const v of matmulVariantsHere(gpu, skipped)) {
      gpu.tuning.matmul.variant = v.kind;
      gpu.tuning.matmul.uniformB = v.uniformB ?? null;
      for (const [M, K, N, transA, transB, withBias] of shapes) {
        if (v.uniformB && !transB) continue; // the uniform-B path reads x W^T's W
        const a = seeded(M * K, M + K), b = seeded(K * N, N + 3 * K), bias = withBias ? seeded(N, 5 * N) : null;
        const at = ops.tensor(gpu, a, transA ? [K, M] : [M, K]), bt = ops.tensor(gpu, b, transB ? [N, K] : [K, N]), biast = bias ? ops.tensor(gpu, bias, [N]) : undefined;
        if (gpu.canProfile) gpu.startProfile();
        const c = ops.matmul(at, bt, { transA, transB, bias: biast });
        const kernels = gpu.canProfile ? [...new Set((await gpu.endProfile()).map((r) => r.kernel))] : null;
        matmul.push({ variant: v.variant, kind: v.kind, M, K, N, transA, transB, a: [...a], b: [...b], bias: bias && [...bias], c: [...(await c.floats())], kernels });
        for (const t of [at, bt, biast]) t?.dispose();
        c.dispose();
      }
    }
    gpu.tuning.matmul.variant = 'auto';
    gpu.tuning.matmul.uniformB = null;
    const attention: VariantAttention[] = [];
    const [B, H, Lq, Lk, D] = [2, 2, 9, 13, 8];
    for (const variant of attentionVariants(gpu)) {
      gpu.tuning.attention.variant = variant;
      const q = seeded(B * H * Lq * D, 21).map((x) => 3 * x), k = seeded(B * H * Lk * D, 22).map((x) => 3 * x), v = seeded(B * H * Lk * D, 23);
      const mask = Array.from({ length: B * Lk }, (_, i) => (i % 4 === 2 ? 0 : 1));
      const g = seeded(B * H * Lq * D, 24);
      const qt = ops.parameter(gpu, q, [B, H, Lq, D], 'q'), kt = ops.parameter(gpu, k, [B, H, Lk, D], 'k'), vt = ops.parameter(gpu, v, [B, H, Lk, D], 'v');
      const out = ops.attention(qt, kt, vt, { mask: ops.tensor(gpu, mask, [B, Lk]) });
      backward(out, ops.tensor(gpu, g, out.shape));
      attention.push({
        variant, B, H, Lq, Lk, D, q: [...q], k: [...k], v: [...v], mask, g: [...g],
        out: [...(await out.floats())], dq: [...(await qt.grad!.floats())], dk: [...(await kt.grad!.floats())], dv: [...(await vt.grad!.floats())],
      });
      for (const t of [qt, kt, vt, out]) t.dispose();
    }
    gpu.tuning.attention.variant = 'auto';
    if (!attentionVariants(gpu).includes('subgroup')) skipped.push('attention subgroup: no subgroups of 4 or more lanes');
    // Not exact, so not in attentionVariants; its float64 check over rounded keys and values is in Node.
    skipped.push(`attention tiled-f16: ${gpu.features.has('shader-f16') ? 'checked in Node only (test/ops/attention.test.ts)' : 'no shader-f16'}`);
    const epilogues: VariantChecks['epilogues'] = [];
    for (const [name, fuse, geluBackward] of [['fused', true, null], ['fused, GELU gradient fused', true, true], ['separate ops', false, null]] as const) {
      gpu.tuning.fuseEpilogues = fuse;
      gpu.tuning.fuseGeluBackward = geluBackward;
      const [D, Hd] = [8, 12];
      const x = ops.parameter(gpu, seeded(2 * 5 * D, 51), [2, 5, D], 'x'), w1 = ops.parameter(gpu, seeded(Hd * D, 52), [Hd, D], 'w1');
      const w2 = ops.parameter(gpu, seeded(D * Hd, 53), [D, Hd], 'w2'), s2 = ops.parameter(gpu, seeded(D, 54), [D], 's2');
      const values = await scopeAsync(async () => {
        const o = ops.mlpGelu(x, { weight: w1, bias: ops.tensor(gpu, seeded(Hd, 55), [Hd]) }, { weight: w2 }, { residual: x, scale: s2 });
        backward(ops.sum(ops.mul(o, ops.tensor(gpu, seeded(2 * 5 * D, 56), [2, 5, D]))));
        return [[...(await o.floats())], ...(await Promise.all([x, w1, w2, s2].map(async (t) => [...(await t.grad!.floats())])))];
      });
      epilogues.push({ name, values });
      for (const t of [x, w1, w2, s2]) t.dispose();
    }
    gpu.tuning.fuseEpilogues = true;
    gpu.tuning.fuseGeluBackward = null;
    const rows: VariantChecks['rows'] = [];
    for (const variant of ['row', 'workgroup'] as const) {
      gpu.tuning.softmax.variant = variant;
      gpu.tuning.reduce.variant = variant;
      gpu.tuning.layerNorm.variant = variant;
      const [R, n] = [5, 301];
      const x = seeded(R * n, 61).map((v) => 4 * v), g = seeded(R * n, 62), gamma = seeded(n, 63);
      const values = await scopeAsync(async () => {
        const xt = ops.parameter(gpu, x, [R, n], 'x');
        const gt = ops.tensor(gpu, g, [R, n]);
        const y = ops.softmax(xt);
        backward(ops.sum(ops.mul(y, gt)));
        const xl = ops.parameter(gpu, x, [R, n], 'x');
        const ln = ops.layerNorm(xl, ops.tensor(gpu, gamma, [n]), ops.tensor(gpu, new Float32Array(n), [n]));
        backward(ops.sum(ops.mul(ln, gt)));
        const out = [y, ops.logSoftmax(xt), xt.grad!, ops.sum(xt, 1), ops.max(xt, 1), ln, xl.grad!];
        const host = await Promise.all(out.map(async (t) => [...(await t.floats())]));
        xt.dispose();
        xl.dispose();
        return host;
      });
      const [sm, lsm, dx, sum, max, ln, lnDx] = values;
      rows.push({ variant, rows: R, n, x: [...x], g: [...g], softmax: sm, logSoftmax: lsm, dx, sum, max, gamma: [...gamma], layerNorm: ln, layerNormDx: lnDx });
    }
    gpu.tuning.softmax.variant = 'auto';
    gpu.tuning.reduce.variant = 'auto';
    gpu.tuning.layerNorm.variant = 'auto';
    const layouts: VariantChecks['layouts'] = [];
    for (const variant of ['run', 'element', 'tiled'] as const) {
      gpu.tuning.layout.variant = variant;
      const x = seeded(3 * 33 * 40, 71), e = seeded(40, 72);
      const [permuted, expanded] = await scopeAsync(async () =>
        Promise.all([ops.permute(ops.tensor(gpu, x, [3, 33, 40]), [0, 2, 1]), ops.expand(ops.tensor(gpu, e, [40, 1]), [2, 40, 3])].map(async (t) => [...(await t.floats())])),
      );
      layouts.push({ variant, x: [...x], permuted, e: [...e], expanded });
    }
    gpu.tuning.layout.variant = 'auto';
    return { device: gpu.describe(), matmul, attention, epilogues, rows, layouts, skipped };
  } finally {
    gpu.destroy();
  }
}

(globalThis as unknown as { runChecks: typeof runChecks }).runChecks = runChecks;
(globalThis as unknown as { runVariantChecks: typeof runVariantChecks }).runVariantChecks = runVariantChecks;
document.title = 'ready';
