// Elementwise ops (kernels/elementwise.wgsl): unary functions with one fused backward
// kernel each, binary ops with numpy broadcasting, whose backward rules are written with
// the forward ops themselves plus sumToShape (the reduction over broadcast axes).
import source from '../../kernels/elementwise.wgsl';
import { record, setGradOps } from '../autograd.ts';
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import { grid1d, type Gpu, type KernelSpec } from '../gpu/runtime.ts';
import { Uniforms, broadcastShapes, broadcastStrides, checkFinite, checkInputs, sameShape } from './util.ts';
import { sumToShape } from './reduce.ts';

const WG = 256;
const MAX_RANK = 8;

const UNARY = {
  copy: 0, neg: 1, exp: 2, log: 3, sqrt: 4, tanh: 5, sigmoid: 6, relu: 7, gelu: 8, addScalar: 9,
  mulScalar: 10, powScalar: 11, abs: 12, step: 13, square: 14, rsqrt: 15, recip: 16, sign: 17, sin: 18, cos: 19,
  geluTanh: 20, silu: 21,
} as const;
type UnaryName = keyof typeof UNARY;

const BINARY = { add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, eq: 6, gt: 7, pow: 8 } as const;
type BinaryName = keyof typeof BINARY;

function uniforms(n: number, na = 0, nb = 0, rank = 0, alpha = 0, dims: number[] = [], sa: number[] = [], sb: number[] = []): ArrayBuffer {
  return new Uniforms()
    .u32(n, na, nb, rank)
    .f32(alpha)
    .u32(0, 0, 0)
    .u32Array(dims, MAX_RANK)
    .u32Array(sa, MAX_RANK)
    .u32Array(sb, MAX_RANK)
    .bytes();
}

function spec(entry: string, op: number, flags: Record<string, boolean>, bindings: KernelSpec['bindings']): KernelSpec {
  return { file: 'elementwise.wgsl', source, entry, flags, overrides: { OP: op }, bindings };
}

// ------------------------------------------------------------------ unary

function launchUnary(gpu: Gpu, name: UnaryName, x: GPUBuffer, y: GPUBuffer, n: number, alpha: number, label: string): void {
  const vec4 = n % 4 === 0;
  const count = vec4 ? n / 4 : n;
  const k = gpu.kernel(spec('unary', UNARY[name], { VEC4: vec4 }, ['uniform', 'read', 'write']));
  gpu.dispatch(k, { uniforms: uniforms(count, 0, 0, 0, alpha), buffers: [x, y], workgroups: grid1d(count, WG), label });
}

