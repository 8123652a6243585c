export type { Kernels, KernelName } from './types.js';
export { referenceKernels } from './reference.js';
import type { Kernels, KernelName } from './types.js';
import { referenceKernels } from './reference.js';

/** The kernels for a name. 'js' is always available. */
export function getKernels(name: KernelName = 'js'): Kernels {
  if (name === 'js') return referenceKernels;
  throw new Error(`kernel ${name} is not available in this runtime`);
}
