import { describe, expect, it } from 'vitest';
import { DptrainError } from '../errors.js';
import { Rng } from '../rng.js';
import { applyUpdate } from '../update.js';
import { type Kernels, createWasmKernels, jsKernels, wasmFmaSupported, wasmSupported } from '../kernels/index.js';
import { adamStepJs } from '../kernels/check.js';
import { type OptimizerConfig, validateOptimizerConfig } from './config.js';
import { createOptimizerState } from './state.js';
import { optimizerStep } from './step.js';

// applyStep runs kernels.adamStep for adam and adamw exactly when the gradient terms are plain
// (no clip coefficient, L2 or L1), and the bits are those of the JS loop either way.

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** `base` with adamStep (its own, or the JS loop when it has none) counted. */
function counting(base: Kernels): { K: Kernels; calls: { adamStep: number } } {
  const calls = { adamStep: 0 };
  const inner = base.adamStep ?? adamStepJs;
  const K: Kernels = { ...base, adamStep: (...a) => (calls.adamStep++, inner(...a)) };
  return { K, calls };
}

const sets: Array<[string, () => Kernels]> = [];
if (wasmSupported()) sets.push(['wasm', () => createWasmKernels({ memoryMiB: 4 })]);
if (wasmFmaSupported()) sets.push(['wasm-fma', () => createWasmKernels({ memoryMiB: 4, fma: true })]);

describe.each(sets)('applyUpdate with adam on the %s kernels', (_name, make) => {
  it('gives the params, m and v bits of the JS kernels over several steps (adam, adamw; arrays in and outside wasm memory)', () => {
    const K = make();
    const rng = new Rng(71);
    for (const n of [1, 2, 3, 5, 1001, 4099]) {
      for (const [extra, inside] of [[{ name: 'adam' }, true], [{ name: 'adamw', weightDecay: 0.05 }, false], [{ name: 'adam', beta1: 0.5, beta2: 0.9, eps: 1e-6 }, false], [{ name: 'adamw', weightDecay: 0.01 }, true]] as const) {
        const cfg = validateOptimizerConfig({ lr: 0.003, schedule: { type: 'cosine', totalSteps: 10 }, ...extra });
        const p0 = Float32Array.from({ length: n }, () => rng.nextNormal() * 2 ** (rng.nextInt(20) - 10));
        const a = { p: Float32Array.from(p0), s: createOptimizerState(cfg, n) };
        const b = { p: inside ? K.alloc(n) : new Float32Array(n), s: createOptimizerState(cfg, n) };
        b.p.set(p0);
        const grad = inside ? K.alloc(n) : new Float32Array(n);
        let moved = 0;
        for (let step = 0; step < 5; step++) {
          const g = Float32Array.from({ length: n }, () => (rng.nextInt(8) === 0 ? 0 : rng.nextNormal() * 2 ** (rng.nextInt(30) - 10)));
          grad.set(g);
          const before = Float32Array.from(b.p);
          const ua = applyUpdate(a.p, Float32Array.from(g), 16, cfg, a.s, step);
          const ub = applyUpdate(b.p, grad, 16, cfg, b.s, step, K);
          expect(ub).toEqual(ua);
          for (let i = 0; i < n; i++) if (b.p[i] !== before[i]) moved++;
        }
        const what = `n=${n} ${JSON.stringify(extra)} ${inside ? 'in' : 'outside'} memory`;
        expect(bits(b.p), what).toEqual(bits(a.p));
        expect(bits(b.s.slots.m), what).toEqual(bits(a.s.slots.m));
        expect(bits(b.s.slots.v), what).toEqual(bits(a.s.slots.v));
        expect(b.s.t).toBe(5);
        expect(a.s.t).toBe(5);
        expect(moved, what).toBeGreaterThan(n * 2);
      }
    }
  });
});

