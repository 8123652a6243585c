import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { referenceKernels } from './reference.js';
import { jsKernels } from './js.js';
import { bits, buffer, withWasm } from './test-util.js';

const kernels = withWasm([['reference', () => referenceKernels], ['js', () => jsKernels]], { memoryMiB: 8, fma: false });

describe.each(kernels)('%s kernels: gemmABt with fused ReLU', (_name, make) => {
  it('stores x > 0 ? x : 0 of exactly the values the plain product stores, on edge-tile shapes', () => {
    const K = make();
    const rng = new Rng(21);
    let zeros = 0;
    let positives = 0;
    for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [4, 8, 16], [5, 9, 3], [13, 17, 33], [32, 256, 40]]) {
      const a = K.alloc(m * k);
      const b = K.alloc(n * k);
      const bias = K.alloc(n);
      for (let i = 0; i < a.length; i++) a[i] = rng.nextNormal();
      for (let i = 0; i < b.length; i++) b[i] = rng.nextNormal();
      for (let i = 0; i < n; i++) bias[i] = i % 5 === 0 ? -0 : rng.nextNormal();
      for (const withBias of [true, false]) {
        const plain = K.alloc(m * n);
        const fused = K.alloc(m * n).fill(Number.NaN);
        K.gemmABt(m, n, k, a, b, plain, withBias ? bias : undefined);
        K.gemmABt(m, n, k, a, b, fused, withBias ? bias : undefined, true);
        const want = Float32Array.from(plain, (v) => (v > 0 ? v : 0));
        expect(bits(fused), `${m}x${n}x${k} bias ${withBias}`).toEqual(bits(want));
        for (const v of fused) v > 0 ? positives++ : zeros++;
      }
    }
    // both branches of the ReLU were taken
    expect(zeros).toBeGreaterThan(100);
    expect(positives).toBeGreaterThan(100);
  });

  it('turns NaN and -0 into +0, as the separate JS pass did', () => {
    const K = make();
    const a = K.alloc(4).fill(1);
    const b = K.alloc(4 * 4);
    b.set([Number.NaN, 0, 0, 0, -0, -0, -0, -0, 1, 1, 1, 1, -1, -1, -1, -1]);
    const c = K.alloc(4).fill(7);
    K.gemmABt(1, 4, 4, a, b, c, undefined, true);
    expect(bits(c)).toEqual(bits(Float32Array.of(0, 0, 4, 0)));
  });
});

describe.each(kernels)('%s kernels: backward element-wise passes', (_name, make) => {
  it('reluGrad keeps d where h > 0 and writes +0 elsewhere (h NaN, 0, -0, negative), in or outside its memory', () => {
    const K = make();
    const rng = new Rng(22);
    for (const n of [1, 3, 4, 5, 17, 1001]) {
      for (const inMemory of [true, false]) {
        const d = buffer(K, inMemory, n + 1);
        const h = buffer(K, inMemory, n);
        for (let i = 0; i <= n; i++) d[i] = rng.nextNormal();
        for (let i = 0; i < n; i++) h[i] = [Number.NaN, 0, -0, -1, 2.5, rng.nextNormal()][rng.nextInt(6)];
        const want = Float32Array.from(d, (v, i) => (i < n ? (h[i] > 0 ? v : 0) : v));
        K.reluGrad(n, d, h);
        expect(bits(d), `n=${n} inMemory=${inMemory}`).toEqual(bits(want));
      }
    }
  });

  it('colSums accumulates each column in float64 in row order and rounds once', () => {
    const K = make();
    const rng = new Rng(23);
    for (const [rows, n] of [[1, 1], [3, 5], [32, 256], [7, 10], [33, 130]]) {
      for (const inMemory of [true, false]) {
        const d = buffer(K, inMemory, rows * n);
        // large and small magnitudes, so float32 accumulation would round differently
        for (let i = 0; i < d.length; i++) d[i] = rng.nextNormal() * 2 ** (rng.nextInt(40) - 20);
        const out = buffer(K, inMemory, n + 1);
        out[n] = 42;
        const want = new Float32Array(n + 1);
        want[n] = 42;
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += d[r * n + j];
          want[j] = s;
        }
        K.colSums(rows, n, d, out);
        expect(bits(out), `${rows}x${n} inMemory=${inMemory}`).toEqual(bits(want));
      }
    }
  });
});

describe.each(kernels.filter(([name]) => name !== 'reference'))('%s kernels: element-wise validation', (_name, make) => {
  it('refuses operands shorter than the counts, naming them', () => {
    const K = make();
    expect(() => K.reluGrad(5, K.alloc(4), K.alloc(8))).toThrow(/reluGrad: dst has 4 elements/);
    expect(() => K.colSums(3, 4, K.alloc(11), K.alloc(4))).toThrow(/colSums: d has 11 elements, expected at least rows\*n = 3\*4 = 12/);
    expect(() => K.colSums(3, 4, K.alloc(12), K.alloc(3))).toThrow(/colSums: out has 3 elements/);
  });
});

describe.each(kernels)('%s kernels: the update passes', (_name, make) => {
  /** The definition: divide, then squares in four interleaved float64 partial sums. */
  function meanSqDef(g: Float32Array, n: number, b: number): number {
    const part = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      g[i] = Math.fround(g[i] / b);
      part[i % 4] += g[i] * g[i];
    }
    return part[0] + part[1] + (part[2] + part[3]);
  }

  it('meanSq divides in place and sums the squares in the fixed order (power-of-two and other batch sizes)', () => {
    const K = make();
    const rng = new Rng(31);
    for (const n of [1, 2, 3, 4, 5, 7, 8, 17, 1001]) {
      for (const b of [512, 98, 1, 3]) {
        for (const inMemory of [true, false]) {
          const g = buffer(K, inMemory, n + 1);
          for (let i = 0; i <= n; i++) g[i] = rng.nextNormal() * 2 ** (rng.nextInt(60) - 30);
          if (n > 2) g[2] = 294 * 2 ** -149; // x / 98 and x · (1/98) round apart here
          const want = Float32Array.from(g);
          const wantSq = meanSqDef(want, n, b);
          const sq = K.meanSq(n, g, b);
          expect(Object.is(sq, wantSq), `n=${n} b=${b}: ${sq} vs ${wantSq}`).toBe(true);
          expect(bits(g), `n=${n} b=${b}`).toEqual(bits(want));
        }
      }
    }
  });

  it('meanSq returns a non-finite sum when a value is NaN or infinite', () => {
    const K = make();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const g = K.alloc(9).fill(1);
      g[6] = bad;
      expect(Number.isFinite(K.meanSq(9, g, 4))).toBe(false);
    }
  });

  it('sgdStep computes p − lr·g in float64, rounded once', () => {
    const K = make();
    const rng = new Rng(32);
    for (const n of [1, 3, 4, 5, 17, 1001]) {
      for (const inMemory of [true, false]) {
        const p = buffer(K, inMemory, n + 1);
        const g = buffer(K, inMemory, n);
        for (let i = 0; i <= n; i++) p[i] = rng.nextNormal();
        for (let i = 0; i < n; i++) g[i] = rng.nextNormal() * 1e-3;
        const lr = 0.05;
        const want = Float32Array.from(p, (v, i) => (i < n ? Math.fround(v - lr * g[i]) : v));
        K.sgdStep(n, p, g, lr);
        expect(bits(p), `n=${n}`).toEqual(bits(want));
      }
    }
  });
});
