export * from './errors.js';
export * from './rng.js';
export * from './spec.js';
export * from './kernels/index.js';
