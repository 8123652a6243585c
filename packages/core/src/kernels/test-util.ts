/**
 * Helpers shared by the kernel tests (and the optimizer tests that drive kernels). Test-only:
 * nothing here is exported from the package index.
 */

import { expect } from 'vitest';
import type { Rng } from '../rng.js';
import { adagradStepJs, adamStepJs, checkElementwise, checkViews, momentumStepJs, rmspropStepJs, sgdMeanStepJs } from './check.js';
import { jsKernels } from './js.js';
import type { Kernels } from './types.js';
import { createWasmKernels, wasmFmaSupported, wasmSupported } from './wasm/wasm.js';

/** The bit patterns of a's values, for bit-for-bit comparisons (±0 and NaN payloads included). */
export const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** The first index where a and b differ in bits (or in length), else -1: fast on long arrays. */
export function firstDiff(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** A kernel set under test: its name (for the test title) and a maker of a fresh instance. */
export type KernelSet = [name: string, make: () => Kernels];

/**
 * `sets`, then the WebAssembly kernels with `memoryMiB` of memory ('wasm') and, unless `fma` is
 * false, their fused multiply-add build ('wasm-fma'), each only where this runtime has it.
 */
export function withWasm(sets: KernelSet[], options: { memoryMiB: number; fma?: boolean }): KernelSet[] {
  const { memoryMiB, fma = true } = options;
  const out = [...sets];
  if (wasmSupported()) out.push(['wasm', () => createWasmKernels({ memoryMiB })]);
  if (fma && wasmFmaSupported()) out.push(['wasm-fma', () => createWasmKernels({ memoryMiB, fma: true })]);
  return out;
}

/**
 * The plain-JS kernels with the loops the WebAssembly kernels fall back to (and the optimizer
 * loops run without a kernel) as their optional methods, each behind the kernels' argument check.
 */
export function jsLoopKernels(): Kernels {
  return {
    ...jsKernels,
    sgdMeanStep: (n, p, g, b, lr) => (checkElementwise('sgdMeanStep', n, p, g), sgdMeanStepJs(n, p, g, b, lr)),
    adamStep: (...a) => (checkViews('adamStep', a[0], { p: a[1], g: a[2], m: a[3], v: a[4] }), adamStepJs(...a)),
    momentumStep: (n, p, g, s, lr, mu, nes) => (checkViews('momentumStep', n, { p, g, s }), momentumStepJs(n, p, g, s, lr, mu, nes)),
    rmspropStep: (n, p, g, s, lr, rho, eps) => (checkViews('rmspropStep', n, { p, g, s }), rmspropStepJs(n, p, g, s, lr, rho, eps)),
    adagradStep: (n, p, g, s, lr, eps) => (checkViews('adagradStep', n, { p, g, s }), adagradStepJs(n, p, g, s, lr, eps)),
  };
}

/** The optional kernel methods (the fused and optimizer steps). */
export type OptionalMethod = 'sgdMeanStep' | 'adamStep' | 'momentumStep' | 'rmspropStep' | 'adagradStep';

/** K's method `name`, or an error naming what K lacks. Call it as `method(K, name).call(K, …)`. */
export function method<M extends OptionalMethod>(K: Kernels, name: M): NonNullable<Kernels[M]> {
  const f = K[name];
  if (f === undefined) throw new Error(`kernels ${K.name} lack ${name}`);
  return f as NonNullable<Kernels[M]>;
}

/** `length` zeros, in K's memory when `inside`, else in a plain Float32Array. */
export function buffer(K: Kernels, inside: boolean, length: number): Float32Array {
  return inside ? K.alloc(length) : new Float32Array(length);
}

// ---- the optimizer step kernels (adamStep, momentumStep, rmspropStep, adagradStep) ----

/** The lengths the step kernels are checked on: n % 4 = 0..3 around the unrolled groups, and long ones. */
export const STEP_SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1001, 4098, 4099];

