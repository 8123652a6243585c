import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import { referenceKernels } from './reference.js';
import { jsKernels } from './js.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';
import { bits, buffer, withWasm } from './test-util.js';

/** Values over many binades, with exact cancellations and signed zeros, so rounding is exercised. */
function values(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.nextInt(10);
    out[i] = r === 0 ? -0 : r === 1 ? 0 : rng.nextNormal() * 2 ** (rng.nextInt(60) - 30);
  }
  return out;
}

/** dst + src, each element one float32 addition (the definition the kernels must meet). */
function expected(dst: Float32Array, src: Float32Array, n: number): Float32Array {
  const out = Float32Array.from(dst);
  for (let i = 0; i < n; i++) out[i] = Math.fround(dst[i] + src[i]);
  return out;
}

const kernels = withWasm([['reference', () => referenceKernels], ['js', () => jsKernels]], { memoryMiB: 4, fma: false });

describe.each(kernels)('%s kernels: add', (_name, make) => {
  const K = make();
  const lengths = [0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1001];

  it('adds n elements in place, bit for bit one float32 addition each, and leaves the rest alone', () => {
    const rng = new Rng(7);
    for (const n of lengths) {
      const dst = K.alloc(n + 3);
      dst.set(values(rng, n + 3));
      const src = K.alloc(n + 2);
      src.set(values(rng, n + 2));
      const want = expected(dst, src, n);
      K.add(n, dst, src);
      expect(bits(dst), `n=${n}`).toEqual(bits(want));
    }
  });

  it('works on arrays from outside its memory (plain Float32Arrays and offset views)', () => {
    const rng = new Rng(8);
    for (const n of lengths) {
      const backing = values(rng, n + 9);
      const dst = backing.subarray(1, n + 1);
      const src = values(rng, n);
      const want = expected(dst, src, n);
      const before = Array.from(backing.subarray(n + 1));
      K.add(n, dst, src);
      expect(bits(dst), `n=${n}`).toEqual(bits(want));
      expect(Array.from(backing.subarray(n + 1))).toEqual(before);
    }
  });

  it('doubles an array added to itself, and follows the sequential order for overlapping views', () => {
    const rng = new Rng(9);
    const a = K.alloc(37);
    a.set(values(rng, 37));
    const want = Float32Array.from(a, (v) => Math.fround(v + v));
    K.add(37, a, a);
    expect(bits(a)).toEqual(bits(want));

    const buf = K.alloc(40);
    buf.set(values(rng, 40));
    const ref = Float32Array.from(buf);
    for (let i = 0; i < 33; i++) ref[3 + i] = Math.fround(ref[3 + i] + ref[i]);
    K.add(33, buf.subarray(3), buf.subarray(0, 33));
    expect(bits(buf)).toEqual(bits(ref));
  });

});

describe.each(kernels.filter(([name]) => name !== 'reference'))('%s kernels: add validates', (_name, make) => {
  it('refuses a length the operands do not have, naming the operand', () => {
    const K = make();
    const a = K.alloc(4);
    const b = K.alloc(8);
    expect(() => K.add(5, a, b)).toThrow(ShapeError);
    expect(() => K.add(5, a, b)).toThrow(/dst has 4 elements, expected at least n = 5/);
    expect(() => K.add(5, b, a)).toThrow(/src has 4 elements/);
    expect(() => K.add(-1, a, b)).toThrow(/n must be a non-negative integer/);
  });
});

describe.runIf(wasmSupported())('wasm add when scratch is short', () => {
  it('falls back to plain JS for foreign arrays larger than the free memory, with the same bits', () => {
    const K = createWasmKernels({ memoryMiB: 1 });
    const n = 200_000; // 800 kB each: two copies do not fit in 1 MiB next to nothing else
    const rng = new Rng(10);
    const dst = values(rng, n);
    const src = values(rng, n);
    const want = expected(dst, src, n);
    K.add(n, dst, src);
    expect(bits(dst)).toEqual(bits(want));
  });
});

describe.each(kernels)('%s kernels: firstNonFinite', (_name, make) => {
  const K = make();
  const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];

  it('finds the first NaN or ±Infinity at any position, in its memory or not, and -1 when all are finite', () => {
    const rng = new Rng(11);
    for (const n of [1, 3, 4, 5, 15, 16, 17, 64, 1001]) {
      for (const inMemory of [true, false]) {
        const x = buffer(K, inMemory, n + 2);
        x.set(values(rng, n + 2));
        x[n] = Number.NaN; // beyond n: never looked at
        expect(K.firstNonFinite(n, x), `n=${n}`).toBe(-1);
        for (const pos of new Set([0, n >> 1, n - 1])) {
          for (const v of bad) {
            const saved = x[pos];
            x[pos] = v;
            if (pos + 1 < n) x[n - 1] = Number.NaN; // a later bad value does not hide the first
            expect(K.firstNonFinite(n, x), `n=${n} pos=${pos} ${v}`).toBe(pos);
            x[pos] = saved;
            if (pos + 1 < n) x[n - 1] = 1;
          }
        }
      }
    }
    expect(K.firstNonFinite(0, K.alloc(1))).toBe(-1);
    // the largest finite float32 values are finite
    const big = Float32Array.of(3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0);
    expect(K.firstNonFinite(4, big)).toBe(-1);
  });
});
