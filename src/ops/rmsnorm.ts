// RMS normalisation over the last axis (kernels/rmsnorm.wgsl).
import source from '../../kernels/rmsnorm.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d, type Gpu, type KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, checkFinite, checkInputs } from '../launch/util.ts';

/**
 * Layouts of the forward and input-gradient kernels: 'row' one invocation per row;
 * 'workgroup' one workgroup of 64 per row; 'subgroup' 8 (or 4) subgroup lanes per row;
 * 'auto' picks (rmsNormVariantFor).
 */
export type RmsNormVariant = 'auto' | 'row' | 'workgroup' | 'subgroup';
let variantChoice: RmsNormVariant = 'auto';

let fuseWeightGrad = true;

/**
 * Forces a layout (tests and benchmarks run each); 'auto' restores the default choice.
 * fuse: whether the per-row layout's backward computes the weight gradient's partial sums
 * in the input-gradient kernel (where subgroups allow; default true).
 */
export function setRmsNormVariant(v: RmsNormVariant, fuse = true): void {
  variantChoice = v;
  fuseWeightGrad = fuse;
}

/**
 * The layout used for rows of n values. On lavapipe (every invocation one SIMD lane; a
 * barrier switches between coroutines) the barrier-free per-row loop measured fastest or
 * level at every shape tried ([4096x1024] forward: row 12.1 ms, subgroup 11.3 ms, workgroup
 * 38.9 ms, layerNorm 29.1 ms; [32768x8]: row 1.0 ms, subgroup 9.9 ms). On a GPU (not measured
 * here; the usual choice) strided per-row reads do not coalesce: a workgroup per long row,
 * else 8 subgroup lanes per row where subgroups exist.
 */
export function rmsNormVariantFor(gpu: Gpu, n: number): 'row' | 'workgroup' | 'subgroup' {
  if (variantChoice === 'subgroup' && !groupFor(gpu)) throw new ShapeError(`rmsNorm: the subgroup layout needs subgroups of at least 4 lanes; this device has ${gpu.subgroupMinSize || 'none'}`);
  if (variantChoice !== 'auto') return variantChoice;
  const i = gpu.adapterInfo;
  if (/llvmpipe|lavapipe|swiftshader/i.test(`${i.vendor} ${i.architecture} ${i.description} ${i.device}`)) return 'row';
  if (n >= 512) return 'workgroup';
  return n >= 32 && groupFor(gpu) ? 'subgroup' : 'row';
}

function spec(entry: string, vec4: boolean, bindings: KernelSpec['bindings'], group = 0): KernelSpec {
  return { file: 'rmsnorm.wgsl', source, entry, flags: { VEC4: vec4, SUBGROUPS: group > 0 }, overrides: group ? { G: group } : undefined, bindings };
}

/** Lanes per row of the subgroup layout: 8 where subgroups have at least 8 lanes, else 4 (0: none). */
function groupFor(gpu: Gpu): number {
  return gpu.subgroupMinSize >= 8 ? 8 : gpu.subgroupMinSize >= 4 ? 4 : 0;
}

/** The entry point, kernel spec options and workgroups of a layout, for `rows` rows. */
function layout(gpu: Gpu, variant: 'row' | 'workgroup' | 'subgroup', rows: number): { suffix: string; group: number; workgroups: [number, number, number] } {
  if (variant === 'workgroup') return { suffix: 'wg', group: 0, workgroups: grid1d(rows, 1) };
  if (variant === 'subgroup') {
    const group = groupFor(gpu);
    return { suffix: 'sg', group, workgroups: grid1d(rows * group, 64) };
  }
  return { suffix: 'row', group: 0, workgroups: grid1d(rows, 64) };
}


