/**
 * Helpers shared by the tests of applyUpdate on the optimizer step kernels. Test-only: nothing
 * here is exported from the package index.
 */

import { expect } from 'vitest';
import { Rng } from '../rng.js';
import { applyUpdate } from '../update.js';
import type { Kernels } from '../kernels/types.js';
import { adagradStepJs, adamStepJs, momentumStepJs, rmspropStepJs } from '../kernels/check.js';
import { bits, buffer } from '../kernels/test-util.js';
import { type OptimizerConfig, validateOptimizerConfig } from './config.js';
import { type OptimizerState, createOptimizerState } from './state.js';

/** The optimizer step methods of Kernels, with the JS loops optim/loops.ts runs when kernels lack them. */
const JS_STEPS = { adamStep: adamStepJs, momentumStep: momentumStepJs, rmspropStep: rmspropStepJs, adagradStep: adagradStepJs };

/** An optimizer step method of Kernels. */
export type StepMethod = keyof typeof JS_STEPS;

/** `base` with the step methods `names` (its own, or their JS loops where it has none) counted: `calls[name]` per call. */
export function counting<N extends StepMethod>(base: Kernels, names: readonly N[]): { K: Kernels; calls: Record<N, number> } {
  const calls = {} as Record<N, number>;
  const K: Kernels = { ...base };
  for (const name of names) {
    calls[name] = 0;
    const inner = (base[name] ?? JS_STEPS[name]) as (...a: unknown[]) => void;
    (K as unknown as Record<N, (...a: unknown[]) => void>)[name] = (...a) => (calls[name]++, inner(...a));
  }
  return { K, calls };
}

/** Params and optimizer state after some updates. */
export interface Updated {
  p: Float32Array;
  s: OptimizerState;
}

/**
 * Three calls of `update` (step 0, 1, 2) on n params drawn normal from `new Rng(seed)` and a fresh
 * state for `cfg`, each with a new gradient of n normal draws from the same generator.
 */
export function drive(cfg: OptimizerConfig, n: number, seed: number, update: (p: Float32Array, g: Float32Array, s: OptimizerState, step: number) => void): Updated {
  const rng = new Rng(seed);
  const p = Float32Array.from({ length: n }, () => rng.nextNormal());
  const s = createOptimizerState(cfg, n);
  for (let step = 0; step < 3; step++) {
    const g = Float32Array.from({ length: n }, () => rng.nextNormal());
    update(p, g, s, step);
  }
  return { p, s };
}

/** Expects `got` to hold the bits of `want`: params, every slot of the state, and the step count t. */
export function expectSameUpdate(got: Updated, want: Updated, what?: string): void {
  expect(bits(got.p), what).toEqual(bits(want.p));
  expect(Object.keys(got.s.slots), what).toEqual(Object.keys(want.s.slots));
  for (const k of Object.keys(want.s.slots)) expect(bits(got.s.slots[k]), what && `${what}: ${k}`).toEqual(bits(want.s.slots[k]));
  expect(got.s.t).toBe(want.s.t);
}

/**
 * applyUpdate on kernels K against applyUpdate on the default (plain-JS) kernels, for n from 1 to
 * 4099 and each of `configs` (merged over lr 0.003 and a 10-step cosine schedule; with K's params
 * and gradient in its memory when `inside`): five steps from the same params and gradients (drawn
 * from `rng`, gradients of mixed magnitudes with zeros), each returning the same result; then
 * the same bits of params and every slot, t = 5, and more than 2n parameter changes in all.
 */
export function expectUpdatesMatchJs(K: Kernels, rng: Rng, configs: ReadonlyArray<readonly [object, boolean]>): void {
  for (const n of [1, 2, 3, 5, 1001, 4099]) {
    for (const [extra, inside] of configs) {
      const cfg = validateOptimizerConfig({ lr: 0.003, schedule: { type: 'cosine', totalSteps: 10 }, ...extra });
      const p0 = Float32Array.from({ length: n }, () => rng.nextNormal() * 2 ** (rng.nextInt(20) - 10));
      const a = { p: Float32Array.from(p0), s: createOptimizerState(cfg, n) };
      const b = { p: buffer(K, inside, n), s: createOptimizerState(cfg, n) };
      b.p.set(p0);
      const grad = buffer(K, inside, n);
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
      expectSameUpdate(b, a, what);
      expect(b.s.t).toBe(5);
      expect(moved, what).toBeGreaterThan(n * 2);
    }
  }
}
