import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import { adagradLoop, momentumLoop, rmspropLoop } from '../optim/loops.js';
import type { Kernels } from './types.js';
import { jsKernels } from './js.js';
import { adagradStepJs, checkViews, momentumStepJs, rmspropStepJs } from './check.js';
import { createWasmKernels, wasmFmaSupported, wasmSupported } from './wasm/wasm.js';

// momentumStep, rmspropStep and adagradStep: the one-slot optimizer steps for plain terms.

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
/** The first index where a and b differ in bits (or in length), else -1: fast on long arrays. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}
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

const need = <T>(f: T | undefined, what: string): T => {
  if (f === undefined) throw new Error(`kernels lack ${what}`);
  return f;
};

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
  call: (K, n, p, g, s, [lr, mu]) => need(K.momentumStep, 'momentumStep').call(K, n, p, g, s, lr, mu, nesterov),
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
      call: (K, n, p, g, s, [lr, rho, eps]) => need(K.rmspropStep, 'rmspropStep').call(K, n, p, g, s, lr, rho, eps),
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
      call: (K, n, p, g, s, [lr, eps]) => need(K.adagradStep, 'adagradStep').call(K, n, p, g, s, lr, eps),
      configs: [[0.01, 1e-8], [0.1, 1e-10], [0.0123, 1e-3], [0.5, 1e-30]],
      squares: true,
    },
  ],
];

/** `op`'s JS loop as a kernel method (with the kernels' argument check), on the plain-JS kernels. */
function jsLoopKernels(): Kernels {
  return {
    ...jsKernels,
    momentumStep: (n, p, g, s, lr, mu, nes) => (checkViews('momentumStep', n, { p, g, s }), momentumStepJs(n, p, g, s, lr, mu, nes)),
    rmspropStep: (n, p, g, s, lr, rho, eps) => (checkViews('rmspropStep', n, { p, g, s }), rmspropStepJs(n, p, g, s, lr, rho, eps)),
    adagradStep: (n, p, g, s, lr, eps) => (checkViews('adagradStep', n, { p, g, s }), adagradStepJs(n, p, g, s, lr, eps)),
  };
}

const kernels: Array<[string, () => Kernels]> = [['js loop', jsLoopKernels]];
if (wasmSupported()) kernels.push(['wasm', () => createWasmKernels({ memoryMiB: 8 })]);
if (wasmFmaSupported()) kernels.push(['wasm-fma', () => createWasmKernels({ memoryMiB: 8, fma: true })]);

/** Mixed magnitudes: normal draws times 2^-40 .. 2^40, with zeros, ±0, subnormals and the largest floats sprinkled in. */
function mixed(rng: Rng, out: Float32Array, nonNegative = false): Float32Array {
  const special = [0, -0, 2 ** -149, -(3 * 2 ** -149), 2 ** -126, 1e-40, 3.4028234663852886e38, -3.0e38, 1e30, -1e-30];
  for (let i = 0; i < out.length; i++) {
    const r = rng.nextInt(10);
    out[i] = r === 0 ? special[rng.nextInt(special.length)] : rng.nextNormal() * 2 ** (rng.nextInt(81) - 40);
    if (nonNegative) out[i] = Math.abs(out[i]);
  }
  return out;
}

const SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1001, 4098, 4099];
const cases = kernels.flatMap(([k, make]) => OPS.map(([o, op]) => [k, o, make, op] as const));

describe.each(cases)('%s kernels: %s step', (_k, _o, make, op) => {
  it('equals the plain loop bit for bit (many n, several steps, views in and outside its memory)', () => {
    const K = make();
    const rng = new Rng(81);
    let moved = 0;
    let checked = 0;
    for (const n of SIZES) {
      for (const a of op.configs) {
        const where = [rng.nextInt(2) === 1, rng.nextInt(2) === 1, rng.nextInt(2) === 1];
        if (n === 4099) where.fill(true);
        if (n === 4098) where.fill(false);
        const [p, g, s] = where.map((inside) => (inside ? K.alloc(n + 1) : new Float32Array(n + 1)));
        mixed(rng, p);
        mixed(rng, s, op.squares);
        const want = [p, s].map((x) => Float32Array.from(x));
        const loop = [p, s].map((x) => Float32Array.from(x));
        for (let t = 1; t <= 3; t++) {
          mixed(rng, g);
          const what = `n=${n} args=${a.join(',')} t=${t} in=${where.join(',')}`;
          op.reference(n, want[0], g, want[1], a);
          op.loop(loop[0].subarray(0, n), g, loop[1], a);
          const before = Float32Array.from(p);
          const g0 = Float32Array.from(g);
          op.call(K, n, p, g, s, a);
          expect(firstDiff(p, want[0]), `${what}: p`).toBe(-1);
          expect(firstDiff(s, want[1]), `${what}: slot`).toBe(-1);
          expect(firstDiff(p, loop[0]), `${what}: loop p`).toBe(-1);
          expect(firstDiff(s, loop[1]), `${what}: loop slot`).toBe(-1);
          expect(firstDiff(g, g0), `${what}: g read-only`).toBe(-1);
          expect(p[n], `${what}: past n`).toBe(before[n]);
          for (let i = 0; i < n; i++) if (!Object.is(p[i], before[i])) moved++;
          checked += n;
        }
      }
    }
    expect(checked).toBeGreaterThan(100_000);
    expect(moved).toBeGreaterThan(checked / 3); // the step really moved many parameters
  });

  it('follows the JS loop for overlapping views (the same view, or shifted by 1..3 elements)', () => {
    const K = make();
    const rng = new Rng(82);
    const layouts: Array<[number, number, number]> = [
      [0, 40, 0], // p = s
      [0, 0, 40], // p = g
      [40, 80, 81], // g and s shifted by 1
      [2, 0, 80], // p and g shifted by 2
      [83, 40, 80], // p and s shifted by 3
    ];
    for (const n of [1, 2, 3, 5, 8, 33]) {
      for (const [pAt, gAt, sAt] of layouts) {
        for (const inMemory of [true, false]) {
          const buf = inMemory ? K.alloc(160) : new Float32Array(160);
          for (let i = 0; i < buf.length; i++) buf[i] = Math.abs(rng.nextNormal()) * 4;
          const want = Float32Array.from(buf);
          const a = op.configs[1];
          op.js(n, want.subarray(pAt), want.subarray(gAt), want.subarray(sAt), a);
          op.call(K, n, buf.subarray(pAt), buf.subarray(gAt), buf.subarray(sAt), a);
          expect(bits(buf), `n=${n} at=${[pAt, gAt, sAt].join(',')} ${inMemory ? 'in' : 'out'}`).toEqual(bits(want));
        }
      }
    }
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
      const p = inside ? K.alloc(n) : new Float32Array(n);
      const [g, s] = [0, 1].map(() => new Float32Array(n));
      mixed(rng, p);
      mixed(rng, g);
      mixed(rng, s, op.squares);
      const want = [p, s].map((x) => Float32Array.from(x));
      op.reference(n, want[0], g, want[1], op.configs[0]);
      op.call(K, n, p, g, s, op.configs[0]);
      expect(firstDiff(p, want[0])).toBe(-1);
      expect(firstDiff(s, want[1])).toBe(-1);
    }
  });
});
