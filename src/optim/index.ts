// Optimizers: part of the framework, not differentiable ops. They update parameters in place
// through the launches of src/launch/optim.ts (kernels/optim.wgsl).
export { Optimizer, type OptimizerOptions, type ParamGroup } from './optimizer.ts';
export { SGD } from './sgd.ts';
export { AdamW } from './adamw.ts';