describe('applyStep takes adamStep exactly for plain adam and adamw', () => {
  const n = 37;
  const run = (cfg: OptimizerConfig, base: Kernels, gradScale = 1) => {
    const { K, calls } = counting(base);
    const rng = new Rng(72);
    const p = Float32Array.from({ length: n }, () => rng.nextNormal());
    const s = createOptimizerState(cfg, n);
    for (let step = 0; step < 3; step++) {
      const g = Float32Array.from({ length: n }, () => rng.nextNormal() * gradScale);
      applyUpdate(p, g, 2, cfg, s, step, K);
    }
    return { calls: calls.adamStep, p, s };
  };
  const bases: Array<[string, Kernels]> = [['js (the JS loop counted)', jsKernels]];
  if (wasmSupported()) bases.push(['wasm', createWasmKernels({ memoryMiB: 1 })]);

  it.each(bases)('once per update for plain terms, never with a clip coefficient, L2 or L1 (%s)', (_name, base) => {
    expect(run(validateOptimizerConfig({ name: 'adam', lr: 0.01 }), base).calls).toBe(3);
    expect(run(validateOptimizerConfig({ name: 'adamw', lr: 0.01, weightDecay: 0.1 }), base).calls).toBe(3); // decoupled decay: still plain
    expect(run(validateOptimizerConfig({ name: 'adam', lr: 0.01, clipNorm: 1000 }), base).calls).toBe(3); // clip not applied: coefficient 1
    expect(run(validateOptimizerConfig({ name: 'adam', lr: 0.01, clipNorm: 0.01 }), base).calls).toBe(0);
    expect(run(validateOptimizerConfig({ name: 'adam', lr: 0.01, weightDecay: 0.1 }), base).calls).toBe(0); // L2 in g
    expect(run(validateOptimizerConfig({ name: 'adamw', lr: 0.01, l1: 0.001 }), base).calls).toBe(0);
    expect(run(validateOptimizerConfig({ name: 'rmsprop', lr: 0.01 }), base).calls).toBe(0);
    expect(run(validateOptimizerConfig({ name: 'sgd', lr: 0.01 }), base).calls).toBe(0);
  });

  it('optimizerStep (default plain-JS kernels) gives the bits of applyStep with wasm adamStep', () => {
    if (!wasmSupported()) return expect(jsKernels.adamStep).toBeUndefined();
    const cfg = validateOptimizerConfig({ name: 'adamw', lr: 0.02, weightDecay: 0.1 });
    const viaKernel = run(cfg, createWasmKernels({ memoryMiB: 1 }));
    expect(viaKernel.calls).toBe(3);
    const rng = new Rng(72);
    const p = Float32Array.from({ length: n }, () => rng.nextNormal());
    const s = createOptimizerState(cfg, n);
    for (let step = 0; step < 3; step++) {
      const g = Float32Array.from({ length: n }, () => rng.nextNormal());
      for (let i = 0; i < n; i++) g[i] = g[i] / 2; // applyUpdate's mean (batch 2: exact)
      optimizerStep(cfg, p, g, s, 0.02);
    }
    expect(bits(viaKernel.p)).toEqual(bits(p));
    expect(bits(viaKernel.s.slots.m)).toEqual(bits(s.slots.m));
    expect(bits(viaKernel.s.slots.v)).toEqual(bits(s.slots.v));
    expect(viaKernel.s.t).toBe(s.t);
  });

  it.each(bases)('refuses a non-finite gradient before adamStep runs, changing nothing (%s)', (_name, base) => {
    const { K, calls } = counting(base);
    const cfg = validateOptimizerConfig({ name: 'adam', lr: 0.01 });
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const p = Float32Array.from({ length: n }, (_, i) => i / 7);
      const s = createOptimizerState(cfg, n);
      const g = new Float32Array(n).fill(1);
      g[20] = bad;
      expect(() => applyUpdate(p, g, 1, cfg, s, 0, K)).toThrow(DptrainError);
      expect(() => applyUpdate(p, g, 1, cfg, s, 0, K)).toThrow(/gradient element 20/);
      expect(calls.adamStep).toBe(0);
      expect(Array.from(p)).toEqual(Array.from({ length: n }, (_, i) => Math.fround(i / 7)));
      expect(s.t).toBe(0);
      expect(Array.from(s.slots.m).every((x) => x === 0) && Array.from(s.slots.v).every((x) => x === 0)).toBe(true);
    }
  });
});
