// The launch layer: every kernel's declaration and its non-recording launches (tensors in,
// tensors out, no autograd). Backward rules and gradient accumulation call these, so the
// differentiable ops in src/ops never import one another for their gradients.
export * from './elementwise.ts';
export * from './reduce.ts';
export * from './layout.ts';
export * from './softmax.ts';
export * from './matmul.ts';
export * from './embedding.ts';
export * from './patch3d.ts';
export * from './patchhist.ts';
export * from './layernorm.ts';
export * from './rmsnorm.ts';
export * from './glu.ts';
export * from './optim.ts';
export * from './crossentropy.ts';
export * from './attention.ts';
export * from './rope.ts';
export * from './pad.ts';
