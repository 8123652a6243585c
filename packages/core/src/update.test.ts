import { describe, expect, it } from 'vitest';
import { DptrainError } from './errors.js';
import { clipByGlobalNorm, createOptimizerState, firstNonFinite, optimizerStep, validateOptimizerConfig } from './optim/index.js';
import { Rng } from './rng.js';
import { scheduledLr } from './schedule.js';
import { applyUpdate } from './update.js';
import { bits, jsLoopKernels, withWasm } from './kernels/test-util.js';
import { type Kernels, createWasmKernels, jsKernels, referenceKernels, wasmSupported } from './kernels/index.js';

const N = 1003;

function randomArrays(seed: number): { params: Float32Array; grad: Float32Array } {
  const rng = new Rng(seed);
  const params = new Float32Array(N);
  const grad = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    params[i] = rng.nextNormal();
    grad[i] = 40 * rng.nextNormal();
  }
  return { params, grad };
}

/** The update as it was written before the passes were fused: scan, divide, norm, clip (with its scan), step (with its scan). */
function reference(params: Float32Array, gradSum: Float32Array, B: number, cfg: ReturnType<typeof validateOptimizerConfig>, state: ReturnType<typeof createOptimizerState>, step: number) {
  if (firstNonFinite(gradSum) >= 0) throw new Error('non-finite');
  const part = [0, 0, 0, 0];
  for (let i = 0; i < gradSum.length; i++) {
    gradSum[i] = gradSum[i] / B;
    part[i % 4] += gradSum[i] * gradSum[i];
  }
  const sq = part[0] + part[1] + (part[2] + part[3]);
  const gradNorm = cfg.clipNorm !== undefined ? clipByGlobalNorm(gradSum, cfg.clipNorm) : Math.sqrt(sq);
  const lr = scheduledLr(cfg.lr, cfg.schedule, step);
  optimizerStep(cfg, params, gradSum, state, lr);
  return { lr, gradNorm };
}

describe('applyUpdate (one fused pass)', () => {
  it.each([
    ['sgd', { name: 'sgd', lr: 0.05 }],
    ['momentum + weight decay', { name: 'momentum', lr: 0.01, weightDecay: 1e-3 }],
    ['adam, clipped (the clip applies)', { name: 'adam', lr: 1e-3, clipNorm: 0.5 }],
    ['adamw, clip above the norm (no-op)', { name: 'adamw', lr: 1e-3, weightDecay: 0.01, clipNorm: 1e9 }],
    ['sgd, cosine schedule', { name: 'sgd', lr: 0.1, schedule: { type: 'cosine', totalSteps: 10 } }],
  ])('gives bit-identical parameters, state and norm to the unfused update: %s', (_, raw) => {
    const cfg = validateOptimizerConfig(raw);
    const a = randomArrays(7);
    const b = randomArrays(7);
    const sa = createOptimizerState(cfg, N);
    const sb = createOptimizerState(cfg, N);
    let norm = 0;
    for (let step = 0; step < 3; step++) {
      const g = randomArrays(100 + step).grad;
      const ua = applyUpdate(a.params, Float32Array.from(g), 96, cfg, sa, step);
      const ub = reference(b.params, Float32Array.from(g), 96, cfg, sb, step);
      expect(ua).toEqual(ub);
      norm = ua.gradNorm;
      expect(bits(a.params)).toEqual(bits(b.params));
      for (const k of Object.keys(sa.slots)) expect(bits(sa.slots[k])).toEqual(bits(sb.slots[k]));
      expect(sa.t).toBe(sb.t);
    }
    if (cfg.clipNorm !== undefined) expect(norm > cfg.clipNorm).toBe(cfg.clipNorm === 0.5); // the clip really applied (or really did not)
  });

  it.each([
    ['NaN at the end', N - 1, NaN],
    ['+Infinity in the middle', 500, Infinity],
    ['-Infinity first', 0, -Infinity],
  ])('refuses a non-finite gradient (%s), naming the first bad element, before params or state change', (_, at, value) => {
    const cfg = validateOptimizerConfig({ name: 'adam', lr: 1e-3, clipNorm: 1 });
    const { params, grad } = randomArrays(3);
    grad[at] = value;
    if (at < N - 1) grad[N - 1] = NaN; // a later bad element must not be the one named
    const before = Float32Array.from(params);
    const state = createOptimizerState(cfg, N);
    let err: unknown;
    try {
      applyUpdate(params, grad, 32, cfg, state, 4);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DptrainError);
    expect((err as DptrainError).code).toBe('E_NONFINITE');
    expect((err as Error).message).toBe(`gradient element ${at} is ${value} at step 4; update refused`);
    expect(bits(params)).toEqual(bits(before));
    expect(state.t).toBe(0);
    expect(bits(state.slots.m)).toEqual(bits(new Float32Array(N)));
  });

  it('catches a gradient sum that overflowed float32 in the reduction', () => {
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.1 });
    const huge = Float32Array.from([3e38, 1, 2]);
    const sum = Float32Array.from(huge);
    sum[0] += huge[0]; // two finite worker gradients whose float32 sum is +Infinity
    expect(sum[0]).toBe(Infinity);
    const params = Float32Array.from([1, 2, 3]);
    expect(() => applyUpdate(params, sum, 2, cfg, createOptimizerState(cfg, 3), 0)).toThrow(/gradient element 0 is Infinity/);
    expect(Array.from(params)).toEqual([1, 2, 3]);
  });
});

