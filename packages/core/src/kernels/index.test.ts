import { describe, expect, it } from 'vitest';
import { DptrainError } from '../errors.js';
import { availableKernels, getKernels, jsKernels, referenceKernels, wasmFmaSupported, wasmSupported } from './index.js';
import type { KernelName } from './types.js';

describe('getKernels / availableKernels', () => {
  it('serves the fast js kernels for js (and by default), and still exports the reference', () => {
    expect(getKernels('js')).toBe(jsKernels);
    expect(getKernels()).toBe(jsKernels);
    expect(referenceKernels.name).toBe('js');
  });

  it('lists js always and wasm exactly when WebAssembly SIMD128 validates', () => {
    const names = availableKernels();
    expect(names[0]).toBe('js');
    expect(names.includes('wasm')).toBe(wasmSupported());
    // Node 20 has SIMD128, so this runtime must offer wasm.
    expect(wasmSupported()).toBe(typeof (globalThis as { WebAssembly?: unknown }).WebAssembly === 'object');
  });

  it('gives a fresh wasm instance per call, each with its own memory', () => {
    const a = getKernels('wasm');
    const b = getKernels('wasm');
    expect(a.name).toBe('wasm');
    // (identity checked as booleans: a failed toBe would deep-compare two 64 MiB buffers)
    expect(a === b).toBe(false);
    expect(a.alloc(4).buffer === b.alloc(4).buffer).toBe(false);
  });

  it('lists wasm-fma exactly when it is supported, and serves it by name', () => {
    expect(availableKernels().includes('wasm-fma')).toBe(wasmFmaSupported());
    if (wasmFmaSupported()) expect(getKernels('wasm-fma').name).toBe('wasm-fma');
    else expect(() => getKernels('wasm-fma')).toThrow(/kernel wasm-fma is not available/);
  });

  it("resolves 'auto' to wasm where available", () => {
    expect(getKernels('auto').name).toBe(wasmSupported() ? 'wasm' : 'js');
  });

  it('rejects an unknown name, naming the allowed ones', () => {
    expect(() => getKernels('gpu' as KernelName)).toThrow(DptrainError);
    expect(() => getKernels('gpu' as KernelName)).toThrow(/unknown kernel name gpu: expected one of js, wasm, wasm-fma, auto/);
  });
});
