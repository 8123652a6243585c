import { ConfigError } from './errors.js';

/**
 * Learning-rate schedules as plain JSON, evaluated in closed form from the step index
 * (so a resumed run needs no scheduler state, only its step counter).
 *
 * Every kind accepts `warmupSteps` (W, default 0). With W > 0 the schedule is PyTorch's
 * `SequentialLR([LinearLR(start_factor=1/W, end_factor=1, total_iters=W), main], milestones=[W])`:
 * - steps s < W:  lr = baseLr * (1/W + (1 - 1/W) * s / W)   (baseLr/W at s = 0, rising linearly);
 * - steps s >= W: the main schedule at k = s - W (so it starts from baseLr at s = W).
 *
 * Main schedules at k (0-based updates after warm-up):
 * - constant:    baseLr
 * - step:        baseLr * gamma^floor(k / stepSize)                (StepLR)
 * - exponential: baseLr * gamma^k                                  (ExponentialLR)
 * - cosine:      minLr + (baseLr - minLr) * (1 + cos(pi * min(k, T) / T)) / 2,  T = totalSteps - W
 *                (CosineAnnealingLR's closed form, eta_min = minLr, default 0; `totalSteps` counts the
 *                whole run including warm-up, and the rate stays at minLr after it instead of rising
 *                again as PyTorch's periodic form would).
 */
export type ScheduleConfig =
  | { type: 'constant'; warmupSteps?: number }
  | { type: 'step'; stepSize: number; gamma: number; warmupSteps?: number }
  | { type: 'exponential'; gamma: number; warmupSteps?: number }
  | { type: 'cosine'; totalSteps: number; minLr?: number; warmupSteps?: number };

export const SCHEDULE_TYPES = ['constant', 'step', 'exponential', 'cosine'] as const;
export type ScheduleType = (typeof SCHEDULE_TYPES)[number];

const KEYS: Record<ScheduleType, string[]> = {
  constant: ['type', 'warmupSteps'],
  step: ['type', 'stepSize', 'gamma', 'warmupSteps'],
  exponential: ['type', 'gamma', 'warmupSteps'],
  cosine: ['type', 'totalSteps', 'minLr', 'warmupSteps'],
};

const MAX_STEPS = Number.MAX_SAFE_INTEGER;

function intField(field: string, v: unknown, lo: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo) {
    throw new ConfigError(field, `expected an integer >= ${lo}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function gammaField(field: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new ConfigError(field, `expected a number in (0, 1], got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Check a schedule and return a normalised copy (`warmupSteps` present only when > 0).
 * `field` prefixes error fields, e.g. 'optimizer.schedule'.
 */
export function validateSchedule(s: unknown, field = 'schedule'): ScheduleConfig {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) {
    throw new ConfigError(field, `expected an object { type: ${SCHEDULE_TYPES.join(' | ')}, ... }`);
  }
  const o = s as Record<string, unknown>;
  if (!SCHEDULE_TYPES.includes(o.type as ScheduleType)) {
    throw new ConfigError(`${field}.type`, `expected one of ${SCHEDULE_TYPES.join(', ')}, got ${JSON.stringify(o.type)}`);
  }
  const type = o.type as ScheduleType;
  for (const k of Object.keys(o)) {
    if (!KEYS[type].includes(k)) throw new ConfigError(`${field}.${k}`, `unknown key for a ${type} schedule; allowed keys: ${KEYS[type].join(', ')}`);
  }
  const warmupSteps = o.warmupSteps === undefined ? 0 : intField(`${field}.warmupSteps`, o.warmupSteps, 0);
  let out: ScheduleConfig;
  switch (type) {
    case 'constant':
      out = { type };
      break;
    case 'step':
      out = { type, stepSize: intField(`${field}.stepSize`, o.stepSize, 1), gamma: gammaField(`${field}.gamma`, o.gamma) };
      break;
    case 'exponential':
      out = { type, gamma: gammaField(`${field}.gamma`, o.gamma) };
      break;
    case 'cosine': {
      const totalSteps = intField(`${field}.totalSteps`, o.totalSteps, 1);
      if (totalSteps <= warmupSteps) {
        throw new ConfigError(`${field}.totalSteps`, `expected an integer > warmupSteps (${warmupSteps}), got ${totalSteps}`);
      }
      const minLr = o.minLr === undefined ? 0 : o.minLr;
      if (typeof minLr !== 'number' || !(minLr >= 0 && Number.isFinite(minLr))) {
        throw new ConfigError(`${field}.minLr`, `expected a finite number >= 0, got ${JSON.stringify(o.minLr)}`);
      }
      out = { type, totalSteps, minLr };
      break;
    }
  }
  if (warmupSteps > 0) out.warmupSteps = warmupSteps;
  return out;
}

/**
 * The learning rate for the update with 0-based index `step`, for a validated schedule
 * (undefined = constant). See ScheduleConfig for the formulas.
 */
export function scheduledLr(baseLr: number, schedule: ScheduleConfig | undefined, step: number): number {
  if (!Number.isSafeInteger(step) || step < 0 || step > MAX_STEPS) throw new RangeError(`step must be an integer >= 0, got ${step}`);
  if (!schedule) return baseLr;
  const w = schedule.warmupSteps ?? 0;
  if (step < w) return baseLr * (1 / w + (1 - 1 / w) * (step / w));
  const k = step - w;
  switch (schedule.type) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * Math.pow(schedule.gamma, Math.floor(k / schedule.stepSize));
    case 'exponential':
      return baseLr * Math.pow(schedule.gamma, k);
    case 'cosine': {
      const minLr = schedule.minLr ?? 0;
      const t = schedule.totalSteps - w;
      return minLr + ((baseLr - minLr) * (1 + Math.cos((Math.PI * Math.min(k, t)) / t))) / 2;
    }
  }
}
