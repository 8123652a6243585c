import { type OptimizerConfig, type OptimizerState, clipByGlobalNorm, clipCoefficient, firstNonFinite, optimizerStep } from './optim/index.js';
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
 *
 * Non-finite gradients are refused (DptrainError E_NONFINITE naming the first bad element)
 * before the parameters or the optimizer state change; `gradSum` may then already hold the
 * mean. One pass over the gradient divides, sums the squares for the norm and checks
 * finiteness at once: the float64 sum of squares of float32 values (each at most ~1.2e77)
 * is finite exactly when every value is, so a non-finite sum means a non-finite gradient,
 * including a sum of finite worker gradients that overflowed. The optimizer is then told
 * the gradient is checked and does not scan it again.
 */
export function applyUpdate(
  params: Float32Array,
  gradSum: Float32Array,
  batchSize: number,
  cfg: OptimizerConfig,
  state: OptimizerState,
  step: number,
): UpdateInfo {
  const n = gradSum.length;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const m = gradSum[i] / batchSize;
    gradSum[i] = m;
    const f = gradSum[i];
    sq += f * f;
  }
  if (!Number.isFinite(sq)) {
    const bad = firstNonFinite(gradSum);
    if (bad >= 0) throw new DptrainError('E_NONFINITE', `gradient element ${bad} is ${gradSum[bad]} at step ${step}; update refused`);
    throw new DptrainError('E_NONFINITE', `the gradient's sum of squares is ${sq} at step ${step}; update refused`);
  }
  const gradNorm = Math.sqrt(sq);
  const clip = cfg.clipNorm;
  if (clip !== undefined && clip > 0) {
    // clipByGlobalNorm's arithmetic (its norm is this same float64 sum in index order), without its scan
    if (!Number.isFinite(clip)) clipByGlobalNorm(gradSum, clip); // throws the ConfigError
    const coef = clipCoefficient(gradNorm, clip);
    if (coef < 1) for (let i = 0; i < n; i++) gradSum[i] *= coef;
  }
  const lr = scheduledLr(cfg.lr, cfg.schedule, step);
  optimizerStep(cfg, params, gradSum, state, lr, { checked: true });
  return { lr, gradNorm };
}
