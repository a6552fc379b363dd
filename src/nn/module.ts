// Modules: objects that own named parameters. A module lists its parameters by walking
// its fields (parameters and sub-modules), so layers need no registration code.
import { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { parameter } from '../ops/creation.ts';
import { Rng, hashString } from '../rng.ts';

export abstract class Module {
  /** Every parameter, named by its path (e.g. 'blocks.0.attn.qkv.weight'). */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [key, value] of Object.entries(this)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value instanceof Tensor && value.requiresGrad && !value.node) out.push([name, value]);
      else if (value instanceof Module) out.push(...value.namedParameters(name));
      else if (Array.isArray(value))
        value.forEach((v, i) => {
          if (v instanceof Module) out.push(...v.namedParameters(`${name}.${i}`));
          else if (v instanceof Tensor && v.requiresGrad && !v.node) out.push([`${name}.${i}`, v]);
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
      else if (v instanceof Tensor && v.requiresGrad && !v.node) v.dispose();
    };
    for (const value of Object.values(this)) {
      if (Array.isArray(value)) value.forEach(free);
      else free(value);
    }
  }
}

/** Seeded initialisers: each parameter gets its own stream derived from (seed, name). */
export function initNormal(gpu: Gpu, shape: number[], std: number, seed: number, name: string): Tensor {
  const rng = new Rng(hashString(`${seed}:${name}`));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return parameter(gpu, data, shape, name);
}

export function initConstant(gpu: Gpu, shape: number[], value: number, name: string): Tensor {
  return parameter(gpu, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value), shape, name);
}
