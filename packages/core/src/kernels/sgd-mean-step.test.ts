import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { jsKernels } from './js.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';
import { bits, buffer, jsLoopKernels, method, withWasm } from './test-util.js';

const kernels = withWasm(
  [
    ['reference', () => referenceKernels],
    // the loop the WebAssembly kernels fall back to (the plain-JS kernels themselves take the two passes)
    ['js loop', jsLoopKernels],
  ],
  { memoryMiB: 8 },
);

/** The kernel's sgdMeanStep (every kernel set of KERNEL_NAMES has one). */
const fused = (K: Kernels): NonNullable<Kernels['sgdMeanStep']> => method(K, 'sgdMeanStep');

/**
 * Values of mixed magnitudes: a normal draw times 2^-30 .. 2^30 (wide) or 2^-4 .. 2^4 (narrow, where
 * the order of the float64 sums shows in more of the last bits), with a subnormal where x / 98 and
 * x · (1/98) round apart and a few whose means round to subnormals (the float32 multiply of the
 * wasm kernel must round them as the float64 one does).
 */
function mixed(rng: Rng, out: Float32Array, wide = true): Float32Array {
  const span = wide ? 30 : 4;
  for (let i = 0; i < out.length; i++) out[i] = rng.nextNormal() * 2 ** (rng.nextInt(2 * span) - span);
  if (out.length > 2) out[2] = 294 * 2 ** -149;
  // subnormal means: ties to even (256 and 768 · 2^-149 over 512), exact, flushed to 0; and the largest float
  const special = [256 * 2 ** -149, -768 * 2 ** -149, -(2 ** -126), 3 * 2 ** -149, 3.4028234663852886e38];
  for (let k = 0; k < special.length && 3 + 2 * k < out.length; k++) out[3 + 2 * k] = special[k];
  return out;
}

const SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 17, 18, 1001, 4098, 4099];
const BATCHES = [512, 3, 98, 1];
const LR = 0.0123; // not a float32: the step's products are float64 ones

describe.each(kernels)('%s kernels: sgdMeanStep', (_name, make) => {
  it('equals meanSq then sgdStep bit for bit (n % 4 = 0..3, power-of-two and other batch sizes, in and outside its memory)', () => {
    const K = make();
    const rng = new Rng(51);
    let divided = 0;
    for (const n of SIZES) {
      for (const b of BATCHES) {
        for (const [pIn, gIn, wide] of [[true, true, true], [false, false, false], [true, false, false], [false, true, true], [true, true, false]]) {
          const p = buffer(K, pIn, n + 1);
          const g = buffer(K, gIn, n + 1);
          for (let i = 0; i <= n; i++) p[i] = rng.nextNormal();
          mixed(rng, g, wide);
          const wp = Float32Array.from(p);
          const wg = Float32Array.from(g);
          const wantSq = K.meanSq(n, wg, b);
          K.sgdStep(n, wp, wg, LR);
          // and the definition itself, in the reference loops
          const rp = Float32Array.from(p);
          const rg = Float32Array.from(g);
          const refSq = referenceKernels.meanSq(n, rg, b);
          referenceKernels.sgdStep(n, rp, rg, LR);
          const before = Float32Array.from(p);
          const sq = fused(K).call(K, n, p, g, b, LR);
          const what = `n=${n} b=${b} p ${pIn ? 'in' : 'out'} g ${gIn ? 'in' : 'out'} ${wide ? 'wide' : 'narrow'}`;
          expect(Object.is(sq, wantSq), `${what}: ${sq} vs ${wantSq}`).toBe(true);
          expect(Object.is(sq, refSq), what).toBe(true);
          expect(bits(g), what).toEqual(bits(wg));
          expect(bits(p), what).toEqual(bits(wp));
          expect(bits(p), what).toEqual(bits(rp));
          expect(bits(g), what).toEqual(bits(rg));
          expect(p[n], `${what}: past n`).toBe(before[n]); // element n untouched
          for (let i = 0; i < n; i++) if (p[i] !== before[i]) divided++;
        }
      }
    }
    expect(divided).toBeGreaterThan(10000); // the step really moved the parameters
  });

  it('follows the two passes for p and g overlapping (the same view, or views shifted by 1..5 elements)', () => {
    const K = make();
    const rng = new Rng(52);
    for (const n of [1, 3, 4, 7, 9, 33]) {
      for (const shift of [0, 1, 2, 3, 4, 5, -1, -3]) {
        for (const inMemory of [true, false]) {
          const len = n + 12;
          const buf = buffer(K, inMemory, len);
          for (let i = 0; i < len; i++) buf[i] = rng.nextNormal() * 8;
          const want = Float32Array.from(buf);
          const pAt = 6;
          const gAt = 6 + shift;
          const wantSq = referenceKernels.meanSq(n, want.subarray(gAt), 3);
          referenceKernels.sgdStep(n, want.subarray(pAt), want.subarray(gAt), LR);
          const sq = fused(K).call(K, n, buf.subarray(pAt), buf.subarray(gAt), 3, LR);
          const what = `n=${n} shift=${shift} ${inMemory ? 'in' : 'out'}`;
          expect(Object.is(sq, wantSq), what).toBe(true);
          expect(bits(buf), what).toEqual(bits(want));
        }
      }
    }
  });

  it('passes non-finite values through as the two passes do (no check of its own)', () => {
    const K = make();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const g = K.alloc(9).fill(2);
      g[6] = bad;
      const p = K.alloc(9).fill(1);
      const wg = Float32Array.from(g);
      const wp = Float32Array.from(p);
      const wantSq = referenceKernels.meanSq(9, wg, 4);
      referenceKernels.sgdStep(9, wp, wg, LR);
      const sq = fused(K).call(K, 9, p, g, 4, LR);
      expect(Number.isFinite(sq)).toBe(false);
      expect(sq).toBe(wantSq);
      expect(Array.from(p)).toEqual(Array.from(wp));
      expect(Array.from(g)).toEqual(Array.from(wg));
    }
  });
});

