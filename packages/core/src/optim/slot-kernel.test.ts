import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { applyUpdate } from '../update.js';
import { type Kernels, createWasmKernels, jsKernels, wasmFmaSupported, wasmSupported } from '../kernels/index.js';
import { adagradStepJs, momentumStepJs, rmspropStepJs } from '../kernels/check.js';
import { type OptimizerConfig, validateOptimizerConfig } from './config.js';
import { createOptimizerState } from './state.js';

// applyStep runs kernels.momentumStep (momentum, nesterov), rmspropStep and adagradStep exactly
// when the gradient terms are plain (no clip coefficient, L2 or L1), with the JS loop's bits.

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

type Calls = { momentumStep: number; rmspropStep: number; adagradStep: number };

/** `base` with the three one-slot steps (its own, or the JS loops when it has none) counted. */
function counting(base: Kernels): { K: Kernels; calls: Calls } {
  const calls: Calls = { momentumStep: 0, rmspropStep: 0, adagradStep: 0 };
  const mom = base.momentumStep ?? momentumStepJs;
  const rms = base.rmspropStep ?? rmspropStepJs;
  const ada = base.adagradStep ?? adagradStepJs;
  const K: Kernels = {
    ...base,
    momentumStep: (...a) => (calls.momentumStep++, mom(...a)),
    rmspropStep: (...a) => (calls.rmspropStep++, rms(...a)),
    adagradStep: (...a) => (calls.adagradStep++, ada(...a)),
  };
  return { K, calls };
}

const SLOT: Record<string, string> = { momentum: 'velocity', nesterov: 'velocity', rmsprop: 'sq', adagrad: 'sum' };

const sets: Array<[string, () => Kernels]> = [];
if (wasmSupported()) sets.push(['wasm', () => createWasmKernels({ memoryMiB: 4 })]);
if (wasmFmaSupported()) sets.push(['wasm-fma', () => createWasmKernels({ memoryMiB: 4, fma: true })]);

describe.each(sets)('applyUpdate with momentum, nesterov, rmsprop, adagrad on the %s kernels', (_name, make) => {
  it('gives the params and slot bits of the JS kernels over several steps (arrays in and outside wasm memory)', () => {
    const K = make();
    const rng = new Rng(91);
    const configs = [
      [{ name: 'momentum' }, true],
      [{ name: 'nesterov', momentum: 0.8 }, false],
      [{ name: 'rmsprop' }, false],
      [{ name: 'rmsprop', rho: 0.5, eps: 1e-6 }, true],
      [{ name: 'adagrad' }, true],
      [{ name: 'adagrad', eps: 1e-4 }, false],
    ] as const;
    for (const n of [1, 2, 3, 5, 1001, 4099]) {
      for (const [extra, inside] of configs) {
        const cfg = validateOptimizerConfig({ lr: 0.003, schedule: { type: 'cosine', totalSteps: 10 }, ...extra });
        const slot = SLOT[extra.name];
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
        expect(bits(b.s.slots[slot]), what).toEqual(bits(a.s.slots[slot]));
        expect(b.s.t).toBe(5);
        expect(moved, what).toBeGreaterThan(n * 2);
      }
    }
  });
});

describe('applyStep takes the one-slot steps exactly for plain terms', () => {
  const n = 37;
  const run = (cfg: OptimizerConfig, base: Kernels) => {
    const { K, calls } = counting(base);
    const rng = new Rng(92);
    const p = Float32Array.from({ length: n }, () => rng.nextNormal());
    const s = createOptimizerState(cfg, n);
    for (let step = 0; step < 3; step++) {
      const g = Float32Array.from({ length: n }, () => rng.nextNormal());
      applyUpdate(p, g, 2, cfg, s, step, K);
    }
    return calls;
  };
  const bases: Array<[string, Kernels]> = [['js (the JS loops counted)', jsKernels]];
  if (wasmSupported()) bases.push(['wasm', createWasmKernels({ memoryMiB: 1 })]);
  const only = (k: keyof Calls, c: number): Calls => ({ momentumStep: 0, rmspropStep: 0, adagradStep: 0, [k]: c });

  it.each(bases)('once per update for plain terms, never with a clip coefficient, L2 or L1 (%s)', (_name, base) => {
    const cfg = (o: object) => validateOptimizerConfig({ lr: 0.01, ...o } as OptimizerConfig);
    for (const [name, k] of [['momentum', 'momentumStep'], ['nesterov', 'momentumStep'], ['rmsprop', 'rmspropStep'], ['adagrad', 'adagradStep']] as const) {
      expect(run(cfg({ name }), base), name).toEqual(only(k, 3));
      expect(run(cfg({ name, clipNorm: 1000 }), base), `${name} clip not applied`).toEqual(only(k, 3));
      expect(run(cfg({ name, clipNorm: 0.01 }), base), `${name} clipped`).toEqual(only(k, 0));
      expect(run(cfg({ name, weightDecay: 0.1 }), base), `${name} L2`).toEqual(only(k, 0));
      expect(run(cfg({ name, l1: 0.001 }), base), `${name} L1`).toEqual(only(k, 0));
    }
    expect(run(cfg({ name: 'adam' }), base)).toEqual(only('momentumStep', 0));
    expect(run(cfg({ name: 'sgd' }), base)).toEqual(only('momentumStep', 0));
  });
});
