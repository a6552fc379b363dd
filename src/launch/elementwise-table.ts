// The elementwise ops, one entry each: the WGSL of the function and of its derivative (from
// which kernels/elementwise.wgsl's op switches are generated), the float64 reference the
// generic test checks both against, and the inputs that test uses. Adding a unary op is an
// entry here and its export line in src/ops/elementwise.ts; nothing else.
//
// WGSL expressions see x (T: f32 or vec4f), a (f32: the op's scalar) and, in the derivative,
// y (the forward output), plus the helpers of kernels/elementwise.wgsl (gelu_tanh_t, spow),
// kernels/lib/gelu.wgsl (gelu_parts) and kernels/lib/exp.wgsl (exp_neg, sigmoid_pair). A function or a
// derivative may be a block of statements ending in `return`. The gradient rule of every unary
// op is the one in src/ops/elementwise.ts (`unary`): gy times this derivative.
import { normalCdf, normalPdf, sigmoid64 } from './float64.ts';

export interface UnaryTestCases {
  /** Range of the random inputs (default [-2, 2]). */
  domain?: readonly [number, number];
  /** The scalar a for the ops that take one. */
  alpha?: number;
  /** Inputs far out (logits of +-1e4, tails) where forward and derivative must stay accurate. */
  extremes?: readonly number[];
  /** Points where the derivative jumps: random inputs keep 0.05 away from them. */
  kinks?: readonly number[];
}

export interface UnaryDef {
  /** WGSL expression of x and a. */
  readonly f: string;
  /** WGSL derivative d f / d x (expression or block) of x, y and a. */
  readonly df: string;
  /** Float64 reference of f. */
  readonly ref: (x: number, a: number) => number;
  /** Float64 reference of the derivative. */
  readonly dref: (x: number, a: number) => number;
  readonly cases: UnaryTestCases;
}

const GELU_C = Math.sqrt(2 / Math.PI);
const tanhGelu = (x: number) => Math.tanh(GELU_C * (x + 0.044715 * x ** 3));
const big = [-1e4, -100, -30, 30, 100, 1e4] as const;

export const UNARY_OPS = {
  copy: { f: 'x', df: 'T(1.0)', ref: (x) => x, dref: () => 1, cases: { extremes: [-3e38, 3e38, 0] } },
  neg: { f: '-x', df: 'T(-1.0)', ref: (x) => -x, dref: () => -1, cases: { extremes: [-3e38, 3e38, 0] } },
  exp: { f: 'exp(x)', df: 'y', ref: Math.exp, dref: Math.exp, cases: { extremes: [-80, -30, 30, 80] } },
  log: { f: 'log(x)', df: '1.0 / x', ref: Math.log, dref: (x) => 1 / x, cases: { domain: [0.1, 3], extremes: [1e-30, 1e-6, 1e6, 1e30] } },
  sqrt: { f: 'sqrt(x)', df: '0.5 / y', ref: Math.sqrt, dref: (x) => 0.5 / Math.sqrt(x), cases: { domain: [0.1, 3], extremes: [1e-30, 1e30] } },
  rsqrt: { f: 'inverseSqrt(x)', df: '-0.5 * y * y * y', ref: (x) => 1 / Math.sqrt(x), dref: (x) => -0.5 * x ** -1.5, cases: { domain: [0.1, 3], extremes: [1e-12, 1e12] } },
  // 1 - y^2 cancels to 0 once y rounds to +-1 (|x| > 9): sech^2 x = 4z / (1 + z)^2, z = exp(-2|x|).
  tanh: {
    f: 'tanh(clamp(x, T(-10.0), T(10.0)))',
    df: 'let z = exp_neg(min(2.0 * abs(x), T(200.0)), T(0.0)); let d = 1.0 + z; return 4.0 * z / (d * d);', ref: Math.tanh, dref: (x) => 1 - Math.tanh(x) ** 2, cases: { extremes: [-1e4, -9, 9, 1e4] } },
  // 1 - y would cancel for large x: the derivative is s (1 - s) from the pair.
  sigmoid: { f: 'sigmoid_pair(x).s', df: 'let sp = sigmoid_pair(x); return sp.s * sp.c;', ref: sigmoid64, dref: (x) => sigmoid64(x) * sigmoid64(-x), cases: { extremes: [...big] } },
  relu: { f: 'max(x, T(0.0))', df: 'select(T(0.0), T(1.0), x > T(0.0))', ref: (x) => Math.max(x, 0), dref: (x) => (x > 0 ? 1 : 0), cases: { kinks: [0], extremes: [...big] } },
  gelu: {
    f: 'x * gelu_parts(x).phi',
    df: 'let g = gelu_parts(x); return g.phi + g.dens;',
    ref: (x) => x * normalCdf(x),
    dref: (x) => normalCdf(x) + x * normalPdf(x),
    cases: { domain: [-6, 6], extremes: [-1e4, -12, -8, 8, 12, 1e4] },
  },
  geluTanh: {
    f: '0.5 * x * (1.0 + gelu_tanh_t(x))',
    df: 'let t = gelu_tanh_t(x); let xc = clamp(x, T(-10.0), T(10.0)); return 0.5 * (1.0 + t) + 0.5 * xc * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * xc * xc);',
    ref: (x) => 0.5 * x * (1 + tanhGelu(x)),
    dref: (x) => 0.5 * (1 + tanhGelu(x)) + 0.5 * x * (1 - tanhGelu(x) ** 2) * GELU_C * (1 + 3 * 0.044715 * x * x),
    cases: { extremes: [-1e4, 1e4] },
  },
  silu: {
    f: 'x * sigmoid_pair(x).s',
    df: 'let sp = sigmoid_pair(x); return sp.s + x * sp.s * sp.c;',
    ref: (x) => x * sigmoid64(x),
    dref: (x) => sigmoid64(x) + x * sigmoid64(x) * sigmoid64(-x),
    cases: { extremes: [...big] },
  },
  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); WGSL has no log1p, so log(u) - ((u - 1) - z) / u
  // with u = 1 + z corrects the rounding of u (Goldberg's trick): exact for z down to 1e-38.
  softplus: {
    f: 'let z = exp_neg(min(abs(x), T(200.0)), T(0.0)); let u = 1.0 + z; return max(x, T(0.0)) + select(log(u) - ((u - 1.0) - z) / u, z, u == T(1.0));',
    df: 'sigmoid_pair(x).s',
    ref: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
    dref: sigmoid64,
    cases: { extremes: [...big, -80, 80] },
  },
  addScalar: { f: 'x + a', df: 'T(1.0)', ref: (x, a) => x + a, dref: () => 1, cases: { alpha: 0.75 } },
  mulScalar: { f: 'x * a', df: 'T(a)', ref: (x, a) => x * a, dref: (_, a) => a, cases: { alpha: -1.5, extremes: [-1e30, 1e30] } },
  powScalar: { f: 'spow(x, T(a))', df: 'a * spow(x, T(a - 1.0))', ref: (x, a) => x ** a, dref: (x, a) => a * x ** (a - 1), cases: { domain: [0.1, 3], alpha: 2.5, extremes: [1e-6, 1e6] } },
  abs: { f: 'abs(x)', df: 'sign(x)', ref: Math.abs, dref: Math.sign, cases: { kinks: [0], extremes: [-3e38, 3e38] } },
  step: { f: 'select(T(0.0), T(1.0), x > T(0.0))', df: 'T(0.0)', ref: (x) => (x > 0 ? 1 : 0), dref: () => 0, cases: { kinks: [0], extremes: [...big] } },
  square: { f: 'x * x', df: '2.0 * x', ref: (x) => x * x, dref: (x) => 2 * x, cases: { extremes: [-1e18, 1e18] } },
  recip: { f: '1.0 / x', df: '-y * y', ref: (x) => 1 / x, dref: (x) => -1 / (x * x), cases: { domain: [0.2, 3], extremes: [-1e18, 1e-18, 1e18] } },
  sign: { f: 'sign(x)', df: 'T(0.0)', ref: Math.sign, dref: () => 0, cases: { kinks: [0], extremes: [-3e38, 0, 3e38] } },
  sin: { f: 'sin(x)', df: 'cos(x)', ref: Math.sin, dref: Math.cos, cases: {} },
  cos: { f: 'cos(x)', df: '-sin(x)', ref: Math.cos, dref: (x) => -Math.sin(x), cases: {} },
} as const satisfies Record<string, UnaryDef>;

