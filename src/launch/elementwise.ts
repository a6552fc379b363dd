// Launches of kernels/elementwise.wgsl (no autograd): the unary and binary ops of the table
// in elementwise-table.ts, their fused derivative kernel, and fill.
import source from '../../kernels/elementwise.wgsl';
import expLib from '../../kernels/lib/exp.wgsl';
import geluLib from '../../kernels/lib/gelu.wgsl';
import { ShapeError } from '../errors.ts';
import { defineKernel, read, write } from '../gpu/kernel.ts';
import { grid1d, type Gpu } from '../gpu/runtime.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import { BINARY_NAMES, UNARY_NAMES, elementwiseWgsl, type BinaryName, type UnaryName } from './elementwise-table.ts';
import { broadcastShapes, broadcastStrides, checkFinite, checkInputs, sameShape } from './util.ts';

const WG = 256;
const MAX_RANK = 8;

export const elementwiseKernel = defineKernel({
  file: 'elementwise.wgsl',
  source,
  generated: elementwiseWgsl(),
  includes: [{ file: 'lib/exp.wgsl', source: expLib }, { file: 'lib/gelu.wgsl', source: geluLib }],
  // n: output elements (vec4s when VEC4); alpha: the unary op's scalar; zero: 0, read at run
  // time to make a NaN (a constant NaN is a shader-creation error in WGSL).
  params: { n: 'u32', rank: 'u32', alpha: 'f32', zero: 'u32', dims: 'u32[8]', stridesA: 'u32[8]', stridesB: 'u32[8]' },
  buffers: { X: read('T'), Y: write('T'), GY: read('T'), GX: write('T'), YF: read('T'), A: read('T'), B: read('T'), C: write('T') },
  entries: {
    unary: ['X', 'Y'],
    fill: ['Y'],
    unary_backward: ['X', 'GY', 'GX', 'YF'],
    binary: ['A', 'B', 'C'],
    binary_strided: ['A', 'B', 'C'],
  },
});

// Op codes (the `override OP` of each op's pipeline): positions in the table.
const UNARY_CODE = new Map(UNARY_NAMES.map((n, i) => [n, i]));
const BINARY_CODE = new Map(BINARY_NAMES.map((n, i) => [n, i]));

/** Invocations for n elements: vec4s when n is a multiple of 4 (the VEC4 kernels). */
const lanes = (n: number) => (n % 4 === 0 ? { vec4: true, count: n / 4 } : { vec4: false, count: n });

const params = (n: number, alpha = 0, dims: number[] = [], sa: number[] = [], sb: number[] = []) => ({
  n, rank: dims.length, alpha, zero: 0, dims, stridesA: sa, stridesB: sb,
});

/** f(x) for a unary op of the table; `alpha` is the scalar of addScalar, mulScalar, powScalar. */
export function unary(name: UnaryName, x: Tensor, alpha = 0): Tensor {
  const gpu = checkInputs(name, [x]);
  checkFinite(name, 'scalar', alpha);
  const y = new Tensor(gpu, x.shape, 'f32', undefined, `${name}(${x.name})`);
  const { vec4, count } = lanes(x.size);
  gpu.launch(elementwiseKernel.unary, {
    flags: { VEC4: vec4 },
    overrides: { OP: UNARY_CODE.get(name)! },
    params: params(count, alpha),
    buffers: { X: x.buffer, Y: y.buffer },
    workgroups: grid1d(count, WG),
    label: `${name} ${fmtShape(x.shape)}`,
  });
  return y;
}

/** gy * f'(x) for a unary op, from its input x and output y (one fused kernel). */
export function unaryBackward(name: UnaryName, x: Tensor, y: Tensor, gy: Tensor, alpha = 0): Tensor {
  const gpu = checkInputs(`${name}.backward`, [x, y, gy]);
  const gx = new Tensor(gpu, x.shape, 'f32', undefined, `grad.${name}`);
  const { vec4, count } = lanes(x.size);
  gpu.launch(elementwiseKernel.unary_backward, {
    flags: { VEC4: vec4 },
    overrides: { OP: UNARY_CODE.get(name)! },
    params: params(count, alpha),
    buffers: { X: x.buffer, GY: gy.buffer, GX: gx.buffer, YF: y.buffer },
    workgroups: grid1d(count, WG),
    label: `${name}.backward ${fmtShape(x.shape)}`,
  });
  return gx;
}

/** A fresh tensor filled with a constant. */
export function full(gpu: Gpu, shape: Shape, value: number, name?: string): Tensor {
  checkFinite('full', 'value', value);
  const t = new Tensor(gpu, shape, 'f32', undefined, name ?? `full(${value})`);
  if (value === 0) gpu.clear(t.buffer, 0, t.size * 4);
  else
    gpu.launch(elementwiseKernel.fill, {
      params: params(t.size, value),
      buffers: { Y: t.buffer },
      workgroups: grid1d(t.size, WG),
      label: `fill ${fmtShape(shape)}`,
    });
  return t;
}

export const zeros = (gpu: Gpu, shape: Shape, name?: string): Tensor => full(gpu, shape, 0, name);
export const ones = (gpu: Gpu, shape: Shape, name?: string): Tensor => full(gpu, shape, 1, name);

/** A copy with its own storage (a copy command, not a kernel). */
export function copy(x: Tensor): Tensor {
  const gpu = checkInputs('copy', [x], null);
  const y = new Tensor(gpu, x.shape, x.dtype, undefined, `copy(${x.name})`);
  gpu.copy(x.buffer, 0, y.buffer, 0, x.size * 4);
  return y;
}

/** g(a, b) for a binary op of the table, with numpy broadcasting. */
export function binary(name: BinaryName, a: Tensor, b: Tensor): Tensor {
  const gpu = checkInputs(name, [a, b]);
  const shape = broadcastShapes(name, a.shape, b.shape);
  if (shape.length > MAX_RANK) throw new ShapeError(`${name}: rank ${shape.length} is above the supported ${MAX_RANK}`);
  const out = new Tensor(gpu, shape, 'f32', undefined, `${name}(${a.name},${b.name})`);
  const n = out.size;
  const label = `${name} ${fmtShape(a.shape)},${fmtShape(b.shape)}`;
  const OP = BINARY_CODE.get(name)!;
  if (sameShape(a.shape, shape) && sameShape(b.shape, shape)) {
    const { vec4, count } = lanes(n);
    gpu.launch(elementwiseKernel.binary, {
      flags: { VEC4: vec4 },
      overrides: { OP },
      params: params(count),
      buffers: { A: a.buffer, B: b.buffer, C: out.buffer },
      workgroups: grid1d(count, WG),
      label,
    });
  } else {
    const { dims, sa, sb } = collapse(shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape));
    const runs = (n / dims[dims.length - 1]) * Math.ceil(dims[dims.length - 1] / 64);
    gpu.launch(elementwiseKernel.binary_strided, {
      overrides: { OP },
      params: params(n, 0, dims, sa, sb),
      buffers: { A: a.buffer, B: b.buffer, C: out.buffer },
      workgroups: grid1d(runs, 64),
      label,
    });
  }
  return out;
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

// Short names for backward rules: launch.add(g, x) etc.
export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => binary('maximum', a, b);
export const eq = (a: Tensor, b: Tensor): Tensor => binary('eq', a, b);
export const pow = (a: Tensor, b: Tensor): Tensor => binary('pow', a, b);
export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const sign = (x: Tensor): Tensor => unary('sign', x);
export const addScalar = (x: Tensor, s: number): Tensor => unary('addScalar', x, s);
export const mulScalar = (x: Tensor, s: number): Tensor => unary('mulScalar', x, s);