function unary(name: UnaryName, x: Tensor, alpha = 0): Tensor {
  const gpu = checkInputs(name, [x]);
  checkFinite(name, 'scalar', alpha);
  const y = new Tensor(gpu, x.shape, 'f32', undefined, `${name}(${x.name})`);
  launchUnary(gpu, name, x.buffer, y.buffer, x.size, alpha, `${name} ${fmtShape(x.shape)}`);
  return record(y, name, [x], (gy) => {
    const gx = new Tensor(gpu, x.shape, 'f32', undefined, `grad.${name}`);
    const vec4 = x.size % 4 === 0;
    const count = vec4 ? x.size / 4 : x.size;
    const k = gpu.kernel(spec('unary_backward', UNARY[name], { VEC4: vec4 }, [ 'uniform', 'read', null, 'read', 'write', 'read' ]));
    gpu.dispatch(k, {
      uniforms: uniforms(count, 0, 0, 0, alpha),
      buffers: [x.buffer, gy.buffer, gx.buffer, y.buffer],
      workgroups: grid1d(count, WG),
      label: `${name}.backward ${fmtShape(x.shape)}`,
    });
    return [gx];
  });
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
/** 1 / (1 + exp(-x)), computed from exp(-|x|) (no overflow for any finite x). */
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
/**
 * GELU, exact erf form (PyTorch's default: nn.GELU(), F.gelu(x, approximate='none'); timm's
 * ViT MLP): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); gradient Phi(x) + x phi(x). Any shape.
 * Phi comes from a fitted erfcx (see kernels/elementwise.wgsl), accurate to a few ulp of
 * f32 relative to the result, the far negative tail included.
 */
export const gelu = (x: Tensor): Tensor => unary('gelu', x);
/**
 * GELU, tanh approximation (GPT-2; PyTorch's F.gelu(x, approximate='tanh'), nn.GELU('tanh')):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Any shape.
 */
export const geluTanh = (x: Tensor): Tensor => unary('geluTanh', x);
/**
 * SiLU / swish (PyTorch F.silu, nn.SiLU; transformers' ACT2FN['silu'] in Qwen3's MLP):
 * x sigmoid(x); gradient s + x s (1 - s). Finite for any finite x (sigmoid from exp(-|x|)).
 */
export const silu = (x: Tensor): Tensor => unary('silu', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const recip = (x: Tensor): Tensor => unary('recip', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
/** 1 where x > 0, else 0 (no gradient). */
export const step = (x: Tensor): Tensor => unary('step', x);
export const sign = (x: Tensor): Tensor => unary('sign', x);
export const addScalar = (x: Tensor, s: number): Tensor => unary('addScalar', x, s);
export const mulScalar = (x: Tensor, s: number): Tensor => unary('mulScalar', x, s);
export const powScalar = (x: Tensor, s: number): Tensor => unary('powScalar', x, s);
/** A copy with its own storage (and gradient flow): a copy command, not a kernel. */
export function copy(x: Tensor): Tensor {
  const gpu = checkInputs('copy', [x], null);
  const y = new Tensor(gpu, x.shape, x.dtype, undefined, `copy(${x.name})`);
  gpu.copy(x.buffer, 0, y.buffer, 0, x.size * 4);
  return record(y, 'copy', [x], (g) => [g.view(x.shape)]);
}

/** Fills a fresh tensor with a constant (no gradient). */
export function full(gpu: Gpu, shape: Shape, value: number, name?: string): Tensor {
  checkFinite('full', 'value', value);
  const t = new Tensor(gpu, shape, 'f32', undefined, name ?? `full(${value})`);
  if (value === 0) gpu.clear(t.buffer, 0, t.size * 4);
  else {
    const k = gpu.kernel({ file: 'elementwise.wgsl', source, entry: 'fill', bindings: ['uniform', null, 'write'] });
    gpu.dispatch(k, { uniforms: uniforms(t.size, 0, 0, 0, value), buffers: [t.buffer], workgroups: grid1d(t.size, WG), label: `fill ${fmtShape(shape)}` });
  }
  return t;
}

export const zeros = (gpu: Gpu, shape: Shape, name?: string): Tensor => full(gpu, shape, 0, name);
export const ones = (gpu: Gpu, shape: Shape, name?: string): Tensor => full(gpu, shape, 1, name);

// ------------------------------------------------------------------ binary

function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const gpu = checkInputs(name, [a, b]);
  const shape = broadcastShapes(name, a.shape, b.shape);
  if (shape.length > MAX_RANK) throw new ShapeError(`${name}: rank ${shape.length} is above the supported ${MAX_RANK}`);
  const out = new Tensor(gpu, shape, 'f32', undefined, `${name}(${a.name},${b.name})`);
  const n = out.size;
  const label = `${name} ${fmtShape(a.shape)},${fmtShape(b.shape)}`;
  if (sameShape(a.shape, shape) && sameShape(b.shape, shape)) {
    const vec4 = n % 4 === 0;
    const count = vec4 ? n / 4 : n;
    const k = gpu.kernel(spec('binary', BINARY[name], { VEC4: vec4 }, binaryBindings));
    gpu.dispatch(k, { uniforms: uniforms(count), buffers: [a.buffer, b.buffer, out.buffer], workgroups: grid1d(count, WG), label });
  } else {
    const { dims, sa, sb } = collapse(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    const runs = (n / dims[dims.length - 1]) * Math.ceil(dims[dims.length - 1] / 64);
    const k = gpu.kernel(spec('binary_strided', BINARY[name], {}, binaryBindings));
    gpu.dispatch(k, {
      uniforms: uniforms(n, a.size, b.size, dims.length, 0, dims, sa, sb),
      buffers: [a.buffer, b.buffer, out.buffer],
      workgroups: grid1d(runs, 64),
      label,
    });
  }
  return record(out, name, [a, b], (g) => binaryBackward(name, a, b, out, g));
}

/** Merges neighbouring dimensions that both operands walk contiguously (or both skip), so
 * that the kernel's per-run index arithmetic loops over as few dimensions as possible. */
function collapse(shape: number[], sa: number[], sb: number[]): { dims: number[]; sa: number[]; sb: number[] } {
  const dims = [shape[0]];
  const A = [sa[0]];
  const B = [sb[0]];
  for (let d = 1; d < shape.length; d++) {
    const last = dims.length - 1;
    const fits = (s: number[], prev: number[]) => prev[last] === s[d] * shape[d];
    if (fits(sa, A) && fits(sb, B)) {
      dims[last] *= shape[d];
      A[last] = sa[d];
      B[last] = sb[d];
    } else {
      dims.push(shape[d]);
      A.push(sa[d]);
      B.push(sb[d]);
    }
  }
  return { dims, sa: A, sb: B };
}

const binaryBindings: KernelSpec['bindings'] = ['uniform', null, null, null, null, null, 'read', 'read', 'write'];

function binaryBackward(name: BinaryName, a: Tensor, b: Tensor, out: Tensor, g: Tensor): (Tensor | null)[] {
  const need = (t: Tensor) => t.requiresGrad;
  // The gradient reduced to the input's shape; `t`, a temporary of this rule, is freed
  // (sumToShape returns a view when nothing is reduced, which keeps the storage alive).
  const to = (t: Tensor, shape: Shape, temporary = true) => {
    const r = sumToShape(t, shape);
    if (temporary) t.dispose();
    return r;
  };
  const scratch: Tensor[] = [];
  const tmp = (t: Tensor) => (scratch.push(t), t);
  let grads: (Tensor | null)[];
  switch (name) {
    case 'add':
      grads = [need(a) ? to(g, a.shape, false) : null, need(b) ? to(g, b.shape, false) : null];
      break;
    case 'sub':
      grads = [need(a) ? to(g, a.shape, false) : null, need(b) ? to(neg(g), b.shape) : null];
      break;
    case 'mul':
      grads = [need(a) ? to(mul(g, b), a.shape) : null, need(b) ? to(mul(g, a), b.shape) : null];
      break;
    case 'div': {
      const ga = tmp(div(g, b));
      grads = [need(a) ? to(ga, a.shape, false) : null, need(b) ? to(neg(tmp(mul(ga, out))), b.shape) : null];
      break;
    }
    case 'maximum':
    case 'minimum': {
      // The gradient goes to the input that was chosen (to a where they tie).
      const pickA = tmp(eq(out, a));
      grads = [
        need(a) ? to(mul(g, pickA), a.shape) : null,
        need(b) ? to(mul(g, tmp(addScalar(tmp(neg(pickA)), 1))), b.shape) : null,
      ];
      break;
    }
    case 'pow':
      // d/da a^b = b a^(b-1); d/db a^b = a^b log a.
      grads = [
        need(a) ? to(mul(g, tmp(mul(b, tmp(pow(a, tmp(addScalar(b, -1))))))), a.shape) : null,
        need(b) ? to(mul(g, tmp(mul(out, tmp(log(a))))), b.shape) : null,
      ];
      break;
    default:
      grads = [null, null]; // comparisons have no gradient
  }
  for (const t of scratch) t.dispose();
  return grads;
}

export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor): Tensor => binary('minimum', a, b);
export const pow = (a: Tensor, b: Tensor): Tensor => binary('pow', a, b);
/** 1 where a == b, else 0 (no gradient). */
export const eq = (a: Tensor, b: Tensor): Tensor => binary('eq', a, b);
/** 1 where a > b, else 0 (no gradient). */
export const gt = (a: Tensor, b: Tensor): Tensor => binary('gt', a, b);

setGradOps({ add, ones: (like) => ones(like.gpu, like.shape) });
