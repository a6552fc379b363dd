// Every op, one import away.
export * from './elementwise.ts';
export * from './reduce.ts';
export * from './layout.ts';
export * from './matmul.ts';
export * from './softmax.ts';
export * from './layernorm.ts';
export * from './embedding.ts';
export * from './crossentropy.ts';
export * from './creation.ts';
export * from './rope.ts';
export * from './attention.ts';
export * from './patch3d.ts';
export * from './patchhist.ts';
export * from './rmsnorm.ts';
export * from './glu.ts';
export * from './weightnorm.ts';