/** Mixed magnitudes: normal draws times 2^-40 .. 2^40, with zeros, ±0, subnormals and the largest floats sprinkled in. */
export function fillMixed(rng: Rng, out: Float32Array, nonNegative = false): Float32Array {
  const special = [0, -0, 2 ** -149, -(3 * 2 ** -149), 2 ** -126, 1e-40, 3.4028234663852886e38, -3.0e38, 1e30, -1e-30];
  for (let i = 0; i < out.length; i++) {
    const r = rng.nextInt(10);
    out[i] = r === 0 ? special[rng.nextInt(special.length)] : rng.nextNormal() * 2 ** (rng.nextInt(81) - 40);
    if (nonNegative) out[i] = Math.abs(out[i]);
  }
  return out;
}

/** Where each of `count` operands lives for size n: drawn from rng (true = in the kernels' memory); all inside at n = 4099, all outside at n = 4098. */
export function places(rng: Rng, count: number, n: number): boolean[] {
  const where = Array.from({ length: count }, () => rng.nextInt(2) === 1);
  if (n === 4099) where.fill(true); // all in place once for sure
  if (n === 4098) where.fill(false); // and all copied once
  return where;
}

/** The operands of a step kernel: params p, gradient g and the optimizer's slots. */
export interface StepViews {
  p: Float32Array;
  g: Float32Array;
  slots: Float32Array[];
}

/**
 * Operands of `length` values, p, g and then one slot per entry of `squares`, each in K's memory
 * or not as `where` says (in that order). Filled by fillMixed, in this order: p, g when `fillG`,
 * then the slots (non-negative where `squares` says: sums of squares).
 */
export function stepViews(K: Kernels, rng: Rng, where: boolean[], length: number, squares: boolean[], fillG: boolean): StepViews {
  const [p, g, ...slots] = where.map((inside) => buffer(K, inside, length));
  fillMixed(rng, p);
  if (fillG) fillMixed(rng, g);
  slots.forEach((s, k) => fillMixed(rng, s, squares[k]));
  return { p, g, slots };
}

/**
 * Runs one step kernel call `run` on `v` and expects, bit for bit: p and each slot (named by
 * `slotNames`) equal to `want` and then to `loop` (both [p, ...slots]), g unchanged and p[n]
 * untouched. Returns how many of p's first n values the step changed.
 */
export function expectStep(what: string, n: number, v: StepViews, slotNames: string[], want: Float32Array[], loop: Float32Array[], run: () => void): number {
  const before = Float32Array.from(v.p);
  const g0 = Float32Array.from(v.g);
  run();
  const got = [v.p, ...v.slots];
  const names = ['p', ...slotNames];
  got.forEach((a, k) => expect(firstDiff(a, want[k]), `${what}: ${names[k]}`).toBe(-1));
  got.forEach((a, k) => expect(firstDiff(a, loop[k]), `${what}: loop ${names[k]}`).toBe(-1));
  expect(firstDiff(v.g, g0), `${what}: g read-only`).toBe(-1);
  expect(v.p[n], `${what}: past n`).toBe(before[n]);
  let moved = 0;
  for (let i = 0; i < n; i++) if (!Object.is(v.p[i], before[i])) moved++;
  return moved;
}

/** The sizes the overlapping-views checks run. */
const OVERLAP_SIZES = [1, 2, 3, 5, 8, 33];

/**
 * For n in 1 … 33, each layout (the offsets of the views, some overlapping) and a buffer of
 * `length` positive values in and outside K's memory: `run` on views of the buffer at those
 * offsets must leave it, bit for bit, as `ref` leaves a copy of it.
 */
export function expectOverlapsFollow(K: Kernels, rng: Rng, length: number, layouts: number[][], ref: (n: number, views: Float32Array[]) => void, run: (n: number, views: Float32Array[]) => void): void {
  for (const n of OVERLAP_SIZES) {
    for (const at of layouts) {
      for (const inMemory of [true, false]) {
        const buf = buffer(K, inMemory, length);
        for (let i = 0; i < length; i++) buf[i] = Math.abs(rng.nextNormal()) * 4;
        const want = Float32Array.from(buf);
        ref(n, at.map((o) => want.subarray(o)));
        run(n, at.map((o) => buf.subarray(o)));
        expect(bits(buf), `n=${n} at=${at.join(',')} ${inMemory ? 'in' : 'out'}`).toEqual(bits(want));
      }
    }
  }
}
