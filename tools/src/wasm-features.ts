/**
 * Imported first by every dptrain entry point (the CLI and the benchmark scripts): on
 * Node 20, WebAssembly relaxed SIMD — which kernel 'wasm-fma' needs — is behind a V8
 * flag; set it before any module is compiled. Node 22 and later ship relaxed SIMD and
 * need nothing. Nothing else changes: the other kernels never use relaxed instructions.
 */
import { setFlagsFromString } from 'node:v8';

export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

if (Number(process.versions.node.split('.')[0]) < 22) setFlagsFromString(RELAXED_SIMD_FLAG);
