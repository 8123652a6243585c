import { ShapeError } from '../errors.js';

function checkDim(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new ShapeError(`${op}: ${name} must be a non-negative integer, got ${v}`);
  }
}

function checkLen(op: string, name: string, arr: Float32Array, need: number, what: string): void {
  if (arr.length < need) {
    throw new ShapeError(`${op}: ${name} has ${arr.length} elements, expected at least ${what} = ${need}`);
  }
}

/**
 * Validate the arguments of a GEMM call (dimensions and operand lengths). Shared
 * by the fast kernels, which must never read or write outside the views they get.
 * Operands may be longer than needed (only the leading elements are used).
 */
export function checkGemm(
  op: 'gemmABt' | 'gemmAtB' | 'gemmAB',
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  bias?: Float32Array,
): void {
  checkDim(op, 'm', m);
  checkDim(op, 'n', n);
  checkDim(op, 'k', k);
  if (op === 'gemmABt') {
    checkLen(op, 'a', a, m * k, `m*k = ${m}*${k}`);
    checkLen(op, 'b', b, n * k, `n*k = ${n}*${k}`);
    checkLen(op, 'c', c, m * n, `m*n = ${m}*${n}`);
    if (bias) checkLen(op, 'bias', bias, n, 'n');
  } else if (op === 'gemmAtB') {
    checkLen(op, 'a', a, m * n, `m*n = ${m}*${n}`);
    checkLen(op, 'b', b, m * k, `m*k = ${m}*${k}`);
    checkLen(op, 'c', c, n * k, `n*k = ${n}*${k}`);
  } else {
    checkLen(op, 'a', a, m * n, `m*n = ${m}*${n}`);
    checkLen(op, 'b', b, n * k, `n*k = ${n}*${k}`);
    checkLen(op, 'c', c, m * k, `m*k = ${m}*${k}`);
  }
}

/** Validate the arguments of an element-wise call on n elements. */
export function checkElementwise(op: 'add' | 'firstNonFinite' | 'reluGrad' | 'meanSq' | 'sgdStep' | 'sgdMeanStep', n: number, dst: Float32Array, src: Float32Array): void {
  checkDim(op, 'n', n);
  checkLen(op, 'dst', dst, n, 'n');
  checkLen(op, 'src', src, n, 'n');
}

/** dst[i] += src[i] for i < n in plain JavaScript (float64 sum, rounded to float32 on store). */
export function addJs(n: number, dst: Float32Array, src: Float32Array): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    dst[i] += src[i];
    dst[i + 1] += src[i + 1];
    dst[i + 2] += src[i + 2];
    dst[i + 3] += src[i + 3];
  }
  for (; i < n; i++) dst[i] += src[i];
}

/** Index of the first non-finite value among x[0..n), or -1, in plain JavaScript. */
export function firstNonFiniteJs(n: number, x: Float32Array): number {
  // x·0 is ±0 for finite x and NaN otherwise; four sums overlap in the CPU
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += x[i] * 0;
    a1 += x[i + 1] * 0;
    a2 += x[i + 2] * 0;
    a3 += x[i + 3] * 0;
  }
  for (; i < n; i++) a0 += x[i] * 0;
  if (a0 + a1 + a2 + a3 === 0) return -1;
  return locateNonFinite(n, x);
}