describe('optimizerStep checked option', () => {
  it('gives the same update with and without the scan, and scans by default', () => {
    const cfg = validateOptimizerConfig({ name: 'rmsprop', lr: 0.01 });
    const a = randomArrays(11);
    const b = randomArrays(11);
    const sa = createOptimizerState(cfg, N);
    const sb = createOptimizerState(cfg, N);
    optimizerStep(cfg, a.params, a.grad, sa, 0.01, { checked: true });
    optimizerStep(cfg, b.params, b.grad, sb, 0.01);
    expect(bits(a.params)).toEqual(bits(b.params));
    expect(bits(sa.slots.sq)).toEqual(bits(sb.slots.sq));
    b.grad[9] = NaN;
    expect(() => optimizerStep(cfg, b.params, b.grad, sb, 0.01, {})).toThrow(/gradient\[9\] is NaN/);
    expect(sb.t).toBe(1);
  });
});

describe.runIf(wasmSupported())('applyUpdate on the wasm kernels', () => {
  it('gives the bits of the JS kernels for every optimizer (plain SGD takes the SIMD step)', () => {
    const K = createWasmKernels({ memoryMiB: 4 });
    const rng = new Rng(41);
    for (const name of ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamw'] as const) {
      for (const extra of [{}, { weightDecay: 0.01 }, { clipNorm: 0.5 }]) {
        const cfg = validateOptimizerConfig({ name, lr: 0.01, ...extra });
        const n = 1003;
        const p0 = Float32Array.from({ length: n }, () => rng.nextNormal());
        const a = { p: Float32Array.from(p0), s: createOptimizerState(cfg, n) };
        const b = { p: Float32Array.from(p0), s: createOptimizerState(cfg, n) };
        for (let step = 0; step < 3; step++) {
          const g = Float32Array.from({ length: n }, () => rng.nextNormal() * 64);
          const ua = applyUpdate(a.p, Float32Array.from(g), 64, cfg, a.s, step);
          const ub = applyUpdate(b.p, Float32Array.from(g), 64, cfg, b.s, step, K);
          expect(ub).toEqual(ua);
        }
        expect(bits(b.p), `${name} ${JSON.stringify(extra)}`).toEqual(bits(a.p));
        expect(b.s.t).toBe(a.s.t);
        for (const k of Object.keys(a.s.slots)) expect(bits(b.s.slots[k])).toEqual(bits(a.s.slots[k]));
      }
    }
  });
});

