import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import { adamLoop } from '../optim/loops.js';
import type { Kernels } from './types.js';
import { jsKernels } from './js.js';
import { adamStepJs } from './check.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';
import { STEP_SIZES, bits, expectOverlapsFollow, jsLoopKernels, expectStep, fillMixed, method, places, stepViews, withWasm } from './test-util.js';

type AdamStep = NonNullable<Kernels['adamStep']>;

const kernels = withWasm(
  [
    // the loop adamLoop runs without the kernel, and the WebAssembly kernels fall back to
    ['js loop', jsLoopKernels],
  ],
  { memoryMiB: 8 },
);

const step = (K: Kernels): AdamStep => method(K, 'adamStep');

/** adamLoop's plain branch as it was written before the kernel: the definition, element by element. */
function reference(n: number, p: Float32Array, src: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number, decay: number): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < n; i++) {
    const g = src[i];
    const mi = b1 * m[i] + c1 * g;
    const vi = b2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const w = p[i];
    p[i] = w - decay * w - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

/** (lr, β1, β2, ε, decay): adam's defaults, adamw, odd values, β1 = 0, tiny ε. */
const CONFIGS: Array<[number, number, number, number, number]> = [
  [0.001, 0.9, 0.999, 1e-8, 0],
  [0.001, 0.9, 0.999, 1e-8, 0.001 * 0.01],
  [0.0123, 0.85, 0.99, 1e-7, 0.0123 * 0.3],
  [0.5, 0, 0.5, 1e-3, 0],
  [3e-4, 0.95, 0.9999, 1e-30, 3e-4 * 0.1],
];

describe.each(kernels)('%s kernels: adamStep', (_name, make) => {
  it("equals adamLoop's plain loop bit for bit (many n, several steps t, adam and adamw, views in and outside its memory)", () => {
    const K = make();
    const rng = new Rng(61);
    let moved = 0;
    let checked = 0;
    for (const n of STEP_SIZES) {
      for (const [lr, b1, b2, eps, decay] of CONFIGS) {
        const where = places(rng, 4, n);
        const views = stepViews(K, rng, where, n + 1, [false, true], false);
        const { p, g, slots: [m, v] } = views;
        const want = [p, m, v].map((a) => Float32Array.from(a));
        const loop = [p, m, v].map((a) => Float32Array.from(a));
        for (let t = 1; t <= 4; t++) {
          fillMixed(rng, g);
          const bc1 = 1 - Math.pow(b1, t);
          const bc2 = 1 - Math.pow(b2, t);
          const what = `n=${n} lr=${lr} b1=${b1} decay=${decay} t=${t} in=${where.join(',')}`;
          reference(n, want[0], g, want[1], want[2], lr, b1, b2, eps, bc1, bc2, decay);
          adamLoop(loop[0].subarray(0, n), g, { scale: 1, l2: 0, l1: 0 }, loop[1], loop[2], lr, { b1, b2, eps, bc1, bc2, decay });
          moved += expectStep(what, n, views, ['m', 'v'], want, loop, () => step(K).call(K, n, p, g, m, v, lr, b1, b2, eps, bc1, bc2, decay));
          checked += n;
        }
      }
    }
    expect(checked).toBeGreaterThan(150_000);
    expect(moved).toBeGreaterThan(checked / 2); // the step really moved most parameters
  });

  it('follows the JS loop, element by element, for overlapping views (the same view, or shifted by 1..3 elements)', () => {
    const K = make();
    // offsets of p, g, m, v in blocks of 40 (n <= 33), with one overlap each
    const layouts = [
      [0, 40, 0, 80], // p = m
      [0, 0, 40, 80], // p = g
      [0, 40, 80, 80], // m = v
      [0, 40, 80, 81], // m and v shifted by 1
      [2, 0, 40, 80], // p and g shifted by 2
      [0, 43, 40, 80], // g and m shifted by 3
      [81, 40, 120, 80], // p and v shifted by 1
    ];
    const args = [0.01, 0.9, 0.999, 1e-8, 1 - 0.9 ** 3, 1 - 0.999 ** 3, 1e-4] as const;
    expectOverlapsFollow(
      K,
      new Rng(62),
      200,
      layouts,
      (n, [p, g, m, v]) => reference(n, p, g, m, v, ...args),
      (n, [p, g, m, v]) => step(K).call(K, n, p, g, m, v, ...args),
    );
  });

  it('passes non-finite values through as the JS loop does (no check of its own)', () => {
    const K = make();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const [p, g, m, v] = [0, 1, 2, 3].map(() => K.alloc(9).fill(0.5));
      g[6] = bad;
      const want = [p, g, m, v].map((a) => Float32Array.from(a));
      reference(9, want[0], want[1], want[2], want[3], 0.01, 0.9, 0.999, 1e-8, 0.1, 0.001, 0);
      step(K).call(K, 9, p, g, m, v, 0.01, 0.9, 0.999, 1e-8, 0.1, 0.001, 0);
      expect(Number.isNaN(p[6])).toBe(true);
      // values (NaN equals NaN here: its payload is not part of the contract)
      expect([p, m, v].map((a) => Array.from(a))).toEqual([want[0], want[2], want[3]].map((a) => Array.from(a)));
    }
  });

  it('refuses operands shorter than n, naming them, before changing anything', () => {
    const K = make();
    const ok = () => K.alloc(5).fill(1);
    const short = K.alloc(4).fill(1);
    const a = [0.01, 0.9, 0.999, 1e-8, 0.1, 0.001, 0] as const;
    expect(() => step(K).call(K, 5, short, ok(), ok(), ok(), ...a)).toThrow(ShapeError);
    expect(() => step(K).call(K, 5, short, ok(), ok(), ok(), ...a)).toThrow(/adamStep: p has 4 elements, expected at least n = 5/);
    expect(() => step(K).call(K, 5, ok(), short, ok(), ok(), ...a)).toThrow(/adamStep: g has 4 elements/);
    expect(() => step(K).call(K, 5, ok(), ok(), short, ok(), ...a)).toThrow(/adamStep: m has 4 elements/);
    const p = ok();
    const m = ok();
    expect(() => step(K).call(K, 5, p, ok(), m, short, ...a)).toThrow(/adamStep: v has 4 elements/);
    expect(() => step(K).call(K, -1, p, ok(), m, ok(), ...a)).toThrow(/adamStep: n must be a non-negative integer, got -1/);
    expect(Array.from(p)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(m)).toEqual([1, 1, 1, 1, 1]);
    expect(Array.from(short)).toEqual([1, 1, 1, 1]);
  });
});