/** The first index of a non-finite value among x[0..n), or -1 (the slow, exact search). */
export function locateNonFinite(n: number, x: Float32Array): number {
  for (let i = 0; i < n; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** ReLU in place over the first m rows of n values of c: x > 0 ? x : 0. */
export function reluRows(m: number, n: number, c: Float32Array): void {
  const cnt = m * n;
  for (let i = 0; i < cnt; i++) {
    const v = c[i];
    c[i] = v > 0 ? v : 0;
  }
}

/** d[i] = h[i] > 0 ? d[i] : 0 for i < n, in plain JavaScript. */
export function reluGradJs(n: number, d: Float32Array, h: Float32Array): void {
  for (let i = 0; i < n; i++) if (!(h[i] > 0)) d[i] = 0;
}

/** Validate a colSums call. */
export function checkColSums(rows: number, n: number, d: Float32Array, out: Float32Array): void {
  checkDim('colSums', 'rows', rows);
  checkDim('colSums', 'n', n);
  checkLen('colSums', 'd', d, rows * n, `rows*n = ${rows}*${n}`);
  checkLen('colSums', 'out', out, n, 'n');
}

/** out[j] = Σ_r d[r·n + j] in float64, row order, in plain JavaScript. */
export function colSumsJs(rows: number, n: number, d: Float32Array, out: Float32Array): void {
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += d[r * n + j];
    out[j] = s;
  }
}

/** Whether x · (1/b) equals x / b for every float32 x: b a power of two (up to 2^30). */
export function reciprocalExact(b: number): boolean {
  return Number.isInteger(b) && b >= 1 && b <= 2 ** 30 && (b & (b - 1)) === 0;
}

/** meanSq in plain JavaScript (see Kernels.meanSq). */
export function meanSqJs(n: number, g: Float32Array, b: number): number {
  const fr = Math.fround;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  // x · (1/b) is x / b exactly for a power-of-two b, and needs no division
  const exact = reciprocalExact(b);
  const inv = 1 / b;
  for (; i + 4 <= n; i += 4) {
    const m0 = fr(exact ? g[i] * inv : g[i] / b);
    const m1 = fr(exact ? g[i + 1] * inv : g[i + 1] / b);
    const m2 = fr(exact ? g[i + 2] * inv : g[i + 2] / b);
    const m3 = fr(exact ? g[i + 3] * inv : g[i + 3] / b);
    g[i] = m0;
    g[i + 1] = m1;
    g[i + 2] = m2;
    g[i + 3] = m3;
    s0 += m0 * m0;
    s1 += m1 * m1;
    s2 += m2 * m2;
    s3 += m3 * m3;
  }
  // the last n % 4 values go to partial sums 0, 1, 2 in order
  const tail = [0, 0, 0];
  for (let k = 0; i < n; i++, k++) {
    const m = fr(g[i] / b);
    g[i] = m;
    tail[k] = m * m;
  }
  return s0 + tail[0] + (s1 + tail[1]) + (s2 + tail[2] + s3);
}

/**
 * Plain SGD in JavaScript: p[i] = fround(p[i] − lr · g[i]). Unrolled four times, the n % 4
 * leading elements first (see optim/loops.ts: V8 11 otherwise deoptimises at the remainder).
 */
export function sgdStepJs(n: number, p: Float32Array, g: Float32Array, lr: number): void {
  let i = 0;
  for (; i < (n & 3); i++) p[i] = p[i] - lr * g[i];
  for (; i < n; i += 4) {
    p[i] = p[i] - lr * g[i];
    p[i + 1] = p[i + 1] - lr * g[i + 1];
    p[i + 2] = p[i + 2] - lr * g[i + 2];
    p[i + 3] = p[i + 3] - lr * g[i + 3];
  }
}

/** Whether the first n elements of a and of b share any bytes (views of one buffer; identical views included). */
export function viewsOverlap(a: Float32Array, b: Float32Array, n: number): boolean {
  return n > 0 && a.buffer === b.buffer && a.byteOffset < b.byteOffset + 4 * n && b.byteOffset < a.byteOffset + 4 * n;
}

/**
 * sgdMeanStep in plain JavaScript (see Kernels.sgdMeanStep): meanSqJs then sgdStepJs, which
 * define its result. The WebAssembly kernels fall back to it for overlapping views or when
 * their scratch memory is short; the plain-JS kernels take these two passes in applyUpdate.
 */
export function sgdMeanStepJs(n: number, p: Float32Array, g: Float32Array, b: number, lr: number): number {
  const sq = meanSqJs(n, g, b);
  sgdStepJs(n, p, g, lr);
  return sq;
}

/**
 * Arguments of an element-wise optimizer step (adamStep, momentumStep, …): n a non-negative
 * integer and every named view at least n long; a ShapeError names the operation and the view.
 */
export function checkViews(op: string, n: number, views: Record<string, Float32Array>): void {
  checkDim(op, 'n', n);
  for (const [name, v] of Object.entries(views)) checkLen(op, name, v, n, 'n');
}

/**
 * Adam's plain step (Kernels.adamStep) in JavaScript, the loop that defines it: per element, in
 * float64, mi = b1·m + c1·g and vi = b2·v + c2·g·g (c1 = 1 − b1, c2 = 1 − b2; left to right),
 * m and v store them as float32, then w = p[i] (read after those stores, which matters only
 * for overlapping views) and p[i] = (w − decay·w) − (lr·(mi/bc1)) / (√(vi/bc2) + eps), from
 * the float64 mi and vi. optim/loops.ts's adamLoop runs it for plain terms (no clip, L2 or
 * L1) when its kernels lack adamStep; the WebAssembly kernels fall back to it.
 */
export function adamStepJs(n: number, p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, b1: number, b2: number, eps: number, bc1: number, bc2: number, decay: number): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  for (let i = 0; i < n; i++) {
    const x = g[i];
    const mi = b1 * m[i] + c1 * x;
    const vi = b2 * v[i] + c2 * x * x;
    m[i] = mi;
    v[i] = vi;
    const w = p[i];
    p[i] = w - decay * w - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

/** The float64 sum of squares of a in the four-partial-sum order of Kernels.meanSq (without changing a). */
export function sumSquares4(a: Float32Array): number {
  const n = a.length;
  const s = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) s[i & 3] += a[i] * a[i];
  return s[0] + s[1] + (s[2] + s[3]);
}

/**
 * Momentum's / Nesterov's plain step (Kernels.momentumStep) in JavaScript, the loop that defines
 * it: per element, in float64, b = mu·vel[i] + g[i]; vel[i] stores b as float32; then
 * p[i] = p[i] − lr·(nesterov ? g[i] + mu·b : b) with the float64 b. Unrolled four times, the
 * n % 4 leading elements first (see optim/loops.ts); within a group of four, the four vel stores
 * come before the four p updates (which matters only for overlapping views). optim/loops.ts's
 * momentumLoop runs it for plain terms when its kernels lack momentumStep; the WebAssembly
 * kernels fall back to it.
 */
export function momentumStepJs(n: number, p: Float32Array, src: Float32Array, vel: Float32Array, lr: number, mu: number, nesterov: boolean): void {
  let i = 0;
  for (; i < (n & 3); i++) {
    const b = mu * vel[i] + src[i];
    vel[i] = b;
    p[i] = p[i] - lr * (nesterov ? src[i] + mu * b : b);
  }
  for (; i < n; i += 4) {
    const b0 = mu * vel[i] + src[i];
    const b1 = mu * vel[i + 1] + src[i + 1];
    const b2 = mu * vel[i + 2] + src[i + 2];
    const b3 = mu * vel[i + 3] + src[i + 3];
    vel[i] = b0;
    vel[i + 1] = b1;
    vel[i + 2] = b2;
    vel[i + 3] = b3;
    p[i] = p[i] - lr * (nesterov ? src[i] + mu * b0 : b0);
    p[i + 1] = p[i + 1] - lr * (nesterov ? src[i + 1] + mu * b1 : b1);
    p[i + 2] = p[i + 2] - lr * (nesterov ? src[i + 2] + mu * b2 : b2);
    p[i + 3] = p[i + 3] - lr * (nesterov ? src[i + 3] + mu * b3 : b3);
  }
}

/**
 * RMSProp's plain step (Kernels.rmspropStep) in JavaScript, the loop that defines it: per
 * element, in float64, v = rho·sq[i] + c·g·g (c = 1 − rho; left to right); sq[i] stores v as
 * float32; then p[i] = p[i] − (lr·g) / (√v + eps) with the float64 v. optim/loops.ts's
 * rmspropLoop runs it for plain terms when its kernels lack rmspropStep; the WebAssembly
 * kernels fall back to it.
 */
export function rmspropStepJs(n: number, p: Float32Array, src: Float32Array, sq: Float32Array, lr: number, rho: number, eps: number): void {
  const c = 1 - rho;
  for (let i = 0; i < n; i++) {
    const g = src[i];
    const v = rho * sq[i] + c * g * g;
    sq[i] = v;
    p[i] = p[i] - (lr * g) / (Math.sqrt(v) + eps);
  }
}

/**
 * AdaGrad's plain step (Kernels.adagradStep) in JavaScript, the loop that defines it: per
 * element, in float64, s = sum[i] + g·g; sum[i] stores s as float32; then
 * p[i] = p[i] − (lr·g) / (√s + eps) with the float64 s. optim/loops.ts's adagradLoop runs it
 * for plain terms when its kernels lack adagradStep; the WebAssembly kernels fall back to it.
 */
export function adagradStepJs(n: number, p: Float32Array, src: Float32Array, sum: Float32Array, lr: number, eps: number): void {
  for (let i = 0; i < n; i++) {
    const g = src[i];
    const s = sum[i] + g * g;
    sum[i] = s;
    p[i] = p[i] - (lr * g) / (Math.sqrt(s) + eps);
  }
}
