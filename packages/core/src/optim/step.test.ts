import { describe, expect, it } from 'vitest';
import { DptrainError, ShapeError } from '../errors.js';
import { validateOptimizerConfig, type OptimizerConfig } from './config.js';
import { createOptimizerState } from './state.js';
import { optimizerStep } from './step.js';

// Expected values below are computed inline from the torch.optim formulas in float64,
// stored as float32 (Math.fround) exactly as the parameters and state are.
const f = Math.fround;
const W0 = [0.5, -1.25, 0];
const G = [
  [0.1, -0.2, 0.3],
  [0.05, 0.4, -0.1],
  [-0.3, 0.2, 0.25],
].map((g) => g.map(f));
const LR = 0.1;

function run(raw: Record<string, unknown>): { trace: number[][]; t: number; slots: Record<string, number[]> } {
  const cfg = validateOptimizerConfig(raw);
  const params = Float32Array.from(W0);
  const state = createOptimizerState(cfg, 3);
  const trace: number[][] = [];
  for (const g of G) {
    optimizerStep(cfg, params, Float32Array.from(g), state, LR);
    trace.push(Array.from(params));
  }
  const slots: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(state.slots)) slots[k] = Array.from(v);
  return { trace, t: state.t, slots };
}

/** A float32 reference loop: `upd(w, g, i, t)` returns the new w in float64. */
function reference(upd: (w: number, g: number, i: number, t: number) => number): number[][] {
  const w = [...W0];
  const out: number[][] = [];
  G.forEach((g, s) => {
    for (let i = 0; i < 3; i++) w[i] = f(upd(w[i], g[i], i, s + 1));
    out.push([...w]);
  });
  return out;
}

describe('optimizerStep, first three updates against the published formulas', () => {
  it('sgd: w -= lr * g (literal numbers)', () => {
    const r = run({ name: 'sgd', lr: LR });
    expect(r.trace[0]).toEqual([f(0.5 - 0.1 * f(0.1)), f(-1.25 - 0.1 * f(-0.2)), f(0 - 0.1 * f(0.3))]);
    expect(r.trace[0][0]).toBeCloseTo(0.49, 6);
    expect(r.trace).toEqual(reference((w, g) => w - LR * g));
    expect(r.t).toBe(3);
  });

  it('sgd with weightDecay (g + wd*w) and l1 (g + l1*sign(w))', () => {
    const wd = 0.01;
    const l1 = 0.001;
    const r = run({ name: 'sgd', lr: LR, weightDecay: wd, l1 });
    expect(r.trace).toEqual(reference((w, g) => w - LR * (g + wd * w + l1 * Math.sign(w))));
    // sign(0) = 0: the zero weight moves by the plain gradient on the first step
    expect(r.trace[0][2]).toBe(f(0 - LR * (G[0][2] + 0)));
  });

  it('momentum: b = mu*b + g; w -= lr*b', () => {
    const mu = 0.9;
    const b = [0, 0, 0];
    const exp = reference((w, g, i) => {
      const bi = mu * b[i] + g;
      b[i] = f(bi);
      return w - LR * bi;
    });
    const r = run({ name: 'momentum', lr: LR });
    expect(r.trace).toEqual(exp);
    expect(r.slots.velocity).toEqual(b);
  });

  it('nesterov as PyTorch: b = mu*b + g; w -= lr*(g + mu*b), with weightDecay', () => {
    const mu = 0.8;
    const wd = 0.05;
    const b = [0, 0, 0];
    const exp = reference((w, g0, i) => {
      const g = g0 + wd * w;
      const bi = mu * b[i] + g;
      b[i] = f(bi);
      return w - LR * (g + mu * bi);
    });
    const r = run({ name: 'nesterov', lr: LR, momentum: mu, weightDecay: wd });
    expect(r.trace).toEqual(exp);
    expect(r.slots.velocity).toEqual(b);
  });

  it('adagrad: s += g^2; w -= lr*g/(sqrt(s)+eps)', () => {
    const eps = 1e-8;
    const s = [0, 0, 0];
    const exp = reference((w, g, i) => {
      const si = s[i] + g * g;
      s[i] = f(si);
      return w - (LR * g) / (Math.sqrt(si) + eps);
    });
    const r = run({ name: 'adagrad', lr: LR });
    expect(r.trace).toEqual(exp);
    expect(r.slots.sum).toEqual(s);
    // first step of adagrad moves each weight by about lr * sign(g)
    expect(r.trace[0][0]).toBeCloseTo(0.5 - 0.1, 6);
  });

  it('rmsprop: v = rho*v + (1-rho)*g^2; w -= lr*g/(sqrt(v)+eps), with l1', () => {
    const rho = 0.95;
    const eps = 1e-6;
    const l1 = 0.01;
    const v = [0, 0, 0];
    const exp = reference((w, g0, i) => {
      const g = g0 + l1 * Math.sign(w);
      const vi = rho * v[i] + (1 - rho) * g * g;
      v[i] = f(vi);
      return w - (LR * g) / (Math.sqrt(vi) + eps);
    });
    const r = run({ name: 'rmsprop', lr: LR, rho, eps, l1 });
    expect(r.trace).toEqual(exp);
    expect(r.slots.sq).toEqual(v);
  });

  it('adam: bias-corrected moments, L2 weightDecay added to the gradient', () => {
    const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.1];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    const exp = reference((w, g0, i, t) => {
      const g = g0 + wd * w;
      const mi = b1 * m[i] + (1 - b1) * g;
      const vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = f(mi);
      v[i] = f(vi);
      const mhat = mi / (1 - Math.pow(b1, t));
      const vhat = vi / (1 - Math.pow(b2, t));
      return w - (LR * mhat) / (Math.sqrt(vhat) + eps);
    });
    const r = run({ name: 'adam', lr: LR, weightDecay: wd });
    expect(r.trace).toEqual(exp);
    expect(r.slots).toEqual({ m, v });
    expect(r.t).toBe(3);
  });

  it('adam: the first step moves each weight by about lr (m̂/sqrt(v̂) = sign g)', () => {
    const r = run({ name: 'adam', lr: LR });
    expect(r.trace[0][0]).toBeCloseTo(0.5 - 0.1, 6);
    expect(r.trace[0][1]).toBeCloseTo(-1.25 + 0.1, 6);
    expect(r.trace[0][2]).toBeCloseTo(-0.1, 6);
  });

  it('adamw: decoupled decay w -= lr*wd*w, then the adam step without wd in g', () => {
    const [b1, b2, eps, wd] = [0.8, 0.99, 1e-7, 0.1];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    const exp = reference((w0, g, i, t) => {
      const w = w0 - LR * wd * w0;
      const mi = b1 * m[i] + (1 - b1) * g;
      const vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = f(mi);
      v[i] = f(vi);
      const mhat = mi / (1 - Math.pow(b1, t));
      const vhat = vi / (1 - Math.pow(b2, t));
      return w - (LR * mhat) / (Math.sqrt(vhat) + eps);
    });
    const r = run({ name: 'adamw', lr: LR, beta1: b1, beta2: b2, eps, weightDecay: wd });
    expect(r.trace).toEqual(exp);
    expect(r.slots).toEqual({ m, v });
    // decoupled: differs from adam with the same weightDecay
    expect(run({ name: 'adam', lr: LR, beta1: b1, beta2: b2, eps, weightDecay: wd }).trace[2]).not.toEqual(exp[2]);
  });

  it('uses the lr passed in, not cfg.lr', () => {
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 1 });
    const p = Float32Array.from([1]);
    optimizerStep(cfg, p, Float32Array.from([0.5]), createOptimizerState(cfg, 1), 0.25);
    expect(p[0]).toBe(f(1 - 0.25 * 0.5));
  });
});

