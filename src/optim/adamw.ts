// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (kernels/optim.wgsl, entry adamw).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type OptimizerOptions } from './optimizer.ts';

export class AdamW extends Optimizer {
  protected entry = 'adamw' as const;
  constructor(
    params: Tensor[],
    opts: OptimizerOptions & { beta1?: number; beta2?: number; eps?: number },
  ) {
    super(params, opts, true);
  }
  protected hyperparameters(): number[] {
    const o = this.opts as OptimizerOptions & { beta1?: number; beta2?: number; eps?: number };
    const b1 = o.beta1 ?? 0.9;
    const b2 = o.beta2 ?? 0.999;
    return [this.lr, b1, b2, o.eps ?? 1e-8, o.weightDecay ?? 0, 1 - b1 ** this.stepCount, 1 - b2 ** this.stepCount, 0];
  }
}
