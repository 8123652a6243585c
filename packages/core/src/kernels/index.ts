export type { Kernels, KernelName } from './types.js';
export { referenceKernels } from './reference.js';
export { jsKernels } from './js.js';
export { createWasmKernels, wasmSupported, type WasmKernelOptions } from './wasm/wasm.js';
import type { Kernels, KernelName } from './types.js';
import { DptrainError } from '../errors.js';
import { jsKernels } from './js.js';
import { createWasmKernels, wasmSupported } from './wasm/wasm.js';

/**
 * The kernels for a name.
 * - 'js': the fast pure-TypeScript kernels, bit-identical to referenceKernels; one
 *   shared stateless object, always available.
 * - 'wasm': WebAssembly SIMD128 kernels. Each call returns a FRESH instance with its
 *   own fixed-size memory (default 64 MiB; alloc() never frees): create one per model
 *   and keep it. For another memory size use createWasmKernels({ memoryMiB }).
 * - 'auto': 'wasm' when this runtime validates the SIMD module, else 'js'. The two
 *   differ in the last bits, so a distributed run must resolve 'auto' once and pin
 *   the resulting name (`kernels.name`) for every worker.
 * Throws E_KERNEL for 'wasm' where WebAssembly SIMD128 is missing, and for unknown names.
 */
export function getKernels(name: KernelName | 'auto' = 'js'): Kernels {
  if (name === 'js') return jsKernels;
  if (name === 'wasm') return createWasmKernels();
  if (name === 'auto') return wasmSupported() ? createWasmKernels() : jsKernels;
  throw new DptrainError('E_KERNEL', `unknown kernel name ${String(name)}: expected one of js, wasm, auto`);
}

/** The kernel names usable in this runtime: always 'js', plus 'wasm' where WebAssembly SIMD128 validates. */
export function availableKernels(): KernelName[] {
  return wasmSupported() ? ['js', 'wasm'] : ['js'];
}
