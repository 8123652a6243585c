import { ConfigError } from '../errors.js';
import { validateSchedule, type ScheduleConfig } from '../schedule.js';

export const OPTIMIZER_NAMES = ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/**
 * Optimizer hyperparameters as plain JSON. Update formulas follow torch.optim (see step.ts).
 * Differences from PyTorch's defaults, on purpose:
 * - rmsprop `rho` (PyTorch `alpha`) defaults to 0.9, not 0.99;
 * - adagrad `eps` defaults to 1e-8, not 1e-10;
 * - adamw `weightDecay` defaults to 0, not 0.01.
 */
export interface OptimizerConfig {
  name: OptimizerName;
  /** Base learning rate, finite and > 0 (the schedule scales it per step). */
  lr: number;
  /** momentum / nesterov: [0, 1), default 0.9 (PyTorch SGD momentum, dampening 0). */
  momentum?: number;
  /** adam / adamw: [0, 1), default 0.9. */
  beta1?: number;
  /** adam / adamw: [0, 1), default 0.999. */
  beta2?: number;
  /** adagrad / rmsprop / adam / adamw: (0, 1], default 1e-8. */
  eps?: number;
  /** rmsprop decay of the squared-gradient average (PyTorch `alpha`): [0, 1), default 0.9. */
  rho?: number;
  /** >= 0, default 0. L2 added to the gradient (g + wd·w); decoupled (w -= lr·wd·w) for adamw. */
  weightDecay?: number;
  /** >= 0, default 0. Adds l1·sign(w) to the gradient (all optimizers). */
  l1?: number;
  /** > 0: the caller clips the gradient to this global L2 norm (clipByGlobalNorm) before optimizerStep. */
  clipNorm?: number;
  /** Learning-rate schedule; default constant. */
  schedule?: ScheduleConfig;
}

/** Defaults merged under a config by validateOptimizerConfig. */
export const OPTIMIZER_DEFAULTS = {
  momentum: 0.9,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  rho: 0.9,
  weightDecay: 0,
  l1: 0,
} as const;

/** Hyperparameters each optimizer uses besides the common ones (lr, weightDecay, l1, clipNorm, schedule). */
const OWN_KEYS: Record<OptimizerName, readonly ('momentum' | 'beta1' | 'beta2' | 'eps' | 'rho')[]> = {
  sgd: [],
  momentum: ['momentum'],
  nesterov: ['momentum'],
  adagrad: ['eps'],
  rmsprop: ['rho', 'eps'],
  adam: ['beta1', 'beta2', 'eps'],
  adamw: ['beta1', 'beta2', 'eps'],
};
const COMMON_KEYS = ['name', 'lr', 'weightDecay', 'l1', 'clipNorm', 'schedule'];
const ALL_KEYS = [...COMMON_KEYS, 'momentum', 'beta1', 'beta2', 'eps', 'rho'];

type Range = { lo: number; hi: number; loOpen: boolean; hiOpen: boolean };
const RANGES: Record<string, Range> = {
  lr: { lo: 0, hi: Infinity, loOpen: true, hiOpen: true },
  momentum: { lo: 0, hi: 1, loOpen: false, hiOpen: true },
  beta1: { lo: 0, hi: 1, loOpen: false, hiOpen: true },
  beta2: { lo: 0, hi: 1, loOpen: false, hiOpen: true },
  rho: { lo: 0, hi: 1, loOpen: false, hiOpen: true },
  eps: { lo: 0, hi: 1, loOpen: true, hiOpen: false },
  weightDecay: { lo: 0, hi: Infinity, loOpen: false, hiOpen: true },
  l1: { lo: 0, hi: Infinity, loOpen: false, hiOpen: true },
  clipNorm: { lo: 0, hi: Infinity, loOpen: true, hiOpen: true },
};

function describe(r: Range): string {
  if (r.hi === Infinity) return `a finite number ${r.loOpen ? '>' : '>='} ${r.lo}`;
  return `a number in ${r.loOpen ? '(' : '['}${r.lo}, ${r.hi}${r.hiOpen ? ')' : ']'}`;
}

function num(key: string, v: unknown): number {
  const r = RANGES[key];
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (r.loOpen ? v > r.lo : v >= r.lo) &&
    (r.hiOpen ? v < r.hi : v <= r.hi);
  if (!ok) throw new ConfigError(`optimizer.${key}`, `expected ${describe(r)}, got ${JSON.stringify(v) ?? String(v)}`);
  return v as number;
}

/**
 * Check an optimizer config and return a normalised copy: the defaults of the hyperparameters
 * that optimizer uses are filled in, `schedule` is always present. Unknown keys and
 * hyperparameters the chosen optimizer does not use are errors naming the key.
 */
export function validateOptimizerConfig(c: unknown): OptimizerConfig {
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new ConfigError('optimizer', 'expected an object { name, lr, ... }');
  const o = c as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!ALL_KEYS.includes(k)) throw new ConfigError(`optimizer.${k}`, `unknown key; allowed keys: ${ALL_KEYS.join(', ')}`);
  }
  if (!OPTIMIZER_NAMES.includes(o.name as OptimizerName)) {
    throw new ConfigError('optimizer.name', `expected one of ${OPTIMIZER_NAMES.join(', ')}, got ${JSON.stringify(o.name)}`);
  }
  const name = o.name as OptimizerName;
  const own = OWN_KEYS[name];
  for (const k of ['momentum', 'beta1', 'beta2', 'eps', 'rho'] as const) {
    if (o[k] !== undefined && !own.includes(k)) {
      const users = OPTIMIZER_NAMES.filter((n) => OWN_KEYS[n].includes(k));
      throw new ConfigError(`optimizer.${k}`, `not used by ${name} (only by ${users.join(', ')})`);
    }
  }
  const out: OptimizerConfig = { name, lr: num('lr', o.lr) };
  for (const k of own) out[k] = num(k, o[k] === undefined ? OPTIMIZER_DEFAULTS[k] : o[k]);
  out.weightDecay = num('weightDecay', o.weightDecay === undefined ? OPTIMIZER_DEFAULTS.weightDecay : o.weightDecay);
  out.l1 = num('l1', o.l1 === undefined ? OPTIMIZER_DEFAULTS.l1 : o.l1);
  if (o.clipNorm !== undefined) out.clipNorm = num('clipNorm', o.clipNorm);
  out.schedule = o.schedule === undefined ? { type: 'constant' } : validateSchedule(o.schedule, 'optimizer.schedule');
  if (out.schedule.type === 'cosine' && (out.schedule.minLr ?? 0) > out.lr) {
    throw new ConfigError('optimizer.schedule.minLr', `expected a number in [0, lr = ${out.lr}], got ${out.schedule.minLr}`);
  }
  return out;
}

/** Names of the per-parameter state arrays an optimizer keeps, in checkpoint order. */
export function optimizerSlotNames(name: OptimizerName): string[] {
  switch (name) {
    case 'sgd':
      return [];
    case 'momentum':
    case 'nesterov':
      return ['velocity'];
    case 'adagrad':
      return ['sum'];
    case 'rmsprop':
      return ['sq'];
    case 'adam':
    case 'adamw':
      return ['m', 'v'];
    default:
      throw new ConfigError('optimizer.name', `expected one of ${OPTIMIZER_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  }
}
