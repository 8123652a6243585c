import { describe, expect, it } from 'vitest';
import { DptrainError } from '../errors.js';
import { Rng } from '../rng.js';
import { applyUpdate } from '../update.js';
import { type Kernels, createWasmKernels, jsKernels, wasmSupported } from '../kernels/index.js';
import { withWasm } from '../kernels/test-util.js';
import { type OptimizerConfig, validateOptimizerConfig } from './config.js';
import { createOptimizerState } from './state.js';
import { optimizerStep } from './step.js';
import { counting, drive, expectSameUpdate, expectUpdatesMatchJs } from './test-util.js';

// applyStep runs kernels.adamStep for adam and adamw exactly when the gradient terms are plain
// (no clip coefficient, L2 or L1), and the bits are those of the JS loop either way.

describe.each(withWasm([], { memoryMiB: 4 }))('applyUpdate with adam on the %s kernels', (_name, make) => {
  it('gives the params, m and v bits of the JS kernels over several steps (adam, adamw; arrays in and outside wasm memory)', () => {
    expectUpdatesMatchJs(make(), new Rng(71), [
      [{ name: 'adam' }, true],
      [{ name: 'adamw', weightDecay: 0.05 }, false],
      [{ name: 'adam', beta1: 0.5, beta2: 0.9, eps: 1e-6 }, false],
      [{ name: 'adamw', weightDecay: 0.01 }, true],
    ]);
  });
});

describe('applyStep takes adamStep exactly for plain adam and adamw', () => {
  const n = 37;
  const run = (cfg: OptimizerConfig, base: Kernels) => {
    const { K, calls } = counting(base, ['adamStep']);
    const r = drive(cfg, n, 72, (p, g, s, step) => applyUpdate(p, g, 2, cfg, s, step, K));
    return { calls: calls.adamStep, ...r };
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
    const plain = drive(cfg, n, 72, (p, g, s) => {
      for (let i = 0; i < n; i++) g[i] = g[i] / 2; // applyUpdate's mean (batch 2: exact)
      optimizerStep(cfg, p, g, s, 0.02);
    });
    expectSameUpdate(viaKernel, plain);
  });

  it.each(bases)('refuses a non-finite gradient before adamStep runs, changing nothing (%s)', (_name, base) => {
    const { K, calls } = counting(base, ['adamStep']);
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
