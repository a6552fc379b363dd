// Gated linear units (kernels/glu.wgsl).
import source from '../../kernels/glu.wgsl';
import { record } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { grid1d, type KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, checkInputs, sameShape } from '../launch/util.ts';

const WG = 256;

function spec(entry: string, vec4: boolean, bindings: KernelSpec['bindings']): KernelSpec {
  return { file: 'glu.wgsl', source, entry, flags: { VEC4: vec4 }, bindings };
}

/**
 * silu(gate) * up, elementwise, gate and up of one shape (any): the gating of Qwen3's MLP
 * (transformers' Qwen3MLP: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = SiLU),
 * i.e. F.silu(gate) * up in one kernel. One backward kernel gives both gradients:
 * d/dgate = gy * up * (s + gate * s * (1 - s)), d/dup = gy * silu(gate), s = sigmoid(gate).
 * Finite for any finite inputs (sigmoid from exp(-|gate|)).
 */
export function siluGate(gate: Tensor, up: Tensor): Tensor {
  const gpu = checkInputs('siluGate', [gate, up]);
  if (!sameShape(gate.shape, up.shape))
    throw new ShapeError(`siluGate: gate ${fmtShape(gate.shape)} and up ${fmtShape(up.shape)} must have the same shape`);
  const n = gate.size;
  const vec4 = n % 4 === 0;
  const count = vec4 ? n / 4 : n;
  const uniforms = new Uniforms().u32(count).bytes();
  const label = `siluGate ${fmtShape(gate.shape)}`;
  const out = new Tensor(gpu, gate.shape, 'f32', undefined, `siluGate(${gate.name},${up.name})`);
  const fwd = gpu.kernel(spec('silu_gate', vec4, ['uniform', 'read', 'read', 'write']));
  gpu.dispatch(fwd, { uniforms, buffers: [gate.buffer, up.buffer, out.buffer], workgroups: grid1d(count, WG), label });
  return record(out, 'siluGate', [gate, up], (gy) => {
    const gg = new Tensor(gpu, gate.shape, 'f32', undefined, 'grad.siluGate.gate');
    const gu = new Tensor(gpu, up.shape, 'f32', undefined, 'grad.siluGate.up');
    const k = gpu.kernel(spec('silu_gate_backward', vec4, ['uniform', 'read', 'read', null, 'read', 'write', 'write']));
    gpu.dispatch(k, { uniforms, buffers: [gate.buffer, up.buffer, gy.buffer, gg.buffer, gu.buffer], workgroups: grid1d(count, WG), label: `${label}.backward` });
    if (!gate.requiresGrad) gg.dispose();
    if (!up.requiresGrad) gu.dispose();
    return [gate.requiresGrad ? gg : null, up.requiresGrad ? gu : null];
  });
}
