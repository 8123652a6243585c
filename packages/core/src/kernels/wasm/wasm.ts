import type { Kernels } from '../types.js';
import { adagradStepJs, adamStepJs, addJs, checkViews, momentumStepJs, rmspropStepJs, checkColSums, checkElementwise, checkGemm, colSumsJs, firstNonFiniteJs, locateNonFinite, meanSqJs, reciprocalExact, reluGradJs, sgdMeanStepJs, sgdStepJs, viewsOverlap } from '../check.js';
import { ConfigError, DptrainError, ShapeError } from '../../errors.js';
import { decodeBase64 } from './base64.js';
import { GEMM_FMA_WASM_BASE64, GEMM_WASM_BASE64 } from './gemm.wasm.js';

/*
 * WebAssembly SIMD128 kernels (name 'wasm'); the arithmetic is described in gemm.wat.
 *
 * Memory: each instance owns one linear memory of a fixed size, reserved up front
 * and NEVER grown — memory.grow detaches the JS ArrayBuffer and with it every view
 * alloc() has handed out. Layout (bytes):
 *   [0, 64)                    unused, so address 0 can mean "no bias"
 *   [64, heapTop)              alloc(): bump allocator, 64-byte aligned, never freed
 *   [scratchBase, end - 64)    scratch (packed panels, copies of foreign views); grows
 *                              downward on demand to its high-water mark
 *   [end - 64, end)            guard: an edge tile may read up to 28 bytes past the bias
 * When alloc and scratch would meet, the call throws E_KERNEL_MEMORY naming the
 * reservation; create the kernels with a larger `memoryMiB`. Memory is freed when the
 * kernels object is dropped, so create one per model (getKernels('wasm') returns a
 * fresh instance on each call).
 *
 * Views: an operand that lives in this memory is used in place (its byteOffset); any
 * other Float32Array is copied into scratch (and the output copied back) — correct,
 * just slower.
 */

/** Options of createWasmKernels. */
export interface WasmKernelOptions {
  /** Linear memory reserved up front, MiB (integer 1..2048, default 64). Bounds alloc() plus scratch. */
  memoryMiB?: number;
  /** The FMA variant (kernel 'wasm-fma'; needs wasmFmaSupported()). Default false. */
  fma?: boolean;
}

const DEFAULTS: Required<WasmKernelOptions> = { memoryMiB: 64, fma: false };
const LOW = 64;
const GUARD = 64;
const ALIGN = 64;
const MIB = 1 << 20;

/** The subset of the WebAssembly JS API used here (core is compiled without DOM or Node types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> };
  Memory: new (desc: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
}

interface GemmExports {
  gemm_abt(m: number, n: number, k: number, a: number, b: number, c: number, bias: number, pa: number, pb: number, relu: number): void;
  gemm_atb(m: number, n: number, k: number, a: number, b: number, c: number, pa: number, pb: number): void;
  gemm_ab(m: number, n: number, k: number, a: number, b: number, c: number, pa: number, pb: number): void;
  madd_probe(a: number, b: number, c: number): number;
  vadd(dst: number, src: number, n: number): void;
  vfinite(src: number, n: number): number;
  vrelu_grad(d: number, h: number, n: number): void;
  col_sums(d: number, rows: number, n: number, out: number): void;
  mean_sq(g: number, n: number, b: number, inv: number, div: number): number;
  sgd_step(p: number, g: number, n: number, lr: number): void;
  sgd_mean_step(p: number, g: number, n: number, b: number, inv: number, div: number, lr: number): number;
  adam_step(p: number, g: number, m: number, v: number, n: number, lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number, decay: number): void;
  momentum_step(p: number, g: number, vel: number, n: number, lr: number, mu: number, nesterov: number): void;
  rmsprop_step(p: number, g: number, sq: number, n: number, lr: number, rho: number, eps: number): void;
  adagrad_step(p: number, g: number, sum: number, n: number, lr: number, eps: number): void;
}

const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** One of the two modules: its bytes, whether this runtime takes it, its compiled form. */
interface ModuleSlot {
  base64: string;
  bytes?: Uint8Array;
  supported?: boolean;
  compiled?: object;
}
const plain: ModuleSlot = { base64: GEMM_WASM_BASE64 };
const fused: ModuleSlot = { base64: GEMM_FMA_WASM_BASE64 };

