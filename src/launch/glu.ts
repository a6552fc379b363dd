// Launches of kernels/glu.wgsl (no autograd): silu(gate) * up and its two gradients in one pass.
import source from '../../kernels/glu.wgsl';
import expLib from '../../kernels/lib/exp.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d } from '../gpu/runtime.ts';
import { Tensor, fmtShape } from '../tensor.ts';
import { checkInputs, sameShape } from './util.ts';

const WG = 256;

export const gluKernel = defineKernel({
  file: 'glu.wgsl',
  source,
  includes: [{ file: 'lib/exp.wgsl', source: expLib }],
  // n: elements (vec4s when VEC4, where T = vec4f).
  params: { n: 'u32' },
  buffers: { G: read('T'), U: read('T'), O: write('T'), GY: read('T'), GG: write('T'), GU: write('T') },
  entries: { silu_gate: ['G', 'U', 'O'], silu_gate_backward: ['G', 'U', 'GY', 'GG', 'GU'] },
});

/** Element count and vector width of a launch over `size` elements. */
function vecCount(size: number): { vec4: boolean; count: number } {
  const vec4 = size % 4 === 0;
  return { vec4, count: vec4 ? size / 4 : size };
}

/**
 * silu(gate) * up elementwise (see siluGate in src/ops/glu.ts).
 * @throws ShapeError when gate and up differ in shape.
 */
export function siluGateForward(gate: Tensor, up: Tensor): Tensor {
  const gpu = checkInputs('siluGate', [gate, up]);
  if (!sameShape(gate.shape, up.shape))
    throw new ShapeError(`siluGate: gate ${fmtShape(gate.shape)} and up ${fmtShape(up.shape)} must have the same shape`);
  const { vec4, count } = vecCount(gate.size);
  const out = new Tensor(gpu, gate.shape, 'f32', undefined, `siluGate(${gate.name},${up.name})`);
  gpu.launch(gluKernel.silu_gate, {
    flags: { VEC4: vec4 },
    params: { n: count },
    buffers: { G: gate.buffer, U: up.buffer, O: out.buffer },
    workgroups: grid1d(count, WG),
    label: `siluGate ${fmtShape(gate.shape)}`,
  });
  return out;
}

/** The gradients of siluGate for gate and up from the output gradient gy (one kernel gives both). */
export function siluGateBackward(gate: Tensor, up: Tensor, gy: Tensor): { gGate: Tensor; gUp: Tensor } {
  const gpu = checkInputs('siluGate.backward', [gate, up, gy]);
  const { vec4, count } = vecCount(gate.size);
  const gGate = new Tensor(gpu, gate.shape, 'f32', undefined, 'grad.siluGate.gate');
  const gUp = new Tensor(gpu, up.shape, 'f32', undefined, 'grad.siluGate.up');
  gpu.launch(gluKernel.silu_gate_backward, {
    flags: { VEC4: vec4 },
    params: { n: count },
    buffers: { G: gate.buffer, U: up.buffer, GY: gy.buffer, GG: gGate.buffer, GU: gUp.buffer },
    workgroups: grid1d(count, WG),
    label: `siluGate ${fmtShape(gate.shape)}.backward`,
  });
  return { gGate, gUp };
}
