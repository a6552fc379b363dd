export * from './module.ts';
export * from './layers.ts';