function moduleBytes(slot: ModuleSlot): Uint8Array {
  slot.bytes ??= decodeBase64(slot.base64);
  return slot.bytes;
}

function compiled(slot: ModuleSlot, wasm: WasmApi): object {
  slot.compiled ??= new wasm.Module(moduleBytes(slot));
  return slot.compiled;
}

/** Whether this runtime has WebAssembly with SIMD128 (it validates the kernel module). */
export function wasmSupported(): boolean {
  if (plain.supported === undefined) {
    try {
      plain.supported = api !== undefined && api.validate(moduleBytes(plain));
    } catch {
      plain.supported = false;
    }
  }
  return plain.supported;
}

/**
 * Whether kernel 'wasm-fma' can run here: the runtime validates relaxed SIMD (Node 20
 * needs `--experimental-wasm-relaxed-simd`, which the dptrain command sets) AND
 * relaxed_madd is fused on this CPU — probed with a*b + c where one rounding and two
 * differ: (1 + 2⁻²³)(1 − 2⁻²³) − 1 is −2⁻⁴⁶ fused and 0 unfused. Where it would not be
 * fused the kernel is not offered, so every worker that offers it computes the same bits.
 */
export function wasmFmaSupported(): boolean {
  if (fused.supported === undefined) {
    try {
      fused.supported = false;
      if (api !== undefined && wasmSupported() && api.validate(moduleBytes(fused))) {
        const memory = new api.Memory({ initial: 1, maximum: 1 });
        const probe = (new api.Instance(compiled(fused, api), { env: { memory } }).exports as unknown as GemmExports).madd_probe;
        fused.supported = probe(1 + 2 ** -23, 1 - 2 ** -23, -1) === -(2 ** -46);
      }
    } catch {
      fused.supported = false;
    }
  }
  return fused.supported;
}

const pad = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

class WasmKernels implements Kernels {
  readonly name: 'wasm' | 'wasm-fma';
  private readonly buffer: ArrayBuffer;
  private readonly f32: Float32Array;
  private readonly fn: GemmExports;
  private readonly top: number;
  private readonly memoryMiB: number;
  private heapTop = LOW;
  private scratchBase: number;
  private cursor = 0;

  constructor(name: 'wasm' | 'wasm-fma', memoryMiB: number, module: object, wasm: WasmApi) {
    this.name = name;
    const pages = (memoryMiB * MIB) / 65536;
    const memory = new wasm.Memory({ initial: pages, maximum: pages });
    const instance = new wasm.Instance(module, { env: { memory } });
    this.fn = instance.exports as unknown as GemmExports;
    this.buffer = memory.buffer;
    this.f32 = new Float32Array(this.buffer);
    this.memoryMiB = memoryMiB;
    this.top = this.buffer.byteLength - GUARD;
    this.scratchBase = this.top;
  }

  alloc = (length: number): Float32Array => {
    if (!Number.isInteger(length) || length < 0) {
      throw new ShapeError(`alloc: length must be a non-negative integer, got ${length}`);
    }
    const size = pad(length * 4);
    if (this.heapTop + size > this.scratchBase) this.exhausted(`alloc(${length})`, size);
    const view = new Float32Array(this.buffer, this.heapTop, length);
    this.heapTop += size;
    return view;
  };

  gemmABt = (m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array, bias?: Float32Array, relu?: boolean): void => {
    checkGemm('gemmABt', m, n, k, a, b, c, bias);
    const pa = pad(Math.ceil(m / 4) * 16 * k);
    const pb = pad(Math.ceil(n / 8) * 32 * k);
    const lb = bias ? n : 0;
    this.begin('gemmABt', pa + pb + this.foreign(a, m * k) + this.foreign(b, n * k) + this.foreign(c, m * n) + (bias ? this.foreign(bias, lb) : 0));
    const paP = this.take(pa);
    const pbP = this.take(pb);
    const aP = this.input(a, m * k);
    const bP = this.input(b, n * k);
    const biasP = bias ? this.input(bias, lb) : 0;
    const cP = this.output(c, m * n);
    this.fn.gemm_abt(m, n, k, aP, bP, cP, biasP, paP, pbP, relu ? 1 : 0);
    this.finish(c, cP, m * n);
  };

