// Elementwise ops (kernels/elementwise.wgsl; the table in src/launch/elementwise-table.ts):
// unary functions, whose gradient is the table's fused derivative kernel, and binary ops with
// numpy broadcasting, whose gradient rules are below (launches plus sumToShape, the
// reduction over broadcast axes).
import { record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import * as launch from '../launch/index.ts';
import type { BinaryName, UnaryName } from '../launch/elementwise-table.ts';

export { full, zeros, ones } from '../launch/elementwise.ts';

function unary(name: UnaryName, x: Tensor, alpha = 0): Tensor {
  const y = launch.unary(name, x, alpha);
  return record(y, name, [x], (gy) => [launch.unaryBackward(name, x, y, gy, alpha)]);
}

const unaryOp = (name: UnaryName) => (x: Tensor): Tensor => unary(name, x);

export const neg = unaryOp('neg');
export const exp = unaryOp('exp');
export const log = unaryOp('log');
export const sqrt = unaryOp('sqrt');
export const rsqrt = unaryOp('rsqrt');
export const tanh = unaryOp('tanh');
/** 1 / (1 + exp(-x)), computed from exp(-|x|) (no overflow for any finite x). */
export const sigmoid = unaryOp('sigmoid');
export const relu = unaryOp('relu');
/**
 * GELU, exact erf form (PyTorch's default: nn.GELU(), F.gelu(x, approximate='none'); timm's
 * ViT MLP): x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); gradient Phi(x) + x phi(x). Any shape.
 * Phi comes from a fitted erfcx (see kernels/elementwise.wgsl), accurate to a few ulp of
 * f32 relative to the result, the far negative tail included.
 */
export const gelu = unaryOp('gelu');
/**
 * GELU, tanh approximation (GPT-2; PyTorch's F.gelu(x, approximate='tanh'), nn.GELU('tanh')):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Any shape.
 */
export const geluTanh = unaryOp('geluTanh');
/**
 * SiLU / swish (PyTorch F.silu, nn.SiLU; transformers' ACT2FN['silu'] in Qwen3's MLP):
 * x sigmoid(x); gradient s + x s (1 - s). Finite for any finite x (sigmoid from exp(-|x|)).
 */
export const silu = unaryOp('silu');
/** log(1 + exp(x)) (PyTorch F.softplus with beta 1, computed exactly rather than returning x
 * past a threshold); gradient sigmoid(x). Finite and accurate for any finite x. */
export const softplus = unaryOp('softplus');
export const abs = unaryOp('abs');
export const square = unaryOp('square');
export const recip = unaryOp('recip');
export const sin = unaryOp('sin');
export const cos = unaryOp('cos');
/** 1 where x > 0, else 0 (zero gradient). */
export const step = unaryOp('step');
/** -1, 0 or 1 (zero gradient). */
export const sign = unaryOp('sign');
export const addScalar = (x: Tensor, s: number): Tensor => unary('addScalar', x, s);
export const mulScalar = (x: Tensor, s: number): Tensor => unary('mulScalar', x, s);
/** x^s; a negative x takes only an integer s (NaN otherwise, as JavaScript's **). */
export const powScalar = (x: Tensor, s: number): Tensor => unary('powScalar', x, s);

/** A copy with its own storage (and gradient flow): a copy command, not a kernel. */
export function copy(x: Tensor): Tensor {
  return record(launch.copy(x), 'copy', [x], (g) => [g.view(x.shape)]);
}

// ------------------------------------------------------------------ binary

/** The gradients of a and b before the reduction over broadcast axes; ga/gb false: that
 * input needs none (return null for it). */
type BinaryRule = (g: Tensor, a: Tensor, b: Tensor, out: Tensor, ga: boolean, gb: boolean) => [Tensor | null, Tensor | null];

const when = (need: boolean, f: () => Tensor): Tensor | null => (need ? f() : null);

// Typed by the table's names: a binary op without a rule does not compile (null: no
// gradient, the comparisons).
const binaryRules: Record<BinaryName, BinaryRule | null> = {
  add: (g, _a, _b, _o, ga, gb) => [ga ? g : null, gb ? g : null],
  sub: (g, _a, _b, _o, ga, gb) => [ga ? g : null, when(gb, () => launch.neg(g))],
  mul: (g, a, b, _o, ga, gb) => [when(ga, () => launch.mul(g, b)), when(gb, () => launch.mul(g, a))],
  div: (g, _a, b, out, ga, gb) => {
    const gA = launch.div(g, b);
    return [ga ? gA : null, when(gb, () => launch.neg(launch.mul(gA, out)))];
  },
  // The gradient goes to the input that was chosen (to a where they tie).
  maximum: (g, a, _b, out, ga, gb) => pickRule(g, a, out, ga, gb),
  minimum: (g, a, _b, out, ga, gb) => pickRule(g, a, out, ga, gb),
  // d/da a^b = b a^(b-1); d/db a^b = a^b log a.
  pow: (g, a, b, out, ga, gb) => [
    when(ga, () => launch.mul(g, launch.mul(b, launch.pow(a, launch.addScalar(b, -1))))),
    when(gb, () => launch.mul(g, launch.mul(out, launch.log(a)))),
  ],
  eq: null,
  gt: null,
};

function pickRule(g: Tensor, a: Tensor, out: Tensor, ga: boolean, gb: boolean): [Tensor | null, Tensor | null] {
  const pickA = launch.eq(out, a);
  return [when(ga, () => launch.mul(g, pickA)), when(gb, () => launch.mul(g, launch.addScalar(launch.neg(pickA), 1)))];
}

function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const out = launch.binary(name, a, b);
  const rule = binaryRules[name];
  if (!rule) return out;
  return record(out, name, [a, b], (g) => {
    const [ga, gb] = rule(g, a, b, out, a.requiresGrad, b.requiresGrad);
    return [ga && launch.sumToShape(ga, a.shape), gb && launch.sumToShape(gb, b.shape)];
  });
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
