// The browser library entry: the same kernels and runtime as Node, without Node-only I/O.
export * from './errors.ts';
