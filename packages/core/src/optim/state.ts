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

/** A fresh state (t = 0, zeroed slots) for `size` parameters. */
export function createOptimizerState(cfg: Pick<OptimizerConfig, 'name'>, size: number): OptimizerState {
  if (!Number.isSafeInteger(size) || size < 0) throw new ConfigError('size', `expected an integer >= 0, got ${size}`);
  const slots: Record<string, Float32Array> = {};
  for (const s of optimizerSlotNames(cfg.name)) slots[s] = new Float32Array(size);
  return { t: 0, slots };
}
