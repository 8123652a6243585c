/**
 * The hot loops of the engine. All matrices are row-major Float32Array views.
 *
 * Determinism contract (every implementation): each output element is a function
 * of its own input row/column only, accumulated over the shared dimension in one
 * fixed order that does not depend on m, on tiling, or on the element's position
 * in the tile. So a sample's forward output is bit-identical alone or in a batch,
 * and the same kernel gives the same bits on every machine. Different kernel
 * implementations (js, wasm) may differ from each other in the last bits, which is
 * why a run pins one kernel name for every worker.
 */
/**
 * The kernel implementations: 'js' (pure TypeScript, everywhere), 'wasm' (WebAssembly
 * SIMD128, mul then add) and 'wasm-fma' (the same with each multiply-add fused: relaxed
 * SIMD, offered only where it validates and the CPU fuses it, so its bits are the same
 * on every machine that offers it).
 */
export const KERNEL_NAMES = ['js', 'wasm', 'wasm-fma'] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export interface Kernels {
  readonly name: KernelName;
  /**
   * Allocate a zeroed buffer the kernels can work on directly (wasm: a view into
   * its linear memory, never detached; js: a plain Float32Array).
   */
  alloc(length: number): Float32Array;
  /**
   * Forward layer: C[m×n] = A[m×k] · B[n×k]ᵀ + bias[n] (bias may be omitted). Z = X·Wᵀ + b.
   * With `relu`, stores max(0, ·) of each element instead (fused ReLU: x > 0 ? x : 0,
   * so NaN and −0 become +0), the same bits as a separate pass over the stored values.
   */
  gemmABt(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array, bias?: Float32Array, relu?: boolean): void;
  /** Weight gradient: C[n×k] = A[m×n]ᵀ · B[m×k] (overwrites C). dW = δᵀ·X, summed over the m rows. */
  gemmAtB(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void;
  /** Input gradient: C[m×k] = A[m×n] · B[n×k] (overwrites C). dX = δ·W. */
  gemmAB(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void;
  /**
   * Element-wise sum in place: dst[i] = dst[i] + src[i] for i < n, each a single
   * float32 addition rounded to nearest. That is bit-identical in every implementation
   * (a float64 sum of two float32 values rounds to the same float32), so the
   * reduction tree gives the same bits whichever kernel adds its nodes.
   */
  add(n: number, dst: Float32Array, src: Float32Array): void;
  /** Index of the first of x[0..n) that is NaN or ±Infinity, or -1 when all are finite. */
  firstNonFinite(n: number, x: Float32Array): number;
  /** ReLU's derivative applied in place: d[i] = h[i] > 0 ? d[i] : +0 for i < n (h = max(0, z)). */
  reluGrad(n: number, d: Float32Array, h: Float32Array): void;
  /**
   * Column sums of D[rows×n]: out[j] = Σ_r D[r, j], accumulated in float64 in row order and
   * rounded to float32 once (the bias gradient db = Σ_rows δ). Bit-identical in every kernel.
   */
  colSums(rows: number, n: number, d: Float32Array, out: Float32Array): void;
  /**
   * The update's mean pass, in place: g[i] = fround(g[i] / b) for i < n (as x · (1/b) when b
   * is a power of two: the same value); returns the float64 sum of the squares of the
   * stored values, element i into partial sum i mod 4, returned as (s0 + s1) + (s2 + s3).
   * Bit-identical in every kernel.
   */
  meanSq(n: number, g: Float32Array, b: number): number;
  /** Plain SGD: p[i] = fround(p[i] − lr · g[i]) for i < n, in float64. Bit-identical in every kernel. */
  sgdStep(n: number, p: Float32Array, g: Float32Array, lr: number): void;
  /**
   * meanSq(n, g, b) then sgdStep(n, p, g, lr) in one pass over the data: g[i] becomes the mean
   * meanSq stores, p[i] the value sgdStep computes from it, and the return value is meanSq's.
   * Bit-identical to the two calls in every kernel, for any n and b, whatever the views
   * (overlapping p and g: the two passes one after the other). It checks no value: non-finite
   * inputs go into p. applyUpdate's plain-SGD path, after its finiteness scan.
   *
   * The WebAssembly kernels have it (their JS fallback, sgdMeanStepJs in check.ts, is the same
   * loop); the plain-JS kernels do not (with their finite scan it costs more than the two
   * passes); without it applyUpdate takes the two passes.
   */
  sgdMeanStep?(n: number, p: Float32Array, g: Float32Array, b: number, lr: number): number;
  /**
   * Adam / AdamW's step for plain terms (gradient g[i] itself: no clip, L2 or L1), in place on
   * p, m and v for i < n, in float64 storing float32:
   *   mi = b1·m[i] + (1 − b1)·g[i];  vi = b2·v[i] + ((1 − b2)·g[i])·g[i];  m[i] = mi;  v[i] = vi;
   *   p[i] = (w − decay·w) − (lr·(mi / bc1)) / (√(vi / bc2) + eps)   with w = p[i]
   * (bc1 = 1 − b1^t, bc2 = 1 − b2^t; decay = lr·wd for adamw, else 0). Bit-identical to
   * optim/loops.ts's adamLoop (its loop is adamStepJs in check.ts), whatever the views
   * (overlapping ones: that loop's element order). Checks no value; g is read-only.
   *
   * The WebAssembly kernels have it (f64x2 SIMD); the plain-JS kernels do not, and adamLoop
   * then runs the JS loop itself.
   */
  adamStep?(n: number, p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number, decay: number): void;
  /**
   * Momentum / Nesterov's step for plain terms (gradient g[i] itself), in place on p and vel for
   * i < n, in float64 storing float32:  b = mu·vel[i] + g[i];  vel[i] = b;
   * p[i] = p[i] − lr·(nesterov ? g[i] + mu·b : b)  (the float64 b). Bit-identical to
   * optim/loops.ts's momentumLoop (its loop is momentumStepJs in check.ts), whatever the views.
   * Checks no value; g is read-only. The WebAssembly kernels have it (f64x2 SIMD); without it
   * momentumLoop runs the JS loop itself.
   */
  momentumStep?(n: number, p: Float32Array, g: Float32Array, vel: Float32Array, lr: number, mu: number, nesterov: boolean): void;
  /**
   * RMSProp's step for plain terms, in place on p and sq for i < n, in float64 storing float32:
   * v = rho·sq[i] + ((1 − rho)·g[i])·g[i];  sq[i] = v;  p[i] = p[i] − (lr·g[i]) / (√v + eps)
   * (the float64 v). Bit-identical to rmspropLoop (its loop is rmspropStepJs in check.ts),
   * whatever the views. Checks no value. The WebAssembly kernels have it (f64x2 SIMD).
   */
  rmspropStep?(n: number, p: Float32Array, g: Float32Array, sq: Float32Array, lr: number, rho: number, eps: number): void;
  /**
   * AdaGrad's step for plain terms, in place on p and sum for i < n, in float64 storing float32:
   * s = sum[i] + g[i]·g[i];  sum[i] = s;  p[i] = p[i] − (lr·g[i]) / (√s + eps)  (the float64 s).
   * Bit-identical to adagradLoop (its loop is adagradStepJs in check.ts), whatever the views.
   * Checks no value. The WebAssembly kernels have it (f64x2 SIMD).
   */
  adagradStep?(n: number, p: Float32Array, g: Float32Array, sum: Float32Array, lr: number, eps: number): void;
}
