import { describe, expect, it } from 'vitest';
import { DptrainError } from '../errors.js';
import { Rng } from '../rng.js';
import { scheduledLr } from '../schedule.js';
import { applyUpdate } from '../update.js';
import { OPTIMIZER_NAMES, type OptimizerConfig, type OptimizerName, validateOptimizerConfig } from './config.js';
import { type OptimizerState, createOptimizerState } from './state.js';
import { optimizerStep } from './step.js';

// The fast loops (unrolled, specialised, clip fused into the step, mean by an exact reciprocal)
// against the straightforward per-element code they replaced, bit for bit.

/** The optimizer step as it was written before the fast loops: one closure-based loop per rule. */
function referenceStep(cfg: OptimizerConfig, params: Float32Array, grads: Float32Array, state: OptimizerState, lr: number): void {
  const n = params.length;
  const wd = cfg.weightDecay ?? 0;
  const l1 = cfg.l1 ?? 0;
  const l2 = cfg.name === 'adamw' ? 0 : wd;
  const grad = (i: number): number => {
    const w = params[i];
    let g = grads[i];
    if (l2 !== 0) g = g + l2 * w;
    if (l1 !== 0) g = g + l1 * Math.sign(w);
    return g;
  };
  const t = state.t + 1;
  const s = state.slots;
  switch (cfg.name) {
    case 'sgd':
      for (let i = 0; i < n; i++) params[i] = params[i] - lr * grad(i);
      break;
    case 'momentum':
    case 'nesterov':
      for (let i = 0; i < n; i++) {
        const g = grad(i);
        const b = cfg.momentum! * s.velocity[i] + g;
        s.velocity[i] = b;
        params[i] = params[i] - lr * (cfg.name === 'nesterov' ? g + cfg.momentum! * b : b);
      }
      break;
    case 'adagrad':
      for (let i = 0; i < n; i++) {
        const g = grad(i);
        const v = s.sum[i] + g * g;
        s.sum[i] = v;
        params[i] = params[i] - (lr * g) / (Math.sqrt(v) + cfg.eps!);
      }
      break;
    case 'rmsprop':
      for (let i = 0; i < n; i++) {
        const g = grad(i);
        const v = cfg.rho! * s.sq[i] + (1 - cfg.rho!) * g * g;
        s.sq[i] = v;
        params[i] = params[i] - (lr * g) / (Math.sqrt(v) + cfg.eps!);
      }
      break;
    case 'adam':
    case 'adamw': {
      const [b1, b2] = [cfg.beta1!, cfg.beta2!];
      const bc1 = 1 - Math.pow(b1, t);
      const bc2 = 1 - Math.pow(b2, t);
      const decay = cfg.name === 'adamw' ? lr * wd : 0;
      for (let i = 0; i < n; i++) {
        const g = grad(i);
        const mi = b1 * s.m[i] + (1 - b1) * g;
        const vi = b2 * s.v[i] + (1 - b2) * g * g;
        s.m[i] = mi;
        s.v[i] = vi;
        const w = params[i] - decay * params[i];
        params[i] = w - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + cfg.eps!);
      }
      break;
    }
  }
  state.t = t;
}

/**
 * applyUpdate written plainly: divide in place with the squares summed (float64, element i
 * into partial sum i mod 4, then (s0 + s1) + (s2 + s3)), clip pass, step.
 */
function referenceUpdate(params: Float32Array, gradSum: Float32Array, B: number, cfg: OptimizerConfig, state: OptimizerState, step: number) {
  const part = [0, 0, 0, 0];
  for (let i = 0; i < gradSum.length; i++) {
    gradSum[i] = gradSum[i] / B;
    part[i % 4] += gradSum[i] * gradSum[i];
  }
  const sq = part[0] + part[1] + (part[2] + part[3]);
  if (!Number.isFinite(sq)) throw new Error('non-finite');
  const gradNorm = Math.sqrt(sq);
  if (cfg.clipNorm !== undefined) {
    const coef = Math.min(1, cfg.clipNorm / (gradNorm + 1e-6));
    if (coef < 1) for (let i = 0; i < gradSum.length; i++) gradSum[i] *= coef;
  }
  const lr = scheduledLr(cfg.lr, cfg.schedule, step);
  referenceStep(cfg, params, gradSum, state, lr);
  return { lr, gradNorm };
}

