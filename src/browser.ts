// The browser library entry: the same kernels, runtime, ops and data code as in Node,
// without the Node-only file I/O (src/data/io/node.ts, the synthetic dataset writer).
export * from './errors.ts';
export { Gpu, createDevice, fmtBytes, type PoolStats, type ProfileRecord } from './gpu/runtime.ts';
export { Tensor, scope, scopeAsync } from './tensor.ts';
export { quietly, setQuietPolling } from './gpu/polling.ts';
export { backward, noGrad, detach } from './autograd.ts';
export * from './ops/index.ts';
export * from './nn/index.ts';
export * as volume from './data/volume.ts';
export * as nifti from './data/nifti.ts';
export * as dicom from './data/dicom.ts';
export * as prep from './data/prep.ts';
export * as snippets from './data/snippets.ts';
export * as synthetic from './data/synthetic/index.ts';
export { WordPieceTokenizer } from './data/tokenizer.ts';
export { LABELS } from './data/labels.ts';
