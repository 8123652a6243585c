import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { applyUpdate } from '../update.js';
import { type Kernels, createWasmKernels, jsKernels, wasmSupported } from '../kernels/index.js';
import { withWasm } from '../kernels/test-util.js';
import { type OptimizerConfig, validateOptimizerConfig } from './config.js';
import { counting, drive, expectUpdatesMatchJs } from './test-util.js';

// applyStep runs kernels.momentumStep (momentum, nesterov), rmspropStep and adagradStep exactly
// when the gradient terms are plain (no clip coefficient, L2 or L1), with the JS loop's bits.

const METHODS = ['momentumStep', 'rmspropStep', 'adagradStep'] as const;
type Calls = Record<(typeof METHODS)[number], number>;

describe.each(withWasm([], { memoryMiB: 4 }))('applyUpdate with momentum, nesterov, rmsprop, adagrad on the %s kernels', (_name, make) => {
  it('gives the params and slot bits of the JS kernels over several steps (arrays in and outside wasm memory)', () => {
    expectUpdatesMatchJs(make(), new Rng(91), [
      [{ name: 'momentum' }, true],
      [{ name: 'nesterov', momentum: 0.8 }, false],
      [{ name: 'rmsprop' }, false],
      [{ name: 'rmsprop', rho: 0.5, eps: 1e-6 }, true],
      [{ name: 'adagrad' }, true],
      [{ name: 'adagrad', eps: 1e-4 }, false],
    ]);
  });
});

describe('applyStep takes the one-slot steps exactly for plain terms', () => {
  const n = 37;
  const run = (cfg: OptimizerConfig, base: Kernels): Calls => {
    const { K, calls } = counting(base, METHODS);
    drive(cfg, n, 92, (p, g, s, step) => applyUpdate(p, g, 2, cfg, s, step, K));
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
