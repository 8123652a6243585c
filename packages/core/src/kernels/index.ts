export type { Kernels, KernelName } from './types.js';
export { KERNEL_NAMES } from './types.js';
export { referenceKernels } from './reference.js';
export { jsKernels } from './js.js';
export { createWasmKernels, wasmFmaSupported, wasmSupported, type WasmKernelOptions } from './wasm/wasm.js';
import type { Kernels, KernelName } from './types.js';
import { DptrainError } from '../errors.js';
import { jsKernels } from './js.js';
import { createWasmKernels, wasmFmaSupported, wasmSupported } from './wasm/wasm.js';

/**
 * The kernels for a name.
 * - 'js': the fast pure-TypeScript kernels, bit-identical to referenceKernels; one
 *   shared stateless object, always available.
 * - 'wasm': WebAssembly SIMD128 kernels. Each call returns a FRESH instance with its
 *   own fixed-size memory (default 64 MiB; alloc() never frees): create one per model
 *   and keep it. For another memory size use createWasmKernels({ memoryMiB }).
 * - 'wasm-fma': the same kernels with each multiply-add of the GEMM tile fused (relaxed
 *   SIMD); faster, where wasmFmaSupported() (which also checks that the CPU fuses).
 * - 'auto': 'wasm' when this runtime validates the SIMD module, else 'js'. They
 *   differ in the last bits, so a distributed run must resolve 'auto' once and pin
 *   the resulting name (`kernels.name`) for every worker.
 * Throws E_KERNEL for 'wasm' / 'wasm-fma' where the runtime lacks them, and for unknown names.
 */
export function getKernels(name: KernelName | 'auto' = 'js'): Kernels {
  if (name === 'js') return jsKernels;
  if (name === 'wasm') return createWasmKernels();
  if (name === 'wasm-fma') return createWasmKernels({ fma: true });
  if (name === 'auto') return wasmSupported() ? createWasmKernels() : jsKernels;
  throw new DptrainError('E_KERNEL', `unknown kernel name ${String(name)}: expected one of js, wasm, wasm-fma, auto`);
}

/** The kernel names usable in this runtime: always 'js', plus 'wasm' where WebAssembly SIMD128 validates, plus 'wasm-fma' where wasmFmaSupported(). */
export function availableKernels(): KernelName[] {
  const out: KernelName[] = ['js'];
  if (wasmSupported()) out.push('wasm');
  if (wasmFmaSupported()) out.push('wasm-fma');
  return out;
}

/**
 * A zeroed buffer of `length` floats from the kernels' memory (where they work on it in
 * place), or a plain Float32Array when that memory is full: correct, just slower.
 */
export function allocOrPlain(kernels: Kernels, length: number): Float32Array {
  try {
    return kernels.alloc(length);
  } catch (e) {
    if (e instanceof DptrainError && e.code === 'E_KERNEL_MEMORY') return new Float32Array(length);
    throw e;
  }
}
