/**
 * The element-wise loops behind optimizerStep, one per update rule, over flat Float32Arrays.
 * They check nothing (optimizerStep and applyUpdate do that first) and do exactly the float64
 * arithmetic that step.ts documents, storing float32, so their results are bit-identical to
 * the straightforward per-element loop.
 *
 * The gradient element a loop applies is `fround(src[i] * scale)`: `scale` 1 reads `src`
 * as it is (x·1 = x exactly for a float32 x), any other scale is a clip coefficient fused
 * into the step (the old separate pass stored `src[i] * coef` as float32 and read it back).
 * With the decay terms on, g = that + l2·w + l1·sign(w), added in that order.
 *
 * Each loop has a fast path for the common case, no scale and no decay terms: g is src[i]
 * itself, and the loop body does nothing else. Those fast paths are the kernels' methods when
 * they have them (sgdStep, momentumStep, rmspropStep, adagradStep, adamStep: f64x2 SIMD for
 * wasm), else their JS loops in kernels/check.ts: the same bits either way. Cheap bodies
 * (sgd, momentum) are unrolled four times with the length hoisted, which V8 runs ~1.3-1.5× faster; the bodies of the
 * adaptive optimizers are bound by their divisions and square roots, where unrolling
 * measured no faster. The general path (scale or decay terms) is one plain loop.
 *
 * An unrolled loop does the n % 4 leading elements first, so that nothing after its hot loop
 * lacks type feedback: with the remainder after it, V8 11 re-entered a hot loop's on-stack-
 * replaced code on every call and deoptimised at the remainder loop each time.
 */

import type { Kernels } from '../kernels/types.js';
import { adagradStepJs, adamStepJs, momentumStepJs, rmspropStepJs } from '../kernels/check.js';

const fround = Math.fround;

/** The terms that turn a source value into the gradient an update applies (see the file comment). */
export interface GradTerms {
  /** Multiplies each source value, rounded to float32; 1 = none. */
  scale: number;
  /** L2 coefficient added as l2·w (0 = off; adamw passes 0, its decay is decoupled). */
  l2: number;
  /** L1 coefficient added as l1·sign(w) (0 = off). */
  l1: number;
}

/** Whether the gradient terms are the plain gradient (no clip scale, L2 or L1): the loops' fast paths. */
export function plain(t: GradTerms): boolean {
  return t.scale === 1 && t.l2 === 0 && t.l1 === 0;
}

/** sgd: w -= lr·g. The fast path is the kernels' sgdStep (SIMD for wasm; the same bits everywhere). */
export function sgdLoop(p: Float32Array, src: Float32Array, t: GradTerms, lr: number, kernels: Kernels): void {
  const n = p.length | 0;
  if (plain(t)) return kernels.sgdStep(n, p, src, lr);
  const { scale, l2, l1 } = t;
  for (let i = 0; i < n; i++) {
    const w = p[i];
    let g = fround(src[i] * scale);
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    p[i] = w - lr * g;
  }
}

/** momentum: b = μ·b + g; w -= lr·b.  nesterov: the same b, w -= lr·(g + μ·b). */
export function momentumLoop(p: Float32Array, src: Float32Array, t: GradTerms, vel: Float32Array, lr: number, mu: number, nesterov: boolean, kernels?: Kernels): void {
  const n = p.length | 0;
  if (plain(t)) {
    if (kernels?.momentumStep !== undefined) return kernels.momentumStep(n, p, src, vel, lr, mu, nesterov);
    return momentumStepJs(n, p, src, vel, lr, mu, nesterov);
  }
  const { scale, l2, l1 } = t;
  for (let i = 0; i < n; i++) {
    const w = p[i];
    let g = fround(src[i] * scale);
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    const b = mu * vel[i] + g;
    vel[i] = b;
    p[i] = w - lr * (nesterov ? g + mu * b : b);
  }
}

/** adagrad: s += g²; w -= lr·g / (√s + ε). */
export function adagradLoop(p: Float32Array, src: Float32Array, t: GradTerms, sum: Float32Array, lr: number, eps: number, kernels?: Kernels): void {
  const n = p.length | 0;
  if (plain(t)) {
    if (kernels?.adagradStep !== undefined) return kernels.adagradStep(n, p, src, sum, lr, eps);
    return adagradStepJs(n, p, src, sum, lr, eps);
  }
  const { scale, l2, l1 } = t;
  for (let i = 0; i < n; i++) {
    const w = p[i];
    let g = fround(src[i] * scale);
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    const s = sum[i] + g * g;
    sum[i] = s;
    p[i] = w - (lr * g) / (Math.sqrt(s) + eps);
  }
}

/** rmsprop: v = ρ·v + (1-ρ)·g²; w -= lr·g / (√v + ε). */
export function rmspropLoop(p: Float32Array, src: Float32Array, t: GradTerms, sq: Float32Array, lr: number, rho: number, eps: number, kernels?: Kernels): void {
  const n = p.length | 0;
  if (plain(t)) {
    if (kernels?.rmspropStep !== undefined) return kernels.rmspropStep(n, p, src, sq, lr, rho, eps);
    return rmspropStepJs(n, p, src, sq, lr, rho, eps);
  }
  const c = 1 - rho;
  const { scale, l2, l1 } = t;
  for (let i = 0; i < n; i++) {
    const w = p[i];
    let g = fround(src[i] * scale);
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    const v = rho * sq[i] + c * g * g;
    sq[i] = v;
    p[i] = w - (lr * g) / (Math.sqrt(v) + eps);
  }
}

/** Adam's per-step constants: β1, β2, ε, the bias corrections 1-β1^t, 1-β2^t, and the decoupled decay lr·wd (adamw; else 0). */
export interface AdamConstants {
  b1: number;
  b2: number;
  eps: number;
  bc1: number;
  bc2: number;
  decay: number;
}

/**
 * adam / adamw: m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; w = w - decay·w; w -= lr·(m/bc1) / (√(v/bc2) + ε).
 * The fast path (plain terms) is the kernels' adamStep when they have it (f64x2 SIMD for wasm),
 * else its JS loop adamStepJs: the same bits either way.
 */
export function adamLoop(p: Float32Array, src: Float32Array, t: GradTerms, m: Float32Array, v: Float32Array, lr: number, k: AdamConstants, kernels?: Kernels): void {
  const n = p.length | 0;
  const { b1, b2, eps, bc1, bc2, decay } = k;
  if (plain(t)) {
    if (kernels?.adamStep !== undefined) return kernels.adamStep(n, p, src, m, v, lr, b1, b2, eps, bc1, bc2, decay);
    return adamStepJs(n, p, src, m, v, lr, b1, b2, eps, bc1, bc2, decay);
  }
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const { scale, l2, l1 } = t;
  for (let i = 0; i < n; i++) {
    const w = p[i];
    let g = fround(src[i] * scale);
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    const mi = b1 * m[i] + c1 * g;
    const vi = b2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = w - decay * w - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}