/** referenceKernels (or another set) with a count of the calls of the update's kernels. */
function counting(base: Kernels = referenceKernels): { K: Kernels; calls: Record<string, number> } {
  const calls: Record<string, number> = { meanSq: 0, sgdStep: 0, sgdMeanStep: 0, firstNonFinite: 0 };
  const K: Kernels = {
    ...base,
    meanSq: (n, g, b) => (calls.meanSq++, base.meanSq(n, g, b)),
    sgdStep: (n, p, g, lr) => (calls.sgdStep++, base.sgdStep(n, p, g, lr)),
    firstNonFinite: (n, x) => (calls.firstNonFinite++, base.firstNonFinite(n, x)),
  };
  const fused = base.sgdMeanStep;
  if (fused) K.sgdMeanStep = (n, p, g, b, lr) => (calls.sgdMeanStep++, fused(n, p, g, b, lr));
  return { K, calls };
}

// the plain-JS kernels with the one-pass loop the WebAssembly kernels fall back to (sgdMeanStepJs)
const setsForSgd = withWasm(
  [
    ['js loop', jsLoopKernels],
    ['reference', () => referenceKernels],
  ],
  { memoryMiB: 4, fma: false },
);

describe.each(setsForSgd)('applyUpdate, plain SGD in one pass (%s kernels)', (_name, make) => {
  it('gives the params, gradient contents and norm of meanSq then sgdStep, bit for bit (n % 4 = 0..3, b = 512 and 3)', () => {
    const K = make();
    const rng = new Rng(61);
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.1, schedule: { type: 'cosine', totalSteps: 10 } });
    for (const n of [1, 2, 3, 5, 8, 1003, 4098]) {
      for (const B of [512, 3]) {
        for (const inMemory of [false, true]) {
          const p = inMemory ? K.alloc(n) : new Float32Array(n);
          for (let i = 0; i < n; i++) p[i] = rng.nextNormal();
          const want = Float32Array.from(p);
          const state = createOptimizerState(cfg, n);
          for (let step = 0; step < 3; step++) {
            const g = inMemory ? K.alloc(n) : new Float32Array(n);
            for (let i = 0; i < n; i++) g[i] = rng.nextNormal() * B * 2 ** (rng.nextInt(16) - 8);
            const wg = Float32Array.from(g);
            const lr = scheduledLr(cfg.lr, cfg.schedule, step);
            const wantNorm = Math.sqrt(jsKernels.meanSq(n, wg, B));
            jsKernels.sgdStep(n, want, wg, lr);
            const u = applyUpdate(p, g, B, cfg, state, step, K);
            const what = `n=${n} B=${B} step ${step} ${inMemory ? 'in' : 'out'}`;
            expect(Object.is(u.gradNorm, wantNorm), `${what}: ${u.gradNorm} vs ${wantNorm}`).toBe(true);
            expect(u.lr).toBe(lr);
            expect(bits(g), what).toEqual(bits(wg));
            expect(bits(p), what).toEqual(bits(want));
            expect(state.t).toBe(step + 1);
          }
        }
      }
    }
  });

  it.each([
    ['NaN at the end', 1002, NaN],
    ['+Infinity in the middle', 500, Infinity],
    ['-Infinity first', 0, -Infinity],
  ])('refuses a non-finite gradient sum (%s), naming the first bad element, with params, state and sum untouched', (_, at, value) => {
    const K = make();
    const n = 1003;
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.05 });
    const p = K.alloc(n);
    const g = K.alloc(n);
    const rng = new Rng(62);
    for (let i = 0; i < n; i++) {
      p[i] = rng.nextNormal();
      g[i] = rng.nextNormal() * 64;
    }
    g[at] = value;
    if (at < n - 1) g[n - 1] = NaN; // a later bad element must not be the one named
    const p0 = Float32Array.from(p);
    const g0 = Float32Array.from(g);
    const state = createOptimizerState(cfg, n);
    state.t = 7;
    let err: unknown;
    try {
      applyUpdate(p, g, 64, cfg, state, 7, K);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DptrainError);
    expect((err as DptrainError).code).toBe('E_NONFINITE');
    expect((err as Error).message).toBe(`gradient element ${at} is ${value} at step 7; update refused`);
    expect(bits(p)).toEqual(bits(p0));
    expect(bits(g)).toEqual(bits(g0));
    expect(state.t).toBe(7);
  });
});

