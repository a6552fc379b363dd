// Launches of kernels/layernorm.wgsl (no autograd): layer normalisation over the last axis
// with affine parameters, and its input and parameter gradients.
import source from '../../kernels/layernorm.wgsl';
import { ShapeError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkAccumulated, checkFinite, checkInputs, rowChunks } from './util.ts';
import { tunedRowLayout } from './row-layout.ts';

export const layerNormKernel = defineKernel({
  file: 'layernorm.wgsl',
  source,
  // The input is a [rows, n] view, nv = n / W elements of type VT (vec4f with flag V4, W = 4;
  // else f32, W = 1) per row; stats holds [mean, rstd] per row.
  // The parameter gradients sum rows in `chunks` chunks of `chunk` rows. zero: always 0, ORed
  // into a product so that no compiler fuses it with the accumulated gradient's add (ACCX).
  params: { rows: 'u32', n: 'u32', nv: 'u32', eps: 'f32', chunk: 'u32', chunks: 'u32', zero: 'u32' },
  buffers: {
    X: read('VT'), gamma: read('VT'), beta: read('VT'), Y: write('VT'), stats: write(),
    GY: read('VT'), GX: write('VT'), statsIn: read(), GGamma: write(), GBeta: write(),
    PGamma: read(), PBeta: read(),
    // The gradients gathered so far, added in the store (flags ACCX, ACCG, ACCB).
    GXA: read('VT', { optional: true }), GGammaA: read('f32', { optional: true }), GBetaA: read('f32', { optional: true }),
  },
  entries: {
    layernorm: ['X', 'gamma', 'beta', 'Y', 'stats'],
    layernorm_wg: ['X', 'gamma', 'beta', 'Y', 'stats'],
    layernorm_backward_input: ['X', 'gamma', 'GY', 'GX', 'statsIn', 'GXA'],
    layernorm_backward_input_wg: ['X', 'gamma', 'GY', 'GX', 'statsIn', 'GXA'],
    layernorm_backward_params: ['X', 'GY', 'statsIn', 'GGamma', 'GBeta', 'GGammaA', 'GBetaA'],
    layernorm_params_final: ['PGamma', 'PBeta', 'GGamma', 'GBeta', 'GGammaA', 'GBetaA'],
  },
});

export type LayerNormLayout = Exclude<Tuning['layerNorm']['variant'], 'auto'>;

/**
 * The layout of the forward and input-gradient kernels for rows of n values:
 * gpu.tuning.layerNorm.variant, or on 'auto' one invocation per row on CPU adapters (lavapipe:
 * a barrier switches between coroutines there: [4096x1024] forward 5.2-8.9 ms against 20-26, `npm
 * run bench -- --only layernorm`, the 2-thread AVX-512 EPYC) and one
 * workgroup of 64 per row on GPUs for rows of 128 or more, whose per-row reads would be a row
 * apart between neighbouring lanes. The workgroup layout is unmeasured on a GPU. Where
 * autotuning is on, 'auto' follows the measured choice of the shape class once it has one
 * (src/launch/row-layout.ts; the input gradient takes the forward's class).
 */
export function layerNormVariantFor(gpu: Gpu, n: number, rows: number): LayerNormLayout {
  const choice = gpu.tuning.layerNorm.variant;
  if (choice !== 'auto') return choice;
  return tunedRowLayout(gpu, { op: 'layerNorm', rows, n }, !gpu.isLavapipe && n >= 128 ? 'workgroup' : 'row');
}

/** Rows as vec4s where n allows (flag V4; the same bits as the scalar kernel; off with
 * gpu.tuning.layerNorm.vec4 = false), else scalars. */
function rowVariant(n: number, vec4: boolean) {
  const W = vec4 ? 4 : 1;
  return { flags: { V4: vec4 }, consts: { W }, nv: n / W };
}

/**
 * (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; gamma and beta are [n].
 * Returns y (x's shape) and stats [rows, 2] (mean and 1/sqrt(var + eps) per row), which
 * the backward launches take.
 * @throws ShapeError when gamma or beta is not [n]; ValueError when eps is not finite.
 */
export function layerNormForward(x: Tensor, gamma: Tensor, beta: Tensor, eps: number): { y: Tensor; stats: Tensor } {
  const gpu = checkInputs('layerNorm', [x, gamma, beta]);
  checkFinite('layerNorm', 'eps', eps);
  const n = x.shape[x.rank - 1];
  if (gamma.rank !== 1 || gamma.shape[0] !== n || beta.rank !== 1 || beta.shape[0] !== n)
    throw new ShapeError(`layerNorm: gamma ${fmtShape(gamma.shape)} and beta ${fmtShape(beta.shape)} must be [${n}] for input ${fmtShape(x.shape)}`);
  const rows = x.size / n;
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'layerNorm');
  const stats = new Tensor(gpu, [rows, 2], 'f32', undefined, 'layerNorm.stats');
  const { flags, consts, nv } = rowVariant(n, gpu.tuning.layerNorm.vec4 && n % 4 === 0);
  const wg = layerNormVariantFor(gpu, n, rows) === 'workgroup';
  gpu.launch(wg ? layerNormKernel.layernorm_wg : layerNormKernel.layernorm, {
    flags,
    consts,
    params: { rows, n, nv, eps, chunk: 0, chunks: 0, zero: 0 },
    buffers: { X: x.buffer, gamma: gamma.buffer, beta: beta.buffer, Y: y.buffer, stats: stats.buffer },
    workgroups: wg ? grid1d(rows, 1) : grid1d(rows, 64),
    label: `layerNorm ${fmtShape(x.shape)}`,
  });
  return { y, stats };
}

