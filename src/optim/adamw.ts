// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (kernels/optim.wgsl, entry adamw).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type OptimizerOptions } from './optimizer.ts';
import type { Hyper } from '../launch/optim.ts';

export class AdamW extends Optimizer {
  protected entry = 'adamw' as const;
  constructor(
    params: Tensor[],
    opts: OptimizerOptions & { beta1?: number; beta2?: number; eps?: number },
  ) {
    super(params, opts, true);
  }
  protected hyperparameters(): Hyper {
    const o = this.opts as OptimizerOptions & { beta1?: number; beta2?: number; eps?: number };
    const b1 = o.beta1 ?? 0.9;
    const b2 = o.beta2 ?? 0.999;
    return { lr: this.lr, beta1: b1, beta2: b2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? 0, bias1: 1 - b1 ** this.stepCount, bias2: 1 - b2 ** this.stepCount, momentum: 0 };
  }
}
