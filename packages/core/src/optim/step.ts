import { ConfigError, DptrainError, ShapeError } from '../errors.js';
import { firstNonFinite } from './clip.js';
import { OPTIMIZER_DEFAULTS, optimizerSlotNames, type OptimizerConfig } from './config.js';
import { adagradLoop, adamLoop, momentumLoop, rmspropLoop, sgdLoop, type GradTerms, plain } from './loops.js';
import type { Kernels } from '../kernels/types.js';
import { jsKernels } from '../kernels/js.js';
import type { OptimizerState } from './state.js';

/** Options of optimizerStep. */
export interface StepOptions {
  /**
   * The caller has verified that every gradient is finite (default false: optimizerStep
   * scans them). Applying a non-finite gradient would corrupt the parameters for good.
   */
  checked?: boolean;
}

/**
 * Apply one update in place to `params` and `state` (grads are read-only), with learning rate
 * `lr` (already scheduled for this step). `cfg` should come from validateOptimizerConfig.
 * `cfg.clipNorm` is NOT applied here: the caller clips (clipByGlobalNorm) before the step, so
 * it can report the pre-clip norm and so the gradient is never clipped twice.
 *
 * Per element, in float64, storing float32. With w the parameter, t = state.t + 1:
 *   g  = grad + wd·w (all but adamw) + l1·sign(w)
 *   sgd:       w -= lr·g
 *   momentum:  b = μ·b + g;  w -= lr·b                       (torch SGD, dampening 0)
 *   nesterov:  b = μ·b + g;  w -= lr·(g + μ·b)               (torch SGD nesterov=True)
 *   adagrad:   s += g²;      w -= lr·g / (√s + ε)            (torch Adagrad, lr_decay 0)
 *   rmsprop:   v = ρ·v + (1-ρ)·g²;  w -= lr·g / (√v + ε)     (torch RMSprop, alpha = ρ)
 *   adam:      m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;
 *              w -= lr · (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)
 *   adamw:     w -= lr·wd·w first (decoupled), then the adam update without wd in g.
 *
 * Everything is checked before anything changes: lengths, lr, and that every gradient is
 * finite (else DptrainError E_NONFINITE naming the first bad index; skipped with
 * `opts.checked`, for a caller that has just verified it, as applyUpdate does). Then state.t++.
 */
export function optimizerStep(
  cfg: OptimizerConfig,
  params: Float32Array,
  grads: Float32Array,
  state: OptimizerState,
  lr: number,
  opts: StepOptions = {},
): void {
  checkStepInputs(cfg, params, grads, state, lr);
  const bad = opts.checked === true ? -1 : firstNonFinite(grads);
  if (bad >= 0) throw new DptrainError('E_NONFINITE', `optimizer: gradient[${bad}] is ${grads[bad]}; step not applied`);
  applyStep(cfg, params, grads, 1, state, lr);
}

/**
 * The checks optimizerStep makes before anything changes, except the finite scan: lengths of
 * the gradients and state slots, lr, state.t. Throws ShapeError / ConfigError.
 */
export function checkStepInputs(cfg: OptimizerConfig, params: Float32Array, grads: Float32Array, state: OptimizerState, lr: number): void {
  const n = params.length;
  if (grads.length !== n) throw new ShapeError(`optimizer: ${grads.length} gradients for ${n} parameters`);
  if (typeof lr !== 'number' || !(lr >= 0 && Number.isFinite(lr))) throw new ConfigError('lr', `expected a finite number >= 0, got ${lr}`);
  if (!Number.isSafeInteger(state.t) || state.t < 0) throw new ConfigError('optimizer.state.t', `expected an integer >= 0, got ${state.t}`);
  for (const s of optimizerSlotNames(cfg.name)) {
    const a = state.slots[s];
    if (!(a instanceof Float32Array) || a.length !== n) {
      throw new ShapeError(`optimizer: state slot ${s} ${a instanceof Float32Array ? `has ${a.length} values` : 'is missing'}, expected ${n}`);
    }
  }
}

/** The gradient terms applyStep's loops get for `cfg`: the clip scale, L2 (none for adamw: its decay is decoupled) and L1. */
function gradTerms(cfg: OptimizerConfig, scale: number): GradTerms {
  return { scale, l2: cfg.name === 'adamw' ? 0 : (cfg.weightDecay ?? OPTIMIZER_DEFAULTS.weightDecay), l1: cfg.l1 ?? OPTIMIZER_DEFAULTS.l1 };
}

/** Whether applyStep runs plain SGD's kernels.sgdStep for `cfg` at scale 1 (sgd without weight decay or L1). */
export function plainSgd(cfg: OptimizerConfig): boolean {
  return cfg.name === 'sgd' && plain(gradTerms(cfg, 1));
}

/**
 * The update itself, on inputs checkStepInputs accepted and a gradient known to be finite:
 * gradient element i is fround(src[i] * scale) (scale 1: src[i]; applyUpdate passes its clip
 * coefficient, fusing the clip into the step). Then state.t++. `kernels` runs plain SGD's loop
 * (sgdStep) and, when it has them, the plain loops of momentum / nesterov (momentumStep), adagrad
 * (adagradStep), rmsprop (rmspropStep), adam and adamw (adamStep): every kernel gives the same bits.
 */
export function applyStep(cfg: OptimizerConfig, params: Float32Array, src: Float32Array, scale: number, state: OptimizerState, lr: number, kernels: Kernels = jsKernels): void {
  const wd = cfg.weightDecay ?? OPTIMIZER_DEFAULTS.weightDecay;
  const terms = gradTerms(cfg, scale);
  const t = state.t + 1;
  const slots = state.slots;

  switch (cfg.name) {
    case 'sgd':
      sgdLoop(params, src, terms, lr, kernels);
      break;
    case 'momentum':
    case 'nesterov':
      momentumLoop(params, src, terms, slots.velocity, lr, cfg.momentum ?? OPTIMIZER_DEFAULTS.momentum, cfg.name === 'nesterov', kernels);
      break;
    case 'adagrad':
      adagradLoop(params, src, terms, slots.sum, lr, cfg.eps ?? OPTIMIZER_DEFAULTS.eps, kernels);
      break;
    case 'rmsprop':
      rmspropLoop(params, src, terms, slots.sq, lr, cfg.rho ?? OPTIMIZER_DEFAULTS.rho, cfg.eps ?? OPTIMIZER_DEFAULTS.eps, kernels);
      break;
    case 'adam':
    case 'adamw': {
      const b1 = cfg.beta1 ?? OPTIMIZER_DEFAULTS.beta1;
      const b2 = cfg.beta2 ?? OPTIMIZER_DEFAULTS.beta2;
      const eps = cfg.eps ?? OPTIMIZER_DEFAULTS.eps;
      const decay = cfg.name === 'adamw' ? lr * wd : 0;
      adamLoop(params, src, terms, slots.m, slots.v, lr, { b1, b2, eps, bc1: 1 - Math.pow(b1, t), bc2: 1 - Math.pow(b2, t), decay }, kernels);
      break;
    }
    default:
      throw new ConfigError('optimizer.name', `unknown optimizer ${JSON.stringify((cfg as { name: unknown }).name)}`);
  }
  state.t = t;
}
