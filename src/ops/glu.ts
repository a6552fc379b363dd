// Gated linear units (kernels/glu.wgsl, src/launch/glu.ts).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { siluGateBackward, siluGateForward } from '../launch/glu.ts';

/**
 * silu(gate) * up, elementwise, gate and up of one shape (any): the gating of Qwen3's MLP
 * (transformers' Qwen3MLP: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = SiLU),
 * i.e. F.silu(gate) * up in one kernel. One backward kernel gives both gradients:
 * d/dgate = gy * up * (s + gate * s * (1 - s)), d/dup = gy * silu(gate), s = sigmoid(gate).
 * Finite for any finite inputs (sigmoid from exp(-|gate|)).
 * @throws ShapeError when gate and up differ in shape.
 */
export function siluGate(gate: Tensor, up: Tensor): Tensor {
  const out = siluGateForward(gate, up);
  return record(out, 'siluGate', [gate, up], (gy) => {
    const { gGate, gUp } = siluGateBackward(gate, up, gy);
    return [gate.requiresGrad ? gGate : null, up.requiresGrad ? gUp : null];
  });
}
