import { ConfigError, DptrainError } from './errors.js';
import { type OptimizerConfig, type OptimizerState, clipCoefficient, firstNonFinite } from './optim/index.js';
import { applyStep, checkStepInputs } from './optim/step.js';
import { scheduledLr } from './schedule.js';

export interface UpdateInfo {
  lr: number;
  /** Global norm of the mean gradient before clipping. */
  gradNorm: number;
}

/**
 * The parameter-server update, shared by the single-process trainer and the
 * coordinator: mean = sum / batchSize (in place), optional clipping by global norm,
 * the scheduled learning rate for update number `step`, then the optimizer step.
 * Bit-identical to dividing, clipByGlobalNorm and optimizerStep one after the other, in two passes:
 *
 * 1. One pass divides in place, sums the squares for the norm in float64 in index order and
 *    thereby checks finiteness: the float64 sum of squares of float32 values (each at most
 *    ~1.2e77) is finite exactly when every value is, so a non-finite sum means a non-finite
 *    gradient, including a sum of finite worker gradients that overflowed. A power-of-two batch
 *    size divides by multiplying with its reciprocal, which is exact and so gives the same values.
 * 2. The optimizer step, with the clip coefficient fused into it (1 when the clip does not apply).
 *
 * Refused before the parameters or the optimizer state change: bad lengths, lr or state
 * (ShapeError / ConfigError, as optimizerStep), then non-finite gradients (DptrainError
 * E_NONFINITE naming the first bad element). `gradSum` is scratch: afterwards it holds the
 * unclipped mean (also when refused for a non-finite value).
 */
export function applyUpdate(
  params: Float32Array,
  gradSum: Float32Array,
  batchSize: number,
  cfg: OptimizerConfig,
  state: OptimizerState,
  step: number,
): UpdateInfo {
  const lr = scheduledLr(cfg.lr, cfg.schedule, step);
  checkStepInputs(cfg, params, gradSum, state, lr);
  const clip = cfg.clipNorm;
  const clipping = clip !== undefined && clip > 0;
  if (clipping && !Number.isFinite(clip)) throw new ConfigError('maxNorm', `expected a finite number > 0, got ${clip}`);

  const sq = meanInPlace(gradSum, batchSize);
  if (!Number.isFinite(sq)) {
    const bad = firstNonFinite(gradSum);
    if (bad >= 0) throw new DptrainError('E_NONFINITE', `gradient element ${bad} is ${gradSum[bad]} at step ${step}; update refused`);
    throw new DptrainError('E_NONFINITE', `the gradient's sum of squares is ${sq} at step ${step}; update refused`);
  }
  const gradNorm = Math.sqrt(sq);
  // clipByGlobalNorm's arithmetic (its norm is this same float64 sum in index order), fused into the step
  applyStep(cfg, params, gradSum, clipping ? clipCoefficient(gradNorm, clip) : 1, state, lr);
  return { lr, gradNorm };
}

const fround = Math.fround;

/**
 * sum[i] = fround(sum[i] / b) in place; returns Σ sum[i]² summed in float64 in index order.
 * For b an integer power of two (up to 2^30) x·(1/b) = x/b exactly for every float32 x, and
 * that loop, free of divisions, is unrolled four times (the n % 4 leading elements first, see
 * optim/loops.ts). For other b the two can round apart (e.g. x = 294·2^-150, b = 98).
 */
function meanInPlace(sum: Float32Array, b: number): number {
  const n = sum.length | 0;
  let sq = 0;
  let i = 0;
  if (Number.isInteger(b) && b >= 1 && b <= 2 ** 30 && (b & (b - 1)) === 0) {
    const inv = 1 / b;
    for (; i < (n & 3); i++) {
      const m = fround(sum[i] * inv);
      sum[i] = m;
      sq += m * m;
    }
    for (; i < n; i += 4) {
      const m0 = fround(sum[i] * inv);
      const m1 = fround(sum[i + 1] * inv);
      const m2 = fround(sum[i + 2] * inv);
      const m3 = fround(sum[i + 3] * inv);
      sum[i] = m0;
      sum[i + 1] = m1;
      sum[i + 2] = m2;
      sum[i + 3] = m3;
      sq += m0 * m0;
      sq += m1 * m1;
      sq += m2 * m2;
      sq += m3 * m3;
    }
    return sq;
  }
  for (; i < n; i++) {
    const m = fround(sum[i] / b);
    sum[i] = m;
    sq += m * m;
  }
  return sq;
}