const LENGTHS = [1, 3, 7, 1001];
const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** `what` and the first index where the float32 bit patterns of a and b differ, or 'same' (cheaper than a deep equal). */
function diff(what: string, a: Float32Array, b: Float32Array): string {
  if (a.length !== b.length) return `${what}: lengths ${a.length} and ${b.length}`;
  const x = bits(a);
  const y = bits(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return `${what}[${i}]: ${a[i]} and ${b[i]}`;
  return 'same';
}
const NEG_ZERO = 0x80000000;

/**
 * Parameters: normal values at magnitudes 1, 1e-3 and 1e-6 in turn (on small weights a rounding
 * slip in the gradient shows in the result); from length 7 on +0 at index 1 and -0 at n-2.
 */
function randomParams(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = [1, 1e-3, 1e-6][i % 3] * rng.nextNormal();
  if (n >= 7) {
    a[1] = 0;
    a[n - 2] = -0;
  }
  return a;
}

/** 294·2^-150, a float32 subnormal whose x/98 and x·(1/98) round to different float32 values. */
const SUBNORMAL = 294 * 2 ** -150;

/**
 * A gradient (or sum): normal values times `scale`; from length 7 on +0 at index 2, -0 at n-2
 * (where the parameter is -0 too: sign of zero) and SUBNORMAL at 3.
 */
function randomGrad(rng: Rng, n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.nextNormal();
  if (n >= 7) {
    a[2] = 0;
    a[3] = SUBNORMAL;
    a[n - 2] = -0;
  }
  return a;
}

function caught(f: () => unknown): DptrainError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DptrainError);
    return e as DptrainError;
  }
  throw new Error('expected an error, none was thrown');
}

function expectSameState(a: { params: Float32Array; state: OptimizerState }, b: { params: Float32Array; state: OptimizerState }): void {
  expect(diff('params', a.params, b.params)).toBe('same');
  expect(Object.keys(a.state.slots)).toEqual(Object.keys(b.state.slots));
  for (const k of Object.keys(a.state.slots)) expect(diff(k, a.state.slots[k], b.state.slots[k])).toBe('same');
  expect(a.state.t).toBe(b.state.t);
}

/** Hyperparameters away from the defaults, so every term of every rule matters. */
const OWN: Record<OptimizerName, Record<string, number>> = {
  sgd: {},
  momentum: { momentum: 0.8 },
  nesterov: { momentum: 0.7 },
  adagrad: { eps: 1e-6 },
  rmsprop: { rho: 0.95, eps: 1e-7 },
  adam: { beta1: 0.85, beta2: 0.99, eps: 1e-7 },
  adamw: { beta1: 0.85, beta2: 0.99, eps: 1e-7 },
};
const DECAY: [string, Record<string, number>][] = [
  ['no decay', {}],
  ['weight decay', { weightDecay: 0.02 }],
  ['l1', { l1: 0.003 }],
  ['weight decay + l1', { weightDecay: 0.02, l1: 0.003 }],
];

it('the planted test values mean something: SUBNORMAL / 98 and SUBNORMAL · (1/98) round apart', () => {
  expect(Math.fround(SUBNORMAL)).toBe(SUBNORMAL);
  expect(Math.fround(SUBNORMAL / 98)).not.toBe(Math.fround(SUBNORMAL * (1 / 98)));
  expect(bits(randomParams(new Rng(1), 7))[5]).toBe(NEG_ZERO);
});