describe('applyUpdate chooses the one-pass path exactly for plain SGD', () => {
  it('scans and runs sgdMeanStep once for sgd without clip, weight decay or L1 (no meanSq, no sgdStep)', () => {
    const { K, calls } = counting();
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.05 });
    const { params, grad } = randomArrays(71);
    const u = applyUpdate(params, grad, 96, cfg, createOptimizerState(cfg, N), 0, K);
    expect(calls).toEqual({ meanSq: 0, sgdStep: 0, sgdMeanStep: 1, firstNonFinite: 1 });
    expect(u.gradNorm).toBeGreaterThan(0);
  });

  it.each([
    ['sgd with weight decay', { name: 'sgd', lr: 0.05, weightDecay: 1e-3 }, 96, 0],
    ['sgd with L1', { name: 'sgd', lr: 0.05, l1: 1e-4 }, 96, 0],
    ['sgd, clipped', { name: 'sgd', lr: 0.05, clipNorm: 0.5 }, 96, 0],
    ['sgd, clip above the norm', { name: 'sgd', lr: 0.05, clipNorm: 1e9 }, 96, 1],
    ['sgd, batch size below 1', { name: 'sgd', lr: 0.05 }, 0.75, 1],
    ['momentum', { name: 'momentum', lr: 0.05 }, 96, 0],
  ])('keeps the two passes for %s', (_, raw, B, sgdSteps) => {
    const { K, calls } = counting();
    const cfg = validateOptimizerConfig(raw);
    const { params, grad } = randomArrays(72);
    applyUpdate(params, grad, B, cfg, createOptimizerState(cfg, N), 0, K);
    expect(calls.sgdMeanStep).toBe(0);
    expect(calls.meanSq).toBe(1);
    expect(calls.sgdStep).toBe(sgdSteps); // sgdStep only where applyStep's plain SGD runs (scale 1, no decay terms)
  });

  it('keeps the two passes for the plain-JS kernels (they have no sgdMeanStep: their scan costs more than the pass it saves)', () => {
    const { K, calls } = counting(jsKernels);
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.05 });
    const { params, grad } = randomArrays(74);
    applyUpdate(params, grad, 96, cfg, createOptimizerState(cfg, N), 0, K);
    expect(calls).toEqual({ meanSq: 1, sgdStep: 1, sgdMeanStep: 0, firstNonFinite: 0 });
  });

  it('takes the two passes, with the same bits, for kernels without sgdMeanStep', () => {
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.05 });
    const a = randomArrays(73);
    const b = randomArrays(73);
    const { sgdMeanStep: _omit, ...rest } = referenceKernels;
    const without: Kernels = rest;
    const ua = applyUpdate(a.params, a.grad, 3, cfg, createOptimizerState(cfg, N), 0, referenceKernels);
    const ub = applyUpdate(b.params, b.grad, 3, cfg, createOptimizerState(cfg, N), 0, without);
    expect(Object.is(ua.gradNorm, ub.gradNorm)).toBe(true);
    expect(bits(a.params)).toEqual(bits(b.params));
    expect(bits(a.grad)).toEqual(bits(b.grad));
  });

  it('still refuses a mean that overflows when the batch size is below 1 (the guard of the one-pass path)', () => {
    const cfg = validateOptimizerConfig({ name: 'sgd', lr: 0.1 });
    const params = Float32Array.from([1, 2, 3]);
    const state = createOptimizerState(cfg, 3);
    // a finite sum whose "mean" over 0.5 samples is 6e38: +Infinity in float32
    expect(() => applyUpdate(params, Float32Array.from([1, 3e38, 2]), 0.5, cfg, state, 0)).toThrow(/gradient element 1 is Infinity/);
    expect(Array.from(params)).toEqual([1, 2, 3]);
    expect(state.t).toBe(0);
  });
});