describe('optimizerStep input checks', () => {
  const cfg: OptimizerConfig = validateOptimizerConfig({ name: 'adam', lr: 0.01 });

  it('rejects non-finite gradients naming the first bad index, changing nothing', () => {
    const params = Float32Array.from([1, 2, 3, 4]);
    const state = createOptimizerState(cfg, 4);
    optimizerStep(cfg, params, Float32Array.from([0.1, 0.1, 0.1, 0.1]), state, 0.01);
    const before = { p: params.slice(), m: state.slots.m.slice(), v: state.slots.v.slice(), t: state.t };
    for (const bad of [NaN, Infinity, -Infinity]) {
      const grads = Float32Array.from([0.5, 0.5, bad, NaN]);
      let err: unknown;
      try {
        optimizerStep(cfg, params, grads, state, 0.01);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DptrainError);
      expect((err as DptrainError).code).toBe('E_NONFINITE');
      expect((err as Error).message).toContain('gradient[2]');
      expect(params).toEqual(before.p);
      expect(state.slots.m).toEqual(before.m);
      expect(state.slots.v).toEqual(before.v);
      expect(state.t).toBe(before.t);
    }
  });

  it('rejects length mismatches and missing slots', () => {
    const state = createOptimizerState(cfg, 3);
    expect(() => optimizerStep(cfg, new Float32Array(3), new Float32Array(2), state, 0.1)).toThrow(ShapeError);
    expect(() => optimizerStep(cfg, new Float32Array(3), new Float32Array(3), { t: 0, slots: { m: new Float32Array(3) } }, 0.1)).toThrow(/slot v is missing/);
    expect(() => optimizerStep(cfg, new Float32Array(3), new Float32Array(3), state, NaN)).toThrow(/lr/);
  });
});
