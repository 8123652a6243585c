import { ConfigError } from '../errors.js';
import { optimizerSlotNames, type OptimizerConfig } from './config.js';

/**
 * An optimizer's state as plain data: `t` = number of steps applied so far, `slots` = one
 * flat array per per-parameter buffer (same length and layout as the parameters):
 * momentum/nesterov: velocity; adagrad: sum; rmsprop: sq; adam/adamw: m, v; sgd: none.
 */
export interface OptimizerState {
  t: number;
  slots: Record<string, Float32Array>;
}

/**
 * A fresh state (t = 0, zeroed slots) for `size` parameters, each slot from `alloc` (which
 * must hand out zeroed arrays: e.g. a kernels' alloc, so the update's steps work in place).
 */
export function createOptimizerState(cfg: Pick<OptimizerConfig, 'name'>, size: number, alloc: (n: number) => Float32Array = (n) => new Float32Array(n)): OptimizerState {
  if (!Number.isSafeInteger(size) || size < 0) throw new ConfigError('size', `expected an integer >= 0, got ${size}`);
  const slots: Record<string, Float32Array> = {};
  for (const s of optimizerSlotNames(cfg.name)) slots[s] = alloc(size);
  return { t: 0, slots };
}
