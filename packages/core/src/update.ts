import { type OptimizerConfig, type OptimizerState, clipByGlobalNorm, firstNonFinite, optimizerStep } from './optim/index.js';
import { scheduledLr } from './schedule.js';
import { DptrainError } from './errors.js';

export interface UpdateInfo {
  lr: number;
  /** Global norm of the mean gradient before clipping. */
  gradNorm: number;
}

/**
 * The parameter-server update, shared by the single-process trainer and the
 * coordinator: mean = sum / batchSize (in place), optional clipping by global norm,
 * the scheduled learning rate for update number `step`, then the optimizer step.
 * Non-finite gradients are refused before anything changes.
 */
export function applyUpdate(
  params: Float32Array,
  gradSum: Float32Array,
  batchSize: number,
  cfg: OptimizerConfig,
  state: OptimizerState,
  step: number,
): UpdateInfo {
  // one pass: refuse non-finite sums before anything changes, then mean and norm
  const n = gradSum.length;
  let sq = 0;
  const bad = firstNonFinite(gradSum);
  if (bad >= 0) throw new DptrainError('E_NONFINITE', `gradient element ${bad} is ${gradSum[bad]} at step ${step}; update refused`);
  for (let i = 0; i < n; i++) {
    const m = gradSum[i] / batchSize;
    gradSum[i] = m;
    const f = gradSum[i];
    sq += f * f;
  }
  let gradNorm: number;
  if (cfg.clipNorm !== undefined && cfg.clipNorm > 0) gradNorm = clipByGlobalNorm(gradSum, cfg.clipNorm);
  else gradNorm = Math.sqrt(sq);
  const lr = scheduledLr(cfg.lr, cfg.schedule, step);
  optimizerStep(cfg, params, gradSum, state, lr);
  return { lr, gradNorm };
}
