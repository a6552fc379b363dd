// Basic layers, with PyTorch's parameter names and layouts (so that state dicts of PyTorch
// models load by name: Linear.weight is [out, in], LayerNorm has weight and bias).
import type { Tensor } from '../tensor.ts';
import type { Gpu } from '../gpu/runtime.ts';
import { Module, initConstant, initNormal, registerBuffer } from './module.ts';
import { noGrad } from '../autograd.ts';
import { ValueError, ShapeError } from '../errors.ts';
import { matmul } from '../ops/matmul.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { rmsNorm } from '../ops/rmsnorm.ts';
import { add, addScalar, gelu, mul, mulScalar, relu, rsqrt, square, sub, tanh } from '../ops/elementwise.ts';
import { mean } from '../ops/reduce.ts';
import { reshape } from '../ops/layout.ts';

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

/**
 * torch.nn.BatchNorm1d(features, eps, momentum, affine=False) over the last axis of x [..., features]:
 * every leading position is one sample of the statistics.
 * - Training (module.train()): normalises by the batch's mean and biased variance (the
 *   gradient flows through both), and moves running_mean / running_var towards them by
 *   `momentum` (the variance unbiased, N / (N - 1), as PyTorch does), on the device: no read-back.
 * - Evaluation (the default here): normalises by running_mean and running_var.
 * Throws ShapeError for a last axis other than `features`, ValueError for a batch of one
 * sample in training (PyTorch: "Expected more than 1 value per channel when training").
 */
export class BatchNorm1d extends Module {
  readonly running_mean: Tensor;
  readonly running_var: Tensor;
  constructor(gpu: Gpu, readonly features: number, readonly eps = 1e-5, readonly momentum = 0.1, readonly name = 'batchnorm') {
    super();
    this.running_mean = registerBuffer(initConstant(gpu, [features], 0, `${name}.running_mean`));
    this.running_var = registerBuffer(initConstant(gpu, [features], 1, `${name}.running_var`));
  }
  forward(x: Tensor): Tensor {
    const F = this.features;
    if (x.shape[x.rank - 1] !== F) throw new ShapeError(`${this.name}: expected [..., ${F}], got [${x.shape.join('x')}]`);
    const rows = reshape(x, [x.size / F, F]);
    const N = rows.shape[0];
    if (!this.training) return reshape(mul(sub(rows, this.running_mean), rsqrt(addScalar(this.running_var, this.eps))), x.shape);
    if (N < 2) throw new ValueError(`${this.name}: a batch of ${N} sample cannot give batch statistics in training (need at least 2)`);
    const mu = mean(rows, 0, true);
    const centred = sub(rows, mu);
    const variance = mean(square(centred), 0, true);
    noGrad(() => {
      const m = this.momentum;
      const rm = add(mulScalar(this.running_mean, 1 - m), mulScalar(reshape(mu, [F]), m));
      const rv = add(mulScalar(this.running_var, 1 - m), mulScalar(reshape(variance, [F]), (m * N) / (N - 1)));
      this.gpu.copy(rm.buffer, 0, this.running_mean.buffer, 0, F * 4);
      this.gpu.copy(rv.buffer, 0, this.running_var.buffer, 0, F * 4);
    });
    return reshape(mul(centred, rsqrt(addScalar(variance, this.eps))), x.shape);
  }
  private get gpu(): Gpu {
    return this.running_mean.gpu;
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
