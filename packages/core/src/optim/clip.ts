import { ConfigError, DptrainError } from '../errors.js';
import { sumSquares4 } from '../kernels/check.js';

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(a: Float32Array): number {
  // fast pass: x·0 is ±0 for finite x and NaN otherwise; four sums overlap in the CPU
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  const n4 = a.length & ~3;
  for (let i = 0; i < n4; i += 4) {
    a0 += a[i] * 0;
    a1 += a[i + 1] * 0;
    a2 += a[i + 2] * 0;
    a3 += a[i + 3] * 0;
  }
  for (let i = n4; i < a.length; i++) a0 += a[i] * 0;
  if (a0 + a1 + a2 + a3 === 0) return -1;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
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
