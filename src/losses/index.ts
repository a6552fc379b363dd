// The application's losses: differentiable ops with their own kernels that the CT
// vision-language model trains on, built on the framework (src/launch, src/autograd,
// src/ops) and never imported by it. Each file holds its kernel's declaration, its
// non-recording launches and its ops.
export * from './siglip.ts';
export * from './localization.ts';