/**
 * RMSNorm over the last axis, computed in f32 (transformers' Qwen3RMSNorm / LlamaRMSNorm;
 * torch.nn.RMSNorm with elementwise_affine): y = weight * x / sqrt(mean(x^2) + eps), with no
 * mean subtraction, no bias and no +1 offset on the weight. x [..., C], weight [C] ->
 * [..., C]. Gradients for x and weight (the weight's summed over rows deterministically).
 * Rows with |x| above 1e16 (or below 1e-16 when eps < 1e-28) are rescaled by a power of two
 * before squaring, so they neither overflow nor lose precision (PyTorch's f32 gives 0 or
 * NaN for |x| > 1.8e19). A row of zeros with eps = 0 gives NaN, as in PyTorch.
 * eps: Qwen3's rms_norm_eps is 1e-6.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const gpu = checkInputs('rmsNorm', [x, weight]);
  checkFinite('rmsNorm', 'eps', eps);
  if (eps < 0) throw new ShapeError(`rmsNorm: eps must be >= 0, got ${eps}`);
  if (x.rank < 1) throw new ShapeError('rmsNorm: input must have at least one dimension');
  const n = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== n)
    throw new ShapeError(`rmsNorm: weight ${fmtShape(weight.shape)} must be [${n}] for input ${fmtShape(x.shape)}`);
  const rows = x.size / n;
  const vec4 = n % 4 === 0;
  const nv = vec4 ? n / 4 : n;
  const variant = rmsNormVariantFor(gpu, n);
  const uniforms = (chunk = 0, chunks = 0) => new Uniforms().u32(rows, n, nv).f32(eps).u32(chunk, chunks).bytes();
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'rmsNorm');
  const statsT = new Tensor(gpu, [rows, 2], 'f32', undefined, 'rmsNorm.stats');
  y.own(statsT);
  const label = `rmsNorm ${fmtShape(x.shape)}`;
  const lay = layout(gpu, variant, rows);
  const fwd = gpu.kernel(spec(`rmsnorm_${lay.suffix}`, vec4, ['uniform', 'read', 'read', 'write', 'write'], lay.group));
  gpu.dispatch(fwd, { uniforms: uniforms(), buffers: [x.buffer, weight.buffer, y.buffer, statsT.buffer], workgroups: lay.workgroups, label });
  return record(y, 'rmsNorm', [x, weight], (gy) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    const group = groupFor(gpu);
    // Per-row layout with subgroups: one kernel gives gx and the weight gradient's partial sums.
    if (x.requiresGrad && weight.requiresGrad && variant === 'row' && group && fuseWeightGrad) {
      gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.rmsNorm.x');
      gw = new Tensor(gpu, [n], 'f32', undefined, 'grad.rmsNorm.weight');
      const parts = Math.ceil(rows / group);
      const partial = gpu.acquire(parts * n * 4, `${label} weight-gradient partials`);
      const k = gpu.kernel(spec('rmsnorm_backward_row_gw', vec4, ['uniform', 'read', 'read', null, null, 'read', 'write', 'read', 'write'], group));
      gpu.dispatch(k, {
        uniforms: uniforms(),
        buffers: [x.buffer, weight.buffer, gy.buffer, gx.buffer, statsT.buffer, partial],
        workgroups: grid1d(rows, 64),
        label: `${label}.backward`,
      });
      const final = gpu.kernel(spec('rmsnorm_wgrad_final', vec4, ['uniform', null, null, null, null, null, null, null, 'write', 'read']));
      gpu.dispatch(final, { uniforms: uniforms(0, parts), buffers: [gw.buffer, partial], workgroups: grid1d(nv, 64), label: `${label}.backward weight (sum of ${parts} groups)` });
      gpu.release(partial);
      return [gx, gw];
    }
    if (x.requiresGrad) {
      gx = new Tensor(gpu, x.shape, 'f32', undefined, 'grad.rmsNorm.x');
      const k = gpu.kernel(spec(`rmsnorm_backward_${lay.suffix}`, vec4, ['uniform', 'read', 'read', null, null, 'read', 'write', 'read'], lay.group));
      gpu.dispatch(k, {
        uniforms: uniforms(),
        buffers: [x.buffer, weight.buffer, gy.buffer, gx.buffer, statsT.buffer],
        workgroups: lay.workgroups,
        label: `${label}.backward`,
      });
    }
    if (weight.requiresGrad) gw = weightGrad(gpu, x, gy, statsT, rows, n, nv, vec4, eps, label);
    return [gx, gw];
  });
}

/** gw[j] = sum over rows of gy * xhat: rows split into chunks (partial sums), then summed in order. */
function weightGrad(gpu: Gpu, x: Tensor, gy: Tensor, stats: Tensor, rows: number, n: number, nv: number, vec4: boolean, eps: number, label: string): Tensor {
  const gw = new Tensor(gpu, [n], 'f32', undefined, 'grad.rmsNorm.weight');
  // Enough (chunk, column) invocations to fill a device (~8k), each summing >= 32 rows.
  const chunks = Math.max(1, Math.min(Math.ceil(8192 / nv), Math.floor(rows / 32)));
  const chunk = Math.ceil(rows / chunks);
  const u = new Uniforms().u32(rows, n, nv).f32(eps).u32(chunk, chunks).bytes();
  const partial = gpu.kernel(spec('rmsnorm_wgrad_partial', vec4, ['uniform', 'read', null, null, null, 'read', null, 'read', 'write']));
  if (chunks === 1) {
    gpu.dispatch(partial, { uniforms: u, buffers: [x.buffer, gy.buffer, stats.buffer, gw.buffer], workgroups: grid1d(nv, 64), label: `${label}.backward weight` });
    return gw;
  }
  const parts = gpu.acquire(chunks * n * 4, `${label} weight-gradient partials`);
  gpu.dispatch(partial, { uniforms: u, buffers: [x.buffer, gy.buffer, stats.buffer, parts], workgroups: grid1d(chunks * nv, 64), label: `${label}.backward weight (pass 1)` });
  const final = gpu.kernel(spec('rmsnorm_wgrad_final', vec4, ['uniform', null, null, null, null, null, null, null, 'write', 'read']));
  gpu.dispatch(final, { uniforms: u, buffers: [gw.buffer, parts], workgroups: grid1d(nv, 64), label: `${label}.backward weight (pass 2)` });
  gpu.release(parts);
  return gw;
}
