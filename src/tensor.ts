// GPU-resident tensors: a shape, a dtype and a pooled storage buffer (shared by views such
// as reshape), plus the autograd fields the tape in autograd.ts reads.
import { ShapeError, ValueError } from './errors.ts';
import type { Gpu } from './gpu/runtime.ts';

export type DType = 'f32' | 'i32';

/** What autograd.record() attaches to a tensor made by an op: its inputs and its backward rule. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** Gradients of the inputs given the output's gradient (null: none needed or zero).
   * `accumulated(j)` hands a rule that can add in its own kernel (a matmul's residual
   * epilogue) the gradient input j has gathered so far from other ops, or null (none yet, j
   * repeats an earlier input of the same op, or gpu.tuning.fuseEpilogues is off): once taken, the rule's j-th result must
   * include it (the engine then adds nothing). */
  backward(gradOut: Tensor, accumulated: Accumulated): (Tensor | null)[];
}
/** See GradNode.backward: input j's gradient so far, taken over by the caller, or null. */
export type Accumulated = (j: number) => Tensor | null;
export type Shape = readonly number[];

/** A pooled buffer shared by a tensor and its views; returned to the pool at the last release. */
class Storage {
  refs = 1;
  constructor(
    readonly gpu: Gpu,
    readonly buffer: GPUBuffer,
  ) {}
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) this.gpu.release(this.buffer);
  }
}

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: Shape;
  readonly size: number;
  /** Set by autograd.record(): the op that made this tensor. */
  node: GradNode | null = null;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Kept tensors (parameters, optimizer state, gradients) survive scope(). */
  kept = false;
  name: string;
  private storage: Storage | null;
  /** Tensors this one owns (e.g. statistics its backward needs): disposed with it. */
  private owned: Tensor[] | null = null;

  constructor(
    readonly gpu: Gpu,
    shape: Shape,
    readonly dtype: DType = 'f32',
    storage?: Storage,
    name?: string,
  ) {
    checkShape(shape, name ?? 'tensor');
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.name = name ?? `t${this.id}`;
    this.storage = storage ?? new Storage(gpu, gpu.acquire(this.size * 4, `${this.name} [${shape.join('x')}]`));
    trackInScope(this);
  }

  get buffer(): GPUBuffer {
    if (!this.storage) throw new ValueError(`tensor '${this.name}' [${this.shape.join('x')}] was disposed and cannot be used again`);
    return this.storage.buffer;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** A tensor with another shape over the same storage (no copy). */
  view(shape: Shape, name?: string): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== this.size)
      throw new ShapeError(`reshape: cannot view '${this.name}' [${this.shape.join('x')}] (${this.size} elements) as [${shape.join('x')}] (${size})`);
    this.buffer; // throws if disposed
    return new Tensor(this.gpu, shape, this.dtype, this.storage!.retain(), name);
  }

  /** Makes `t` live exactly as long as this tensor (out of any scope's reach). */
  own(t: Tensor): void {
    untrack(t);
    (this.owned ??= []).push(t);
  }

  /** Returns the buffer to the pool (views keep it alive). Safe to call twice. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    this.node = null;
    if (this.owned) for (const t of this.owned) t.dispose();
    this.owned = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Marks the tensor (and later its gradient) as surviving scope() cleanup. */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** Copies the data to the host. */
  async data(): Promise<Float32Array | Int32Array> {
    const bytes = await this.gpu.read(this.buffer, this.size * 4);
    return this.dtype === 'i32' ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  async floats(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new ValueError(`tensor '${this.name}' is ${this.dtype}, not f32`);
    return (await this.data()) as Float32Array;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item(): tensor '${this.name}' has shape [${this.shape.join('x')}], not one element`);
    return (await this.data())[0];
  }

  toString(): string {
    return `Tensor(${this.name}, [${this.shape.join('x')}], ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }
}

export function checkShape(shape: Shape, what: string): void {
  if (!Array.isArray(shape) && !(Object.isFrozen(shape) && typeof (shape as number[]).length === 'number'))
    throw new ShapeError(`${what}: shape must be an array of dimensions`);
  if (shape.length === 0) throw new ShapeError(`${what}: shape [] has no dimensions; a single value is shape [1]`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what}: bad dimension ${d} in shape [${shape.join('x')}]`);
    if (d === 0) throw new ShapeError(`${what}: zero-sized dimension in shape [${shape.join('x')}]`);
  }
}

export const fmtShape = (s: Shape): string => `[${s.join('x')}]`;

// ------------------------------------------------------------------ scopes

const scopes: Set<Tensor>[] = [];

function trackInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

function collect(value: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (!value || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map)
    for (const v of value instanceof Map ? value.values() : Object.values(value)) collect(v, out, seen);
}

/** Ends the innermost scope: disposes what it made, except `result`'s tensors and kept ones. */
function closeScope(made: Set<Tensor>, result: unknown): void {
  const keep = new Set<Tensor>();
  collect(result, keep);
  for (const t of made) {
    if (keep.has(t) || t.kept) trackInScope(t);
    else t.dispose();
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it returns (found
 * in arrays and plain objects too) and kept ones. Returned tensors move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scopes.pop()!, null);
    throw e;
  }
  if (result instanceof Promise) {
    closeScope(scopes.pop()!, null);
    throw new ValueError('scope(): use scopeAsync() for async functions');
  }
  closeScope(scopes.pop()!, result);
  return result;
}

/** scope() for async functions. Do not run two at once: tensors are tracked per scope stack. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push(new Set());
  const depth = scopes.length;
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    closeScope(scopes.splice(depth - 1, 1)[0], null);
    throw e;
  }
  if (scopes.length !== depth) {
    closeScope(scopes.splice(depth - 1, 1)[0], null);
    throw new ValueError('scopeAsync(): scopes were interleaved (two async scopes ran at once)');
  }
  closeScope(scopes.pop()!, result);
  return result;
}

/** Removes a tensor from scope tracking without marking it kept (the caller now owns it). */
export function untrack(t: Tensor): Tensor {
  for (const s of scopes) s.delete(t);
  return t;
}
