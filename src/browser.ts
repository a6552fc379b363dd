// The browser library entry: the framework (src/framework.ts), the application's losses and
// data code, as in Node,
// without the Node-only file I/O (src/data/io/node.ts, the synthetic dataset writer).
export * from './framework.ts';
export * from './app-errors.ts';
export * from './losses/index.ts';
export * as volume from './data/volume.ts';
export * as nifti from './data/nifti.ts';
export * as dicom from './data/dicom.ts';
export * as prep from './data/prep.ts';
export * as snippets from './data/snippets-api.ts';
export * as synthetic from './data/synthetic/index.ts';
export { WordPieceTokenizer } from './data/tokenizer.ts';
export { LABELS } from './data/labels.ts';