describe.each(OPTIMIZER_NAMES.map((n) => [n]))('%s: fast loops against the reference, bit for bit', (name) => {
  it.each(DECAY)('optimizerStep, %s, 4 steps, lengths 1, 3, 7, 1001', (_, decay) => {
    const cfg = validateOptimizerConfig({ name, lr: 0.01, ...OWN[name], ...decay });
    for (const n of LENGTHS) {
      const rng = new Rng(n);
      const init = randomParams(rng, n);
      const fast = { params: Float32Array.from(init), state: createOptimizerState(cfg, n) };
      const ref = { params: Float32Array.from(init), state: createOptimizerState(cfg, n) };
      for (let s = 0; s < 4; s++) {
        const g = randomGrad(rng, n, 0.5);
        optimizerStep(cfg, fast.params, g, fast.state, 0.01 + s / 100);
        referenceStep(cfg, ref.params, Float32Array.from(g), ref.state, 0.01 + s / 100);
        expectSameState(fast, ref);
      }
    }
  });

  const variants: [string, Record<string, unknown>][] = [
    ...DECAY,
    ['clip that applies', { clipNorm: 1e-3 }],
    ['clip that applies, weight decay + l1', { clipNorm: 1e-3, weightDecay: 0.02, l1: 0.003 }],
    ['clip above the norm (no-op), cosine schedule', { clipNorm: 1e9, schedule: { type: 'cosine', totalSteps: 4 } }],
  ];
  it.each(variants)('applyUpdate, %s, batch 512 (exact reciprocal) and 98 (division), 4 steps', (_, extra) => {
    const cfg = validateOptimizerConfig({ name, lr: 0.01, ...OWN[name], ...extra });
    for (const B of [512, 98]) {
      for (const n of LENGTHS) {
        const rng = new Rng(1000 + n);
        const init = randomParams(rng, n);
        const fast = { params: Float32Array.from(init), state: createOptimizerState(cfg, n) };
        const ref = { params: Float32Array.from(init), state: createOptimizerState(cfg, n) };
        for (let s = 0; s < 4; s++) {
          const sum = randomGrad(rng, n, 40);
          const uf = applyUpdate(fast.params, Float32Array.from(sum), B, cfg, fast.state, s);
          const ur = referenceUpdate(ref.params, Float32Array.from(sum), B, cfg, ref.state, s);
          expect(Object.is(uf.gradNorm, ur.gradNorm)).toBe(true);
          expect(uf.lr).toBe(ur.lr);
          expectSameState(fast, ref);
          if (cfg.clipNorm !== undefined) expect(uf.gradNorm > cfg.clipNorm).toBe(cfg.clipNorm < 1); // the clip really applied (or not)
        }
      }
    }
  });

  it('refuses NaN / ±Infinity at the first, middle and last index, naming it, with params and state untouched', () => {
    for (const [extra, B] of [[{}, 512], [{ clipNorm: 0.5, weightDecay: 0.01 }, 98]] as const) {
      const cfg = validateOptimizerConfig({ name, lr: 0.01, ...OWN[name], ...extra });
      for (const n of LENGTHS) {
        const rng = new Rng(n);
        const params = randomParams(rng, n);
        const state = createOptimizerState(cfg, n);
        applyUpdate(params, randomGrad(rng, n, 40), B, cfg, state, 0); // non-zero state
        const before = { params: Float32Array.from(params), slots: Object.values(state.slots).map((a) => Float32Array.from(a)), t: state.t };
        for (const at of new Set([0, n >> 1, n - 1])) {
          for (const bad of [NaN, Infinity, -Infinity]) {
            const sum = randomGrad(rng, n, 40);
            sum[at] = bad;
            if (at < n - 1) sum[n - 1] = NaN; // a later bad value must not be the one named
            const e1 = caught(() => applyUpdate(params, Float32Array.from(sum), B, cfg, state, 1));
            expect(e1.code).toBe('E_NONFINITE');
            expect(e1.message).toBe(`gradient element ${at} is ${bad} at step 1; update refused`);
            const e2 = caught(() => optimizerStep(cfg, params, sum, state, 0.01));
            expect(e2.code).toBe('E_NONFINITE');
            expect(e2.message).toBe(`optimizer: gradient[${at}] is ${bad}; step not applied`);
            expect(diff('params', params, before.params)).toBe('same');
            Object.values(state.slots).forEach((a, k) => expect(diff('slot', a, before.slots[k])).toBe('same'));
            expect(state.t).toBe(before.t);
          }
        }
      }
    }
  });
});
