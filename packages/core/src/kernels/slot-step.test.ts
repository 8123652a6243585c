import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import { adagradLoop, momentumLoop, rmspropLoop } from '../optim/loops.js';
import type { Kernels } from './types.js';
import { jsKernels } from './js.js';
import { adagradStepJs, momentumStepJs, rmspropStepJs } from './check.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';
import { STEP_SIZES, expectOverlapsFollow, expectStep, fillMixed, firstDiff, jsLoopKernels, method, places, stepViews, withWasm } from './test-util.js';

// momentumStep, rmspropStep and adagradStep: the one-slot optimizer steps for plain terms.

const PLAIN = { scale: 1, l2: 0, l1: 0 };

type Args = number[];
interface Op {
  method: 'momentumStep' | 'rmspropStep' | 'adagradStep';
  /** The loop's plain branch as written before the kernel, element by element (the definition for disjoint views). */
  reference(n: number, p: Float32Array, g: Float32Array, s: Float32Array, a: Args): void;
  /** The JS loop in check.ts (the definition for any views; the WebAssembly fallback). */
  js(n: number, p: Float32Array, g: Float32Array, s: Float32Array, a: Args): void;
  /** The optimizer loop's plain branch, without kernels. */
  loop(p: Float32Array, g: Float32Array, s: Float32Array, a: Args): void;
  call(K: Kernels, n: number, p: Float32Array, g: Float32Array, s: Float32Array, a: Args): void;
  configs: Args[];
  /** The slot holds sums of squares (never negative). */
  squares: boolean;
}

const momentum = (nesterov: boolean): Op => ({
  method: 'momentumStep',
  reference(n, p, src, vel, [lr, mu]) {
    for (let i = 0; i < n; i++) {
      const b = mu * vel[i] + src[i];
      vel[i] = b;
      p[i] = p[i] - lr * (nesterov ? src[i] + mu * b : b);
    }
  },
  js: (n, p, g, s, [lr, mu]) => momentumStepJs(n, p, g, s, lr, mu, nesterov),
  loop: (p, g, s, [lr, mu]) => momentumLoop(p, g, PLAIN, s, lr, mu, nesterov),
  call: (K, n, p, g, s, [lr, mu]) => method(K, 'momentumStep').call(K, n, p, g, s, lr, mu, nesterov),
  configs: [[0.01, 0.9], [0.1, 0.99], [0.0123, 0.5], [0.5, 0], [3e-4, 0.95]],
  squares: false,
});

const OPS: Array<[string, Op]> = [
  ['momentum', momentum(false)],
  ['nesterov', momentum(true)],
  [
    'rmsprop',
    {
      method: 'rmspropStep',
      reference(n, p, src, sq, [lr, rho, eps]) {
        const c = 1 - rho;
        for (let i = 0; i < n; i++) {
          const g = src[i];
          const v = rho * sq[i] + c * g * g;
          sq[i] = v;
          p[i] = p[i] - (lr * g) / (Math.sqrt(v) + eps);
        }
      },
      js: (n, p, g, s, [lr, rho, eps]) => rmspropStepJs(n, p, g, s, lr, rho, eps),
      loop: (p, g, s, [lr, rho, eps]) => rmspropLoop(p, g, PLAIN, s, lr, rho, eps),
      call: (K, n, p, g, s, [lr, rho, eps]) => method(K, 'rmspropStep').call(K, n, p, g, s, lr, rho, eps),
      configs: [[0.001, 0.9, 1e-8], [0.01, 0.99, 1e-7], [0.0123, 0.37, 1e-3], [0.5, 0, 1e-30], [3e-4, 0.999, 1e-8]],
      squares: true,
    },
  ],
  [
    'adagrad',
    {
      method: 'adagradStep',
      reference(n, p, src, sum, [lr, eps]) {
        for (let i = 0; i < n; i++) {
          const g = src[i];
          const s = sum[i] + g * g;
          sum[i] = s;
          p[i] = p[i] - (lr * g) / (Math.sqrt(s) + eps);
        }
      },
      js: (n, p, g, s, [lr, eps]) => adagradStepJs(n, p, g, s, lr, eps),
      loop: (p, g, s, [lr, eps]) => adagradLoop(p, g, PLAIN, s, lr, eps),
      call: (K, n, p, g, s, [lr, eps]) => method(K, 'adagradStep').call(K, n, p, g, s, lr, eps),
      configs: [[0.01, 1e-8], [0.1, 1e-10], [0.0123, 1e-3], [0.5, 1e-30]],
      squares: true,
    },
  ],
];

const kernels = withWasm([['js loop', jsLoopKernels]], { memoryMiB: 8 });

const cases = kernels.flatMap(([k, make]) => OPS.map(([o, op]) => [k, o, make, op] as const));

