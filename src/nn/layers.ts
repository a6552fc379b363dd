// Basic layers, with PyTorch's parameter names and layouts (so that state dicts of PyTorch
// models load by name: Linear.weight is [out, in], LayerNorm has weight and bias).
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Module, initConstant, initNormal } from './module.ts';
import { matmul } from '../ops/matmul.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { rmsNorm } from '../ops/rmsnorm.ts';
import { gelu, relu, tanh } from '../ops/elementwise.ts';

/** y = x W^T + b (torch.nn.Linear): weight [outFeatures, inFeatures], bias [outFeatures]. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(gpu: Gpu, readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean; seed?: number; name?: string; std?: number } = {}) {
    super();
    const name = opts.name ?? `linear${inFeatures}x${outFeatures}`;
    // He/Kaiming-style scale for the fan-in, the usual choice for GELU/ReLU networks.
    this.weight = initNormal(gpu, [outFeatures, inFeatures], opts.std ?? Math.sqrt(1 / inFeatures), opts.seed ?? 0, `${name}.weight`);
    this.bias = opts.bias === false ? null : initConstant(gpu, [outFeatures], 0, `${name}.bias`);
  }
  /** x: [..., inFeatures] -> [..., outFeatures]. */
  forward(x: Tensor): Tensor {
    return matmul(x, this.weight, { transB: true, bias: this.bias ?? undefined });
  }
}

/** torch.nn.LayerNorm over the last axis: weight (gamma) and bias (beta), both [features]. */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(gpu: Gpu, readonly features: number, readonly eps = 1e-5, name = 'layernorm') {
    super();
    this.weight = initConstant(gpu, [features], 1, `${name}.weight`);
    this.bias = initConstant(gpu, [features], 0, `${name}.bias`);
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** RMSNorm over the last axis (transformers' Qwen3RMSNorm / LlamaRMSNorm): weight [features], no bias. */
export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(gpu: Gpu, readonly features: number, readonly eps = 1e-6, name = 'rmsnorm') {
    super();
    this.weight = initConstant(gpu, [features], 1, `${name}.weight`);
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export type Activation = 'gelu' | 'relu' | 'tanh';
const activations = { gelu, relu, tanh };

/** A stack of Linear layers with an activation between them (none after the last). */
export class MLP extends Module {
  readonly layers: Linear[];
  constructor(gpu: Gpu, sizes: number[], readonly activation: Activation = 'gelu', seed = 0, name = 'mlp') {
    super();
    this.layers = sizes.slice(1).map((n, i) => new Linear(gpu, sizes[i], n, { seed, name: `${name}.${i}` }));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    this.layers.forEach((l, i) => {
      h = l.forward(h);
      if (i < this.layers.length - 1) h = activations[this.activation](h);
    });
    return h;
  }
}
