// Modules: objects that own named parameters. A module lists its parameters by walking
// its fields (parameters and sub-modules), so layers need no registration code.
import { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { parameter } from '../ops/creation.ts';
import { Rng, hashString } from '../rng.ts';

const buffers = new WeakSet<Tensor>();

/**
 * Marks a tensor as a module buffer: saved and loaded with the parameters (PyTorch's
 * register_buffer), never trained. Returns it, kept (it survives scope()).
 */
export function registerBuffer(t: Tensor): Tensor {
  t.requiresGrad = false;
  buffers.add(t.keep());
  return t;
}

const isParameter = (v: unknown): v is Tensor => v instanceof Tensor && v.requiresGrad && !v.node;
const isBuffer = (v: unknown): v is Tensor => v instanceof Tensor && buffers.has(v);

export abstract class Module {
  /**
   * PyTorch's training flag, read by layers that behave differently while training
   * (BatchNorm1d). Off by default here (PyTorch: on), so that loading weights and running
   * inference never needs an eval() call; trainers call train().
   */
  training = false;

  /** Sets the training flag of this module and every sub-module (PyTorch's Module.train). */
  train(mode = true): this {
    this.training = mode;
    for (const value of Object.values(this)) {
      if (value instanceof Module && value !== this) value.train(mode);
      else if (Array.isArray(value)) for (const v of value) if (v instanceof Module) v.train(mode);
    }
    return this;
  }

  /** train(false) (PyTorch's Module.eval). */
  eval(): this {
    return this.train(false);
  }

  /** Every parameter, named by its path (e.g. 'blocks.0.attn.q.weight'), PyTorch's named_parameters(). */
  namedParameters(prefix = ''): [string, Tensor][] {
    return this.walk(prefix, isParameter, (m, name) => m.namedParameters(name));
  }

  /** Every buffer (registerBuffer), PyTorch's named_buffers(). */
  namedBuffers(prefix = ''): [string, Tensor][] {
    return this.walk(prefix, isBuffer, (m, name) => m.namedBuffers(name));
  }

  /** Parameters and buffers by name: what a checkpoint holds (PyTorch's state_dict()). */
  stateDict(prefix = ''): [string, Tensor][] {
    return [...this.namedParameters(prefix), ...this.namedBuffers(prefix)];
  }

  private walk(prefix: string, pick: (v: unknown) => v is Tensor, child: (m: Module, name: string) => [string, Tensor][]): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [key, value] of Object.entries(this)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (pick(value)) out.push([name, value]);
      else if (value instanceof Module) out.push(...child(value, name));
      else if (Array.isArray(value))
        value.forEach((v, i) => {
          if (v instanceof Module) out.push(...child(v, `${name}.${i}`));
          else if (pick(v)) out.push([`${name}.${i}`, v]);
        });
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /** Frees every parameter (and its gradient), through each sub-module's own dispose(). */
  dispose(): void {
    const free = (v: unknown) => {
      if (v instanceof Module) v.dispose();
      else if (isParameter(v) || isBuffer(v)) v.dispose();
    };
    for (const value of Object.values(this)) {
      if (Array.isArray(value)) value.forEach(free);
      else free(value);
    }
  }
}

let skipInit = false;

/**
 * Builds modules whose weights are about to be loaded: parameters are allocated (zeros, as
 * WebGPU clears new buffers) without drawing random values, which for the released model's
 * 1 B parameters would take longer than loading them.
 */
export function withoutInit<T>(build: () => T): T {
  const before = skipInit;
  skipInit = true;
  try {
    return build();
  } finally {
    skipInit = before;
  }
}

function uninitialised(gpu: Gpu, shape: number[], name: string): Tensor {
  const t = new Tensor(gpu, shape, 'f32', undefined, name).keep();
  t.requiresGrad = true;
  return t;
}

/** Seeded initialisers: each parameter gets its own stream derived from (seed, name). */
export function initNormal(gpu: Gpu, shape: number[], std: number, seed: number, name: string): Tensor {
  if (skipInit) return uninitialised(gpu, shape, name);
  const rng = new Rng(hashString(`${seed}:${name}`));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return parameter(gpu, data, shape, name);
}

/** Uniform in [-bound, bound) (PyTorch's default for Linear and Conv biases: bound = 1 / sqrt(fan_in)). */
export function initUniform(gpu: Gpu, shape: number[], bound: number, seed: number, name: string): Tensor {
  if (skipInit) return uninitialised(gpu, shape, name);
  const rng = new Rng(hashString(`${seed}:${name}`));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (2 * rng.next() - 1) * bound;
  return parameter(gpu, data, shape, name);
}

export function initConstant(gpu: Gpu, shape: number[], value: number, name: string): Tensor {
  if (skipInit) return uninitialised(gpu, shape, name);
  return parameter(gpu, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, name);
}
