// SGD with momentum and decoupled weight decay (kernels/optim.wgsl, entry sgd).
import type { Tensor } from '../tensor.ts';
import { Optimizer, type OptimizerOptions } from './optimizer.ts';

export class SGD extends Optimizer {
  protected entry = 'sgd' as const;
  constructor(
    params: Tensor[],
    opts: OptimizerOptions & { momentum?: number },
  ) {
    super(params, opts, false);
  }
  protected hyperparameters(): number[] {
    const o = this.opts as OptimizerOptions & { momentum?: number };
    return [this.lr, 0, 0, 0, o.weightDecay ?? 0, 1, 1, o.momentum ?? 0];
  }
}