describe.each(kernels.filter(([name]) => name !== 'reference'))('%s kernels: sgdMeanStep validates', (_name, make) => {
  it('refuses operands shorter than n, naming them, before changing anything', () => {
    const K = make();
    const p = K.alloc(4).fill(1);
    const g = K.alloc(5).fill(2);
    expect(() => fused(K).call(K, 5, p, g, 2, LR)).toThrow(ShapeError);
    expect(() => fused(K).call(K, 5, p, g, 2, LR)).toThrow(/sgdMeanStep: dst has 4 elements, expected at least n = 5/);
    expect(() => fused(K).call(K, 5, K.alloc(5), K.alloc(3), 2, LR)).toThrow(/sgdMeanStep: src has 3 elements/);
    expect(() => fused(K).call(K, -1, p, g, 2, LR)).toThrow(/sgdMeanStep: n must be a non-negative integer, got -1/);
    expect(Array.from(p)).toEqual([1, 1, 1, 1]);
    expect(Array.from(g)).toEqual([2, 2, 2, 2, 2]);
  });
});

describe.runIf(wasmSupported())('wasm sgdMeanStep when scratch is short', () => {
  it('falls back to plain JS for foreign arrays larger than the free memory, with the same bits', () => {
    const K = createWasmKernels({ memoryMiB: 1 });
    const rng = new Rng(53);
    const n = 150_001; // two foreign copies of 600 kB do not fit in 1 MiB; one does
    for (const pIn of [false, true]) {
      const p = buffer(K, pIn, n);
      const g = mixed(rng, new Float32Array(n));
      for (let i = 0; i < n; i++) p[i] = rng.nextNormal();
      const wp = Float32Array.from(p);
      const wg = Float32Array.from(g);
      const wantSq = jsKernels.meanSq(n, wg, 3);
      jsKernels.sgdStep(n, wp, wg, LR);
      const sq = fused(K).call(K, n, p, g, 3, LR);
      expect(Object.is(sq, wantSq), `p ${pIn ? 'in' : 'out'}`).toBe(true);
      expect(bits(p)).toEqual(bits(wp));
      expect(bits(g)).toEqual(bits(wg));
    }
  });
});
