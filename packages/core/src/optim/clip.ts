import { ConfigError, DptrainError } from '../errors.js';
import { firstNonFiniteJs, sumSquares4 } from '../kernels/check.js';

/** Index of the first non-finite value, or -1 (the JS kernels' scan). */
export function firstNonFinite(a: Float32Array): number {
  return firstNonFiniteJs(a.length, a);
}

/**
 * L2 norm of a flat array: squares summed in float64 — element i into partial sum i mod 4,
 * then (s0 + s1) + (s2 + s3), the order of the update's mean pass (Kernels.meanSq) — then sqrt.
 */
export function globalNorm(a: Float32Array): number {
  return Math.sqrt(sumSquares4(a));
}

/**
 * The factor clip_grad_norm_ scales gradients by: min(1, maxNorm / (norm + 1e-6)),
 * as torch.nn.utils.clip_grad_norm_ computes it.
 */
export function clipCoefficient(norm: number, maxNorm: number): number {
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * Clip gradients in place to a global L2 norm of at most `maxNorm` (PyTorch clip_grad_norm_:
 * each value is multiplied by maxNorm / (norm + 1e-6) when that is < 1, rounded to float32).
 * Returns the norm before clipping. Non-finite gradients throw E_NONFINITE and leave `grads` untouched.
 */
export function clipByGlobalNorm(grads: Float32Array, maxNorm: number): number {
  if (typeof maxNorm !== 'number' || !(maxNorm > 0 && Number.isFinite(maxNorm))) {
    throw new ConfigError('maxNorm', `expected a finite number > 0, got ${maxNorm}`);
  }
  const bad = firstNonFinite(grads);
  if (bad >= 0) throw new DptrainError('E_NONFINITE', `gradient[${bad}] is ${grads[bad]}; cannot clip non-finite gradients`);
  const norm = globalNorm(grads);
  const coef = clipCoefficient(norm, maxNorm);
  if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i] *= coef;
  return norm;
}