/** The input gradient of layerNorm from x, gamma, the forward's stats and the output gradient
 * gy; `acc` (x's shape), where given, is added in the store (the same bits as a separate add).
 * @throws ShapeError when acc does not have x's shape. */
export function layerNormBackwardInput(x: Tensor, gamma: Tensor, stats: Tensor, gy: Tensor, acc: Tensor | null = null): Tensor {
  const gpu = checkInputs('layerNorm.backward', [x, gamma, stats, gy]);
  checkAccumulated('layerNorm.backward', acc, x.shape, 'x');
  const n = x.shape[x.rank - 1];
  const rows = x.size / n;
  const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.layerNorm.x');
  const { flags, consts, nv } = rowVariant(n, gpu.tuning.layerNorm.vec4 && n % 4 === 0);
  const wg = layerNormVariantFor(gpu, n, rows) === 'workgroup';
  gpu.launch(wg ? layerNormKernel.layernorm_backward_input_wg : layerNormKernel.layernorm_backward_input, {
    flags: { ...flags, ACCX: !!acc },
    consts,
    params: { rows, n, nv, eps: 0, chunk: 0, chunks: 0, zero: 0 },
    buffers: { X: x.buffer, gamma: gamma.buffer, GY: gy.buffer, GX: gx.buffer, statsIn: stats.buffer, GXA: acc?.buffer ?? null },
    workgroups: wg ? grid1d(rows, 1) : grid1d(rows, 64),
    label: `layerNorm ${fmtShape(x.shape)}.backward`,
  });
  return gx;
}

/** The gradients of layerNorm's gamma and beta ([n] each: sums over rows). On a GPU the rows
 * are summed in rowChunks(rows, n) chunks (partial sums, then their sum in chunk order), as
 * rmsNorm's weight gradient; on a CPU adapter in one pass (gpu.tuning.layerNorm.paramChunks
 * sets the count). `acc.gamma` and `acc.beta` ([n]), where given, are added in the final store.
 * @throws ValueError when gpu.tuning.layerNorm.paramChunks is not a positive integer or null;
 * ShapeError when an accumulated gradient is not [n]. */
export function layerNormBackwardParams(x: Tensor, stats: Tensor, gy: Tensor, acc: { gamma?: Tensor | null; beta?: Tensor | null } = {}): { gGamma: Tensor; gBeta: Tensor } {
  const gpu = checkInputs('layerNorm.backward', [x, stats, gy]);
  const n = x.shape[x.rank - 1];
  checkAccumulated('layerNorm.backward', acc.gamma, [n], 'gamma');
  checkAccumulated('layerNorm.backward', acc.beta, [n], 'beta');
  const rows = x.size / n;
  const gGamma = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.gamma');
  const gBeta = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.beta');
  const { flags, consts } = rowVariant(n, false);
  const forced = gpu.tuning.layerNorm.paramChunks;
  if (forced !== null && !(Number.isInteger(forced) && forced >= 1))
    throw new ValueError(`layerNorm: gpu.tuning.layerNorm.paramChunks = ${forced} is not a positive integer or null`);
  const chunks = Math.min(rows, forced ?? (gpu.isLavapipe ? 1 : rowChunks(rows, n)));
  const chunk = Math.ceil(rows / chunks);
  const params = { rows, n, nv: n, eps: 0, chunk, chunks, zero: 0 };
  const label = `layerNorm ${fmtShape(x.shape)}.backward params`;
  const parts = chunks > 1 ? [gpu.acquire(chunks * n * 4, `${label} partials`), gpu.acquire(chunks * n * 4, `${label} partials`)] : null;
  // The accumulated gradients go into whichever pass writes the final sums.
  const sofar = { GGammaA: acc.gamma?.buffer ?? null, GBetaA: acc.beta?.buffer ?? null };
  const accFlags = { ACCG: !!sofar.GGammaA, ACCB: !!sofar.GBetaA };
  gpu.launch(layerNormKernel.layernorm_backward_params, {
    flags: parts ? flags : { ...flags, ...accFlags },
    consts,
    params,
    buffers: { X: x.buffer, GY: gy.buffer, statsIn: stats.buffer, GGamma: parts ? parts[0] : gGamma.buffer, GBeta: parts ? parts[1] : gBeta.buffer, ...(parts ? { GGammaA: null, GBetaA: null } : sofar) },
    workgroups: grid1d(chunks * n, 64),
    label: parts ? `${label} (pass 1)` : label,
  });
  if (parts) {
    gpu.launch(layerNormKernel.layernorm_params_final, {
      flags: { ...flags, ...accFlags },
      consts,
      params,
      buffers: { PGamma: parts[0], PBeta: parts[1], GGamma: gGamma.buffer, GBeta: gBeta.buffer, ...sofar },
      workgroups: grid1d(n, 64),
      label: `${label} (pass 2)`,
    });
    parts.forEach((b) => gpu.release(b));
  }
  return { gGamma, gBeta };
}
