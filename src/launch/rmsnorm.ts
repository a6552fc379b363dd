// Launches of kernels/rmsnorm.wgsl (no autograd): RMS normalisation over the last axis in
// three layouts, its input gradient and its weight gradient. The layout comes from
// gpu.tuning.rmsNorm (src/gpu/tuning.ts) or, on 'auto', from the device and the row length.
import source from '../../kernels/rmsnorm.wgsl';
import { laneGroup } from '../gpu/tuning.ts';
import { ShapeError, GpuError, ValueError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import type { Tuning } from '../gpu/tuning.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkAccumulated, checkFinite, checkInputs, rowChunks } from './util.ts';

export const rmsNormKernel = defineKernel({
  file: 'rmsnorm.wgsl',
  source,
  // A [rows, n] view, nv = n / 4 with VEC4 (V = vec4f), else n; stats holds [r', c] per row;
  // the weight gradient sums rows in `chunks` chunks of `chunk` rows.
  // epsUp / epsDown: eps c^2 for the rescaled rows (c = 2^100, 2^-100), rounded once on the
  // host (see rstd_scaled in the kernel). zero: always 0, ORed into a product so that no
  // compiler fuses it with the accumulated gradient's add (ACCX; see gx_store).
  params: { rows: 'u32', n: 'u32', nv: 'u32', eps: 'f32', epsUp: 'f32', epsDown: 'f32', chunk: 'u32', chunks: 'u32', zero: 'u32' },
  buffers: {
    X: read('V'), W: read('V'), Y: write('V'), stats: write(),
    GY: read('V'), GX: write('V'), statsIn: read(), GW: write('V'), partials: read('V'),
    // The gradients gathered so far, added in the store (flags ACCX, ACCW).
    GXA: read('V', { optional: true }), GWA: read('V', { optional: true }),
  },
  entries: {
    rmsnorm_row: ['X', 'W', 'Y', 'stats'],
    rmsnorm_wg: ['X', 'W', 'Y', 'stats'],
    rmsnorm_sg: ['X', 'W', 'Y', 'stats'],
    rmsnorm_backward_row: ['X', 'W', 'GY', 'GX', 'statsIn', 'GXA'],
    rmsnorm_backward_wg: ['X', 'W', 'GY', 'GX', 'statsIn', 'GXA'],
    rmsnorm_backward_sg: ['X', 'W', 'GY', 'GX', 'statsIn', 'GXA'],
    rmsnorm_backward_row_gw: ['X', 'W', 'GY', 'GX', 'statsIn', 'GW', 'GXA'],
    rmsnorm_wgrad_partial: ['X', 'GY', 'statsIn', 'GW', 'GWA'],
    rmsnorm_wgrad_final: ['GW', 'partials', 'GWA'],
  },
});

/**
 * Layouts of the forward and input-gradient kernels: 'row' one invocation per row;
 * 'workgroup' one workgroup of 64 per row; 'subgroup' 8 (or 4) subgroup lanes per row.
 * gpu.tuning.rmsNorm.variant forces one ('auto': rmsNormVariantFor picks).
 */
export type RmsNormVariant = Tuning['rmsNorm']['variant'];
export type RmsNormLayout = Exclude<RmsNormVariant, 'auto'>;

/**
 * The layout used for rows of n values. On lavapipe (every invocation one SIMD lane; a
 * barrier switches between coroutines) the barrier-free per-row loop measured fastest or
 * level at every shape tried ([4096x1024] forward: row 12.1 ms, subgroup 11.3 ms, workgroup
 * 38.9 ms, layerNorm 29.1 ms; [32768x8]: row 1.0 ms, subgroup 9.9 ms). On a GPU (not measured
 * here; the usual choice) strided per-row reads do not coalesce: a workgroup per long row,
 * else 8 subgroup lanes per row where subgroups exist.
 * @throws GpuError when gpu.tuning forces 'subgroup' on a device without subgroups of 4+ lanes.
 */
export function rmsNormVariantFor(gpu: Gpu, n: number): RmsNormLayout {
  const choice = gpu.tuning.rmsNorm.variant;
  if (choice === 'subgroup' && !groupFor(gpu)) throw new GpuError(`rmsNorm: the subgroup layout needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  if (choice !== 'auto') return choice;
  if (gpu.isLavapipe) return 'row';
  if (n >= 512) return 'workgroup';
  return n >= 32 && groupFor(gpu) ? 'subgroup' : 'row';
}

/** Lanes per row of the subgroup layout: 8 where subgroups have at least 8 lanes, else 4 (0: none). */
function groupFor(gpu: Gpu): number {
  return laneGroup(gpu.subgroupMinSize);
}

/** The entry points' suffix, the subgroup lanes per row and the workgroups of a layout, for `rows` rows. */
function layout(gpu: Gpu, variant: RmsNormLayout, rows: number): { suffix: 'row' | 'wg' | 'sg'; group: number; workgroups: [number, number, number] } {
  if (variant === 'workgroup') return { suffix: 'wg', group: 0, workgroups: grid1d(rows, 1) };
  if (variant === 'subgroup') {
    const group = groupFor(gpu);
    return { suffix: 'sg', group, workgroups: grid1d(rows * group, 64) };
  }
  return { suffix: 'row', group: 0, workgroups: grid1d(rows, 64) };
}

/** The [rows, n] view of x and the vector width. */
function dims(x: Tensor): { rows: number; n: number; nv: number; vec4: boolean } {
  const n = x.shape[x.rank - 1];
  const vec4 = n % 4 === 0;
  return { rows: x.size / n, n, nv: vec4 ? n / 4 : n, vec4 };
}

/** Flags and overrides of a launch: VEC4, and SUBGROUPS with G lanes per row when group > 0. */
const variantArgs = (vec4: boolean, group = 0, more: Record<string, boolean> = {}) => ({ flags: { VEC4: vec4, SUBGROUPS: group > 0, ...more }, overrides: group ? { G: group } : undefined });

/**
 * RMSNorm over the last axis (see rmsNorm in src/ops/rmsnorm.ts): x [..., C], weight [C].
 * Returns y (x's shape), stats [rows, 2] (per row the scaled 1/rms and the power-of-two
 * scale) and the layout used, which the backward launch takes.
 * @throws ShapeError when weight is not [C]; ValueError when eps is negative or not finite.
 */
export function rmsNormForward(x: Tensor, weight: Tensor, eps: number): { y: Tensor; stats: Tensor; variant: RmsNormLayout } {
  const gpu = checkInputs('rmsNorm', [x, weight]);
  checkFinite('rmsNorm', 'eps', eps);
  if (eps < 0) throw new ValueError(`rmsNorm: eps must be >= 0, got ${eps}`);
  if (x.rank < 1) throw new ShapeError('rmsNorm: input must have at least one dimension');
  const { rows, n, nv, vec4 } = dims(x);
  if (weight.rank !== 1 || weight.shape[0] !== n)
    throw new ShapeError(`rmsNorm: weight ${fmtShape(weight.shape)} must be [${n}] for input ${fmtShape(x.shape)}`);
  const variant = rmsNormVariantFor(gpu, n);
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'rmsNorm');
  const stats = new Tensor(gpu, [rows, 2], 'f32', undefined, 'rmsNorm.stats');
  const lay = layout(gpu, variant, rows);
  gpu.launch(rmsNormKernel[`rmsnorm_${lay.suffix}`], {
    ...variantArgs(vec4, lay.group),
    // c = 2^100 only where eps < 1e-28, compared in f32 as the kernel does (eps 2^200 < 1.7e32);
    // 0 elsewhere, never read.
    params: { rows, n, nv, eps, epsUp: Math.fround(eps) < Math.fround(1e-28) ? eps * 2 ** 200 : 0, epsDown: eps * 2 ** -200, chunk: 0, chunks: 0, zero: 0 },
    buffers: { X: x.buffer, W: weight.buffer, Y: y.buffer, stats: stats.buffer },
    workgroups: lay.workgroups,
    label: `rmsNorm ${fmtShape(x.shape)}`,
  });
  return { y, stats, variant };
}

/**
 * The gradients of rmsNorm for x and weight (each only where asked for; null otherwise),
 * from the forward's inputs, stats and layout and the output gradient gy. The weight's is
 * summed over rows deterministically (no atomics). With the per-row layout, subgroups and
 * gpu.tuning.rmsNorm.fuseWeightGrad, one kernel gives gx and the weight gradient's first pass.
 * `acc.x` ([..., C]) and `acc.weight` ([C]), where given, are added in the stores (gx = acc.x
 * + dx, the same bits as a separate add).
 * @throws ShapeError when an accumulated gradient does not have its tensor's shape.
 */
export function rmsNormBackward(
  x: Tensor, weight: Tensor, stats: Tensor, gy: Tensor, variant: RmsNormLayout, want: { x: boolean; weight: boolean },
  acc: { x?: Tensor | null; weight?: Tensor | null } = {},
): { gx: Tensor | null; gw: Tensor | null } {
  const gpu = checkInputs('rmsNorm.backward', [x, weight, stats, gy]);
  checkAccumulated('rmsNorm.backward', acc.x, x.shape, 'x');
  checkAccumulated('rmsNorm.backward', acc.weight, weight.shape, 'weight');
  const GXA = acc.x?.buffer ?? null;
  const GWA = acc.weight?.buffer ?? null;
  const accX = { ACCX: !!GXA };
  const { rows, n, nv, vec4 } = dims(x);
  const label = `rmsNorm ${fmtShape(x.shape)}`;
  const params = { rows, n, nv, eps: 0, epsUp: 0, epsDown: 0, chunk: 0, chunks: 0, zero: 0 };
  const group = groupFor(gpu);
  // Per-row layout with subgroups: one kernel gives gx and the weight gradient's partial sums.
  if (want.x && want.weight && variant === 'row' && group && gpu.tuning.rmsNorm.fuseWeightGrad) {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.rmsNorm.x');
    const gw = new Tensor(gpu, [n], 'f32', undefined, 'grad.rmsNorm.weight');
    const parts = Math.ceil(rows / group);
    const partial = gpu.acquire(parts * n * 4, `${label} weight-gradient partials`);
    gpu.launch(rmsNormKernel.rmsnorm_backward_row_gw, {
      ...variantArgs(vec4, group, accX),
      params,
      buffers: { X: x.buffer, W: weight.buffer, GY: gy.buffer, GX: gx.buffer, statsIn: stats.buffer, GW: partial, GXA },
      workgroups: grid1d(rows, 64),
      label: `${label}.backward`,
    });
    gpu.launch(rmsNormKernel.rmsnorm_wgrad_final, {
      ...variantArgs(vec4, 0, { ACCW: !!GWA }),
      params: { ...params, chunks: parts },
      buffers: { GW: gw.buffer, partials: partial, GWA },
      workgroups: grid1d(nv, 64),
      label: `${label}.backward weight (sum of ${parts} groups)`,
    });
    gpu.release(partial);
    return { gx, gw };
  }
  let gx: Tensor | null = null;
  if (want.x) {
    gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.rmsNorm.x');
    const lay = layout(gpu, variant, rows);
    gpu.launch(rmsNormKernel[`rmsnorm_backward_${lay.suffix}`], {
      ...variantArgs(vec4, lay.group, accX),
      params,
      buffers: { X: x.buffer, W: weight.buffer, GY: gy.buffer, GX: gx.buffer, statsIn: stats.buffer, GXA },
      workgroups: lay.workgroups,
      label: `${label}.backward`,
    });
  }
  const gw = want.weight ? weightGrad(gpu, x, gy, stats, label, GWA) : null;
  return { gx, gw };
}

/** gw[j] = sum over rows of gy * xhat: rows split into chunks (partial sums), then summed in order. */
function weightGrad(gpu: Gpu, x: Tensor, gy: Tensor, stats: Tensor, label: string, GWA: GPUBuffer | null): Tensor {
  const { rows, n, nv, vec4 } = dims(x);
  const gw = new Tensor(gpu, [n], 'f32', undefined, 'grad.rmsNorm.weight');
  const chunks = rowChunks(rows, nv);
  const chunk = Math.ceil(rows / chunks);
  const params = { rows, n, nv, eps: 0, epsUp: 0, epsDown: 0, chunk, chunks, zero: 0 };
  if (chunks === 1) {
    gpu.launch(rmsNormKernel.rmsnorm_wgrad_partial, {
      ...variantArgs(vec4, 0, { ACCW: !!GWA }),
      params,
      buffers: { X: x.buffer, GY: gy.buffer, statsIn: stats.buffer, GW: gw.buffer, GWA },
      workgroups: grid1d(nv, 64),
      label: `${label}.backward weight`,
    });
    return gw;
  }
  const parts = gpu.acquire(chunks * n * 4, `${label} weight-gradient partials`);
  gpu.launch(rmsNormKernel.rmsnorm_wgrad_partial, {
    ...variantArgs(vec4),
    params,
    buffers: { X: x.buffer, GY: gy.buffer, statsIn: stats.buffer, GW: parts, GWA: null },
    workgroups: grid1d(chunks * nv, 64),
    label: `${label}.backward weight (pass 1)`,
  });
  gpu.launch(rmsNormKernel.rmsnorm_wgrad_final, {
    ...variantArgs(vec4, 0, { ACCW: !!GWA }),
    params,
    buffers: { GW: gw.buffer, partials: parts, GWA },
    workgroups: grid1d(nv, 64),
    label: `${label}.backward weight (pass 2)`,
  });
  gpu.release(parts);
  return gw;
}
