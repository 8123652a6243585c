import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import type { Kernels } from './types.js';
import { referenceKernels } from './reference.js';
import { jsKernels } from './js.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const kernels: Array<[string, () => Kernels]> = [
  ['reference', () => referenceKernels],
  ['js', () => jsKernels],
];
if (wasmSupported()) kernels.push(['wasm', () => createWasmKernels({ memoryMiB: 8 })]);

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
