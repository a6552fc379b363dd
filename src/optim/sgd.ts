// SGD with momentum and decoupled weight decay (kernels/optim.wgsl, entry sgd).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type OptimizerOptions } from './optimizer.ts';
import type { Hyper } from '../launch/optim.ts';

export class SGD extends Optimizer {
  protected entry = 'sgd' as const;
  constructor(
    params: Tensor[],
    opts: OptimizerOptions & { momentum?: number },
  ) {
    super(params, opts, false);
  }
  protected hyperparameters(): Hyper {
    const o = this.opts as OptimizerOptions & { momentum?: number };
    return { lr: this.lr, beta1: 0, beta2: 0, eps: 0, weightDecay: o.weightDecay ?? 0, bias1: 1, bias2: 1, momentum: o.momentum ?? 0 };
  }
}