export type UnaryName = keyof typeof UNARY_OPS;

export interface BinaryDef {
  /** WGSL expression of a and b. */
  readonly f: string;
  /** Float64 reference. */
  readonly ref: (a: number, b: number) => number;
  /** Inputs of the test: both operands positive (pow, div). */
  readonly positive?: boolean;
}

export const BINARY_OPS = {
  add: { f: 'a + b', ref: (a, b) => a + b },
  sub: { f: 'a - b', ref: (a, b) => a - b },
  mul: { f: 'a * b', ref: (a, b) => a * b },
  div: { f: 'a / b', ref: (a, b) => a / b, positive: true },
  maximum: { f: 'max(a, b)', ref: Math.max },
  minimum: { f: 'min(a, b)', ref: Math.min },
  eq: { f: 'select(T(0.0), T(1.0), a == b)', ref: (a, b) => (a === b ? 1 : 0) },
  gt: { f: 'select(T(0.0), T(1.0), a > b)', ref: (a, b) => (a > b ? 1 : 0) },
  pow: { f: 'spow(a, b)', ref: (a, b) => a ** b, positive: true },
} as const satisfies Record<string, BinaryDef>;

export type BinaryName = keyof typeof BINARY_OPS;

export const UNARY_NAMES = Object.keys(UNARY_OPS) as UnaryName[];
export const BINARY_NAMES = Object.keys(BINARY_OPS) as BinaryName[];

const body = (code: string) => (/\breturn\b/.test(code) ? code : `return ${code};`);

/** The WGSL of the op switches: unary_f, unary_df and binary_f, the op chosen by `override OP`
 * (each op its own pipeline, the switch folded away by the compiler). */
export function elementwiseWgsl(): string {
  const unary = UNARY_NAMES.map((n, i) => `    case ${i}u: { ${body(UNARY_OPS[n].f)} } // ${n}`);
  const dunary = UNARY_NAMES.map((n, i) => `    case ${i}u: { ${body(UNARY_OPS[n].df)} } // ${n}`);
  const binary = BINARY_NAMES.map((n, i) => `    case ${i}u: { return ${BINARY_OPS[n].f}; } // ${n}`);
  return [
    '// Op switches generated from src/launch/elementwise-table.ts.',
    'fn unary_f(x: T, a: f32) -> T {',
    '  switch OP {',
    ...unary,
    '    default: { return x; }',
    '  }',
    '}',
    'fn unary_df(x: T, y: T, a: f32) -> T {',
    '  switch OP {',
    ...dunary,
    '    default: { return T(1.0); }',
    '  }',
    '}',
    'fn binary_f(a: T, b: T) -> T {',
    '  switch OP {',
    ...binary,
    '    default: { return a; }',
    '  }',
    '}',
  ].join('\n');
}
