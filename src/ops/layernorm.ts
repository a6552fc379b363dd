// Layer normalisation over the last axis with affine parameters (kernels/layernorm.wgsl).
import source from '../../kernels/layernorm.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Uniforms, checkFinite, checkInputs } from '../launch/util.ts';

/** (x - mean) / sqrt(var + eps) * gamma + beta over the last axis; gamma and beta are [n]. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const gpu = checkInputs('layerNorm', [x, gamma, beta]);
  checkFinite('layerNorm', 'eps', eps);
  const n = x.shape[x.rank - 1];
  if (gamma.rank !== 1 || gamma.shape[0] !== n || beta.rank !== 1 || beta.shape[0] !== n)
    throw new ShapeError(`layerNorm: gamma ${fmtShape(gamma.shape)} and beta ${fmtShape(beta.shape)} must be [${n}] for input ${fmtShape(x.shape)}`);
  const rows = x.size / n;
  const uniforms = new Uniforms().u32(rows, n).f32(eps).u32(0).bytes();
  const y = new Tensor(gpu, x.shape, 'f32', undefined, 'layerNorm');
  const statsT = new Tensor(gpu, [rows, 2], 'f32', undefined, 'layerNorm.stats');
  y.own(statsT);
  const stats = statsT.buffer;
  const label = `layerNorm ${fmtShape(x.shape)}`;
  const fwd = gpu.kernel({ file: 'layernorm.wgsl', source, entry: 'layernorm', bindings: ['uniform', 'read', 'read', 'read', 'write', 'write'] });
  gpu.dispatch(fwd, { uniforms, buffers: [x.buffer, gamma.buffer, beta.buffer, y.buffer, stats], workgroups: grid1d(rows, 64), label });
  return record(y, 'layerNorm', [x, gamma, beta], (gy) => {
    const gx = x.requiresGrad ? new Tensor(gpu, x.shape, 'f32', undefined, 'grad.layerNorm.x') : null;
    if (gx) {
      const k = gpu.kernel({
        file: 'layernorm.wgsl',
        source,
        entry: 'layernorm_backward_input',
        bindings: ['uniform', 'read', 'read', null, null, null, 'read', 'write', 'read'],
      });
      gpu.dispatch(k, { uniforms, buffers: [x.buffer, gamma.buffer, gy.buffer, gx.buffer, stats], workgroups: grid1d(rows, 64), label: `${label}.backward` });
    }
    let gg: Tensor | null = null;
    let gb: Tensor | null = null;
    if (gamma.requiresGrad || beta.requiresGrad) {
      gg = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.gamma');
      gb = new Tensor(gpu, [n], 'f32', undefined, 'grad.layerNorm.beta');
      const k = gpu.kernel({
        file: 'layernorm.wgsl',
        source,
        entry: 'layernorm_backward_params',
        bindings: ['uniform', 'read', null, null, null, null, 'read', null, 'read', 'write', 'write'],
      });
      gpu.dispatch(k, { uniforms, buffers: [x.buffer, gy.buffer, stats, gg.buffer, gb.buffer], workgroups: [Math.ceil(n / 64), 1, 1], label: `${label}.backward params` });
    }
    return [gx, gamma.requiresGrad ? gg : (gg?.dispose(), null), beta.requiresGrad ? gb : (gb?.dispose(), null)];
  });
}
