// Making tensors from host data, and seeded random initialisers (generated on the host
// from a seed, then uploaded, so that a run is reproducible on every device).
import { ShapeError } from '../errors.ts';
import { Tensor, fmtShape, type Shape } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { prod } from './util.ts';

const hostCopies = new WeakMap<Tensor, Int32Array>();

/** The host copy of an i32 tensor made by fromInts (ops use it to check ids without a readback). */
export function hostInts(t: Tensor): Int32Array | undefined {
  return hostCopies.get(t);
}

/** An f32 tensor holding `data` (length must match the shape). */
export function tensor(gpu: Gpu, data: ArrayLike<number>, shape: Shape, name?: string): Tensor {
  if (data.length !== prod(shape)) throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmtShape(shape)} (${prod(shape)})`);
  const f = data instanceof Float32Array ? data : Float32Array.from(data);
  for (let i = 0; i < f.length; i++)
    if (!Number.isFinite(f[i])) throw new ShapeError(`tensor${name ? ` '${name}'` : ''}: value ${f[i]} at index ${i} is not finite`);
  const t = new Tensor(gpu, shape, 'f32', undefined, name);
  gpu.upload(t.buffer, f);
  return t;
}

/** An i32 tensor (ids, class targets). */
export function fromInts(gpu: Gpu, data: ArrayLike<number>, shape: Shape, name?: string): Tensor {
  if (data.length !== prod(shape)) throw new ShapeError(`fromInts: ${data.length} values do not fill shape ${fmtShape(shape)}`);
  const ints = Int32Array.from(data);
  for (let i = 0; i < ints.length; i++)
    if (ints[i] !== data[i]) throw new ShapeError(`fromInts${name ? ` '${name}'` : ''}: value ${data[i]} at index ${i} is not a 32-bit integer`);
  const t = new Tensor(gpu, shape, 'i32', undefined, name);
  gpu.upload(t.buffer, ints);
  hostCopies.set(t, ints);
  return t;
}

/** A trainable parameter: requires a gradient and survives scope(). */
export function parameter(gpu: Gpu, data: ArrayLike<number>, shape: Shape, name: string): Tensor {
  const t = tensor(gpu, data, shape, name).keep();
  t.requiresGrad = true;
  return t;
}

/** A seeded PRNG (sfc32 seeded through splitmix32): fast, good, and the same everywhere. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;
  constructor(seed: number) {
    let s = seed >>> 0;
    const mix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.next();
  }
  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export function randn(gpu: Gpu, shape: Shape, seed: number, std = 1, name?: string): Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(prod(shape));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return tensor(gpu, data, shape, name);
}

export function randUniform(gpu: Gpu, shape: Shape, seed: number, lo = 0, hi = 1, name?: string): Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(prod(shape));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rng.next();
  return tensor(gpu, data, shape, name);
}
