// The framework alone, without the CT application: device runtime, kernel declarations,
// tensors and scopes, autograd, the launch layer, the differentiable ops, nn modules,
// optimizers and safetensors. Works in Node and in browsers (no Node built-ins).
// (test/structure.test.ts checks that its bundle contains nothing of src/data, src/model,
// src/losses, src/train, src/eval or src/cli.)
export * from './errors.ts';
export { Gpu, createDevice, fmtBytes, grid1d, type PoolStats, type ProfileRecord, type Tuning } from './gpu/runtime.ts';
export { defineKernel, read, write, uniform, type BufferRange, type EntryPoint, type LaunchArgs, type ParamType } from './gpu/kernel.ts';
export { defaultTuning, setTuning, type MatmulTile } from './gpu/tuning.ts';
export { autotune, autotuneSeen, autotuneEnabled, forgetAutotune, cachePath, type Tuner, type Trial } from './gpu/autotune.ts';
export { Tensor, scope, scopeAsync, type Shape, type DType, type GradNode } from './tensor.ts';
export { quietly } from './gpu/polling.ts';
export { backward, noGrad, detach, record } from './autograd.ts';
export * as launch from './launch/index.ts';
export * from './ops/index.ts';
export * from './nn/index.ts';
export * from './optim/index.ts';
export * as safetensors from './io/safetensors.ts';
