export { OPTIMIZER_NAMES, OPTIMIZER_DEFAULTS, validateOptimizerConfig, optimizerSlotNames } from './config.js';
export type { OptimizerName, OptimizerConfig } from './config.js';
export { createOptimizerState } from './state.js';
export type { OptimizerState } from './state.js';
export { optimizerStep } from './step.js';
export { clipByGlobalNorm, globalNorm, clipCoefficient, firstNonFinite } from './clip.js';