describe.each(cases)('%s kernels: %s step', (_k, _o, make, op) => {
  it('equals the plain loop bit for bit (many n, several steps, views in and outside its memory)', () => {
    const K = make();
    const rng = new Rng(81);
    let moved = 0;
    let checked = 0;
    for (const n of STEP_SIZES) {
      for (const a of op.configs) {
        const where = places(rng, 3, n);
        const views = stepViews(K, rng, where, n + 1, [op.squares], false);
        const { p, g, slots: [s] } = views;
        const want = [p, s].map((x) => Float32Array.from(x));
        const loop = [p, s].map((x) => Float32Array.from(x));
        for (let t = 1; t <= 3; t++) {
          fillMixed(rng, g);
          const what = `n=${n} args=${a.join(',')} t=${t} in=${where.join(',')}`;
          op.reference(n, want[0], g, want[1], a);
          op.loop(loop[0].subarray(0, n), g, loop[1], a);
          moved += expectStep(what, n, views, ['slot'], want, loop, () => op.call(K, n, p, g, s, a));
          checked += n;
        }
      }
    }
    expect(checked).toBeGreaterThan(100_000);
    expect(moved).toBeGreaterThan(checked / 3); // the step really moved many parameters
  });

  it('follows the JS loop for overlapping views (the same view, or shifted by 1..3 elements)', () => {
    const K = make();
    const layouts = [
      [0, 40, 0], // p = s
      [0, 0, 40], // p = g
      [40, 80, 81], // g and s shifted by 1
      [2, 0, 80], // p and g shifted by 2
      [83, 40, 80], // p and s shifted by 3
    ];
    const a = op.configs[1];
    expectOverlapsFollow(
      K,
      new Rng(82),
      160,
      layouts,
      (n, [p, g, s]) => op.js(n, p, g, s, a),
      (n, [p, g, s]) => op.call(K, n, p, g, s, a),
    );
  });

  it('passes non-finite values through as the JS loop does', () => {
    const K = make();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const [p, g, s] = [0, 1, 2].map(() => K.alloc(9).fill(0.5));
      g[6] = bad;
      const want = [p, g, s].map((x) => Float32Array.from(x));
      op.reference(9, want[0], want[1], want[2], op.configs[0]);
      op.call(K, 9, p, g, s, op.configs[0]);
      expect(Number.isFinite(p[6])).toBe(false);
      expect([p, s].map((x) => Array.from(x))).toEqual([want[0], want[2]].map((x) => Array.from(x)));
    }
  });

  it('refuses operands shorter than n, naming them, before changing anything', () => {
    const K = make();
    const ok = () => K.alloc(5).fill(1);
    const short = K.alloc(4).fill(1);
    const a = op.configs[0];
    expect(() => op.call(K, 5, short, ok(), ok(), a)).toThrow(ShapeError);
    expect(() => op.call(K, 5, short, ok(), ok(), a)).toThrow(new RegExp(`${op.method}: p has 4 elements, expected at least n = 5`));
    expect(() => op.call(K, 5, ok(), short, ok(), a)).toThrow(new RegExp(`${op.method}: g has 4 elements`));
    const p = ok();
    expect(() => op.call(K, 5, p, ok(), short, a)).toThrow(new RegExp(`${op.method}: s has 4 elements`));
    expect(() => op.call(K, -1, p, ok(), ok(), a)).toThrow(new RegExp(`${op.method}: n must be a non-negative integer, got -1`));
    expect(Array.from(p)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(short)).toEqual([1, 1, 1, 1]);
  });
});

describe('one-slot step availability', () => {
  it('the plain-JS kernels have none (the loops run their JS loops)', () => {
    expect([jsKernels.momentumStep, jsKernels.rmspropStep, jsKernels.adagradStep]).toEqual([undefined, undefined, undefined]);
  });
  it.runIf(wasmSupported())('the WebAssembly kernels have all three', () => {
    const K = createWasmKernels({ memoryMiB: 1 });
    expect([typeof K.momentumStep, typeof K.rmspropStep, typeof K.adagradStep]).toEqual(['function', 'function', 'function']);
  });
});

describe.runIf(wasmSupported())('wasm one-slot steps when scratch is short', () => {
  it.each(OPS)('%s falls back to the JS loop for foreign arrays larger than the free memory, with the same bits', (_o, op) => {
    const K = createWasmKernels({ memoryMiB: 1 });
    const rng = new Rng(83);
    const n = 90_001; // three foreign copies of 360 kB do not fit in 1 MiB, nor two beside an alloc of 360 kB
    for (const inside of [false, true]) {
      const { p, g, slots: [s] } = stepViews(K, rng, [inside, false, false], n, [op.squares], true);
      const want = [p, s].map((x) => Float32Array.from(x));
      op.reference(n, want[0], g, want[1], op.configs[0]);
      op.call(K, n, p, g, s, op.configs[0]);
      expect(firstDiff(p, want[0])).toBe(-1);
      expect(firstDiff(s, want[1])).toBe(-1);
    }
  });
});
