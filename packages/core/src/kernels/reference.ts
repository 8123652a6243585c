import type { Kernels } from './types.js';
import { locateNonFinite } from './check.js';

/**
 * Plain triple loops, the ground truth the fast kernels are tested against.
 * Accumulation is in float64 in ascending order of the shared index, rounded to
 * float32 once per output element.
 */
export const referenceKernels: Kernels = {
  name: 'js',
  alloc: (length) => new Float32Array(length),
  gemmABt(m, n, k, a, b, c, bias, relu) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
        const z = Math.fround(bias ? Math.fround(s) + bias[j] : s);
        c[i * n + j] = relu ? (z > 0 ? z : 0) : z;
      }
    }
  },
  gemmAtB(m, n, k, a, b, c) {
    for (let j = 0; j < n; j++) {
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += a[i * n + j] * b[i * k + p];
        c[j * k + p] = s;
      }
    }
  },
  gemmAB(m, n, k, a, b, c) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += a[i * n + j] * b[j * k + p];
        c[i * k + p] = s;
      }
    }
  },
  add(n, dst, src) {
    for (let i = 0; i < n; i++) dst[i] = Math.fround(dst[i] + src[i]);
  },
  firstNonFinite: locateNonFinite,
  reluGrad(n, d, h) {
    for (let i = 0; i < n; i++) d[i] = h[i] > 0 ? d[i] : 0;
  },
  colSums(rows, n, d, out) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += d[r * n + j];
      out[j] = Math.fround(s);
    }
  },
  meanSq(n, g, b) {
    const s = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      g[i] = Math.fround(g[i] / b);
      s[i & 3] += g[i] * g[i];
    }
    return s[0] + s[1] + (s[2] + s[3]);
  },
  sgdStep(n, p, g, lr) {
    for (let i = 0; i < n; i++) p[i] = Math.fround(p[i] - lr * g[i]);
  },
  // the definition of the one-pass step: the mean pass, then the step
  sgdMeanStep(n, p, g, b, lr) {
    const sq = referenceKernels.meanSq(n, g, b);
    referenceKernels.sgdStep(n, p, g, lr);
    return sq;
  },
};