describe('adamStep availability', () => {
  it('the plain-JS kernels have none (adamLoop runs adamStepJs)', () => {
    expect(jsKernels.adamStep).toBeUndefined();
  });
  it.runIf(wasmSupported())('the WebAssembly kernels have it', () => {
    expect(typeof createWasmKernels({ memoryMiB: 1 }).adamStep).toBe('function');
  });
});

describe.runIf(wasmSupported())('wasm adamStep when scratch is short', () => {
  it('falls back to the JS loop for foreign arrays larger than the free memory, with the same bits', () => {
    const K = createWasmKernels({ memoryMiB: 1 });
    const rng = new Rng(63);
    const n = 100_003; // four foreign copies of 400 kB do not fit in 1 MiB; two do
    for (const inside of [false, true]) {
      const { p, g, slots: [m, v] } = stepViews(K, rng, [inside, false, false, false], n, [false, true], true);
      const want = [p, m, v].map((a) => Float32Array.from(a));
      const a = [0.001, 0.9, 0.999, 1e-8, 1 - 0.9 ** 7, 1 - 0.999 ** 7, 1e-5] as const;
      reference(n, want[0], g, want[1], want[2], ...a);
      step(K).call(K, n, p, g, m, v, ...a);
      expect(bits(p)).toEqual(bits(want[0]));
      expect(bits(m)).toEqual(bits(want[1]));
      expect(bits(v)).toEqual(bits(want[2]));
    }
  });
});
