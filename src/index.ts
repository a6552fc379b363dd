// The Node library entry: everything public.
export * from './errors.ts';