  gemmAtB = (m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void => {
    checkGemm('gemmAtB', m, n, k, a, b, c);
    const pa = pad(Math.ceil(n / 4) * 16 * m);
    const pb = pad(32 * m);
    this.begin('gemmAtB', pa + pb + this.foreign(a, m * n) + this.foreign(b, m * k) + this.foreign(c, n * k));
    const paP = this.take(pa);
    const pbP = this.take(pb);
    const aP = this.input(a, m * n);
    const bP = this.input(b, m * k);
    const cP = this.output(c, n * k);
    this.fn.gemm_atb(m, n, k, aP, bP, cP, paP, pbP);
    this.finish(c, cP, n * k);
  };

  gemmAB = (m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void => {
    checkGemm('gemmAB', m, n, k, a, b, c);
    const pa = pad(Math.ceil(m / 4) * 16 * n);
    const pb = pad(32 * n);
    this.begin('gemmAB', pa + pb + this.foreign(a, m * n) + this.foreign(b, n * k) + this.foreign(c, m * k));
    const paP = this.take(pa);
    const pbP = this.take(pb);
    const aP = this.input(a, m * n);
    const bP = this.input(b, n * k);
    const cP = this.output(c, m * k);
    this.fn.gemm_ab(m, n, k, aP, bP, cP, paP, pbP);
    this.finish(c, cP, m * k);
  };

  add = (n: number, dst: Float32Array, src: Float32Array): void => {
    checkElementwise('add', n, dst, src);
    if (n === 0) return;
    // partly overlapping operands: the sequential JS order defines the result
    const d0 = dst.byteOffset;
    const s0 = src.byteOffset;
    if (dst.buffer === src.buffer && d0 !== s0 && d0 < s0 + 4 * n && s0 < d0 + 4 * n) return addJs(n, dst, src);
    const dIn = this.inside(dst, n);
    const sIn = this.inside(src, n);
    // Foreign operands are copied through scratch (the copies and the SIMD sum still beat
    // a scalar JS loop several times over) when scratch has room; else plain JS.
    const need = (dIn ? 0 : pad(4 * n)) + (sIn ? 0 : pad(4 * n));
    if (this.top - need < this.heapTop) return addJs(n, dst, src);
    this.begin('add', need);
    const dP = this.input(dst, n);
    const sP = src === dst ? dP : this.input(src, n);
    this.fn.vadd(dP, sP, n);
    this.finish(dst, dP, n);
  };

  firstNonFinite = (n: number, x: Float32Array): number => {
    checkElementwise('firstNonFinite', n, x, x);
    // a foreign array would have to be copied in first: the JS scan reads it just once
    if (n === 0) return -1;
    if (!this.inside(x, n)) return firstNonFiniteJs(n, x);
    return this.fn.vfinite(x.byteOffset, n) === 1 ? -1 : locateNonFinite(n, x);
  };

  reluGrad = (n: number, d: Float32Array, h: Float32Array): void => {
    checkElementwise('reluGrad', n, d, h);
    // in place on the network's own buffers; anything else (or overlapping views) in JS
    const overlap = d.buffer === h.buffer && d.byteOffset !== h.byteOffset && d.byteOffset < h.byteOffset + 4 * n && h.byteOffset < d.byteOffset + 4 * n;
    if (n === 0) return;
    if (overlap || !this.inside(d, n) || !this.inside(h, n)) return reluGradJs(n, d, h);
    this.fn.vrelu_grad(d.byteOffset, h.byteOffset, n);
  };

  colSums = (rows: number, n: number, d: Float32Array, out: Float32Array): void => {
    checkColSums(rows, n, d, out);
    if (n === 0) return;
    if (!this.inside(d, rows * n) || !this.inside(out, n)) return colSumsJs(rows, n, d, out);
    this.fn.col_sums(d.byteOffset, rows, n, out.byteOffset);
  };

  meanSq = (n: number, g: Float32Array, b: number): number => {
    checkElementwise('meanSq', n, g, g);
    if (n === 0) return 0;
    const at = this.stepInputs('meanSq', n, [g]);
    if (!at) return meanSqJs(n, g, b);
    const sq = this.fn.mean_sq(at[0], n, b, ...meanArgs(b));
    this.finish(g, at[0], n);
    return sq;
  };

  sgdStep = (n: number, p: Float32Array, g: Float32Array, lr: number): void => {
    checkElementwise('sgdStep', n, p, g);
    if (n === 0) return;
    const at = this.stepInputs('sgdStep', n, [p, g]);
    if (!at) return sgdStepJs(n, p, g, lr);
    this.fn.sgd_step(at[0], at[1], n, lr);
    this.finish(p, at[0], n);
  };

  sgdMeanStep = (n: number, p: Float32Array, g: Float32Array, b: number, lr: number): number => {
    checkElementwise('sgdMeanStep', n, p, g);
    if (n === 0) return 0;
    // overlapping views take the two passes in order (sgdMeanStepJs); so does a short scratch
    const at = this.stepInputs('sgdMeanStep', n, [p, g]);
    if (!at) return sgdMeanStepJs(n, p, g, b, lr);
    const sq = this.fn.sgd_mean_step(at[0], at[1], n, b, ...meanArgs(b), lr);
    this.finish(p, at[0], n);
    this.finish(g, at[1], n);
    return sq;
  };

  adamStep = (n: number, p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number, decay: number): void => {
    checkViews('adamStep', n, { p, g, m, v });
    if (n === 0) return;
    const at = this.stepInputs('adamStep', n, [p, g, m, v]);
    if (!at) return adamStepJs(n, p, g, m, v, lr, b1, b2, eps, bc1, bc2, decay);
    this.fn.adam_step(at[0], at[1], at[2], at[3], n, lr, b1, b2, eps, bc1, bc2, decay);
    this.finish(p, at[0], n);
    this.finish(m, at[2], n);
    this.finish(v, at[3], n);
  };

  momentumStep = (n: number, p: Float32Array, g: Float32Array, vel: Float32Array, lr: number, mu: number, nesterov: boolean): void => {
    checkViews('momentumStep', n, { p, g, s: vel });
    if (n === 0) return;
    const at = this.stepInputs('momentumStep', n, [p, g, vel]);
    if (!at) return momentumStepJs(n, p, g, vel, lr, mu, nesterov);
    this.fn.momentum_step(at[0], at[1], at[2], n, lr, mu, nesterov ? 1 : 0);
    this.finish(p, at[0], n);
    this.finish(vel, at[2], n);
  };

  rmspropStep = (n: number, p: Float32Array, g: Float32Array, sq: Float32Array, lr: number, rho: number, eps: number): void => {
    checkViews('rmspropStep', n, { p, g, s: sq });
    if (n === 0) return;
    const at = this.stepInputs('rmspropStep', n, [p, g, sq]);
    if (!at) return rmspropStepJs(n, p, g, sq, lr, rho, eps);
    this.fn.rmsprop_step(at[0], at[1], at[2], n, lr, rho, eps);
    this.finish(p, at[0], n);
    this.finish(sq, at[2], n);
  };

  adagradStep = (n: number, p: Float32Array, g: Float32Array, sum: Float32Array, lr: number, eps: number): void => {
    checkViews('adagradStep', n, { p, g, s: sum });
    if (n === 0) return;
    const at = this.stepInputs('adagradStep', n, [p, g, sum]);
    if (!at) return adagradStepJs(n, p, g, sum, lr, eps);
    this.fn.adagrad_step(at[0], at[1], at[2], n, lr, eps);
    this.finish(p, at[0], n);
    this.finish(sum, at[2], n);
  };

  /**
   * The wasm addresses of an element-wise step's views, in order (each copied in when it lies
   * outside this memory), or undefined when the JS loop must run instead: two views sharing
   * bytes (that loop's element order defines the result) or scratch too short for the copies.
   */
  private stepInputs(op: string, n: number, views: Float32Array[]): number[] | undefined {
    for (let i = 0; i < views.length; i++) for (let j = i + 1; j < views.length; j++) if (viewsOverlap(views[i], views[j], n)) return undefined;
    const need = views.reduce((a, v) => a + this.foreign(v, n), 0);
    if (this.top - need < this.heapTop) return undefined;
    this.begin(op, need);
    return views.map((v) => this.input(v, n));
  }

  /** Whether the first len elements of v lie in the usable part of this memory. */
  private inside(v: Float32Array, len: number): boolean {
    return v.buffer === this.buffer && v.byteOffset >= LOW && v.byteOffset + 4 * len <= this.top;
  }

  /** Scratch bytes needed to copy v (0 if it is used in place). */
  private foreign(v: Float32Array, len: number): number {
    return this.inside(v, len) ? 0 : pad(4 * len);
  }

  /** Reserve `size` bytes of scratch for this call and start handing them out. */
  private begin(op: string, size: number): void {
    const base = this.top - size;
    if (base < this.heapTop) this.exhausted(op, size);
    if (base < this.scratchBase) this.scratchBase = base;
    this.cursor = base;
  }

  private take(size: number): number {
    const p = this.cursor;
    this.cursor += size;
    return p;
  }

  private input(v: Float32Array, len: number): number {
    if (this.inside(v, len)) return v.byteOffset;
    const p = this.take(pad(4 * len));
    this.f32.set(v.subarray(0, len), p >> 2);
    return p;
  }

  private output(v: Float32Array, len: number): number {
    return this.inside(v, len) ? v.byteOffset : this.take(pad(4 * len));
  }

  private finish(v: Float32Array, p: number, len: number): void {
    if (!this.inside(v, len)) v.set(this.f32.subarray(p >> 2, (p >> 2) + len));
  }

  private exhausted(what: string, size: number): never {
    throw new DptrainError(
      'E_KERNEL_MEMORY',
      `wasm kernels: ${what} needs ${size} bytes but only ${Math.max(0, this.scratchBase - this.heapTop)} of the ` +
        `${this.memoryMiB} MiB reserved are free (alloc'd ${this.heapTop} bytes, scratch ${this.top - this.scratchBase}). ` +
        `The memory is never grown (that would detach the views already handed out): ` +
        `pass a larger memoryMiB to createWasmKernels.`,
    );
  }
}

/**
 * New WebAssembly SIMD128 kernels with their own fixed-size memory (see the notes
 * above: alloc() is a bump allocator that never frees; drop the object to free).
 * Synchronous. Throws E_KERNEL when the runtime lacks WebAssembly SIMD128.
 */
export function createWasmKernels(options: WasmKernelOptions = {}): Kernels {
  const opts = { ...DEFAULTS, ...options };
  if (!Number.isInteger(opts.memoryMiB) || opts.memoryMiB < 1 || opts.memoryMiB > 2048) {
    throw new ConfigError('memoryMiB', `must be an integer in [1, 2048], got ${opts.memoryMiB}`);
  }
  if (!api || !wasmSupported()) {
    throw new DptrainError('E_KERNEL', 'kernel wasm is not available in this runtime (needs WebAssembly with SIMD128)');
  }
  if (opts.fma) {
    if (!wasmFmaSupported()) {
      throw new DptrainError(
        'E_KERNEL',
        'kernel wasm-fma is not available in this runtime (needs WebAssembly relaxed SIMD — on Node 20 the flag --experimental-wasm-relaxed-simd, which the dptrain command sets — and a CPU that fuses f32x4.relaxed_madd)',
      );
    }
    return new WasmKernels('wasm-fma', opts.memoryMiB, compiled(fused, api), api);
  }
  return new WasmKernels('wasm', opts.memoryMiB, compiled(plain, api), api);
}

/**
 * The mean's last two arguments of mean_sq and sgd_mean_step: (1/b, 0) to multiply when 1/b is
 * exact (a power of two), else (0, 1) to divide by b.
 */
function meanArgs(b: number): [inv: number, div: number] {
  return reciprocalExact(b) ? [1 / b, 0] : [0, 1];
}
