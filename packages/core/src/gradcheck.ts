import type { Kernels } from './kernels/index.js';
import { locateNonFinite } from './kernels/check.js';
import { Network } from './network.js';
import type { ModelSpec } from './spec.js';

/**
 * Float64 kernels with the reference loops: the same Network code then runs in
 * double precision, which is what makes central differences meaningful.
 */
const float64Kernels: Kernels = {
  name: 'js',
  alloc: (length) => new Float64Array(length) as unknown as Float32Array,
  gemmABt(m, n, k, a, b, c, bias, relu) {
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = bias ? bias[j] : 0;
        for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
        c[i * n + j] = relu ? (s > 0 ? s : 0) : s;
      }
  },
  gemmAtB(m, n, k, a, b, c) {
    for (let j = 0; j < n; j++)
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += a[i * n + j] * b[i * k + p];
        c[j * k + p] = s;
      }
  },
  gemmAB(m, n, k, a, b, c) {
    for (let i = 0; i < m; i++)
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += a[i * n + j] * b[j * k + p];
        c[i * k + p] = s;
      }
  },
  add(n, dst, src) {
    for (let i = 0; i < n; i++) dst[i] += src[i];
  },
  firstNonFinite: locateNonFinite,
  reluGrad(n, d, h) {
    for (let i = 0; i < n; i++) if (!(h[i] > 0)) d[i] = 0;
  },
  colSums(rows, n, d, out) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += d[r * n + j];
      out[j] = s;
    }
  },
  meanSq(n, g, b) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      g[i] /= b;
      s += g[i] * g[i];
    }
    return s;
  },
  sgdStep(n, p, g, lr) {
    for (let i = 0; i < n; i++) p[i] -= lr * g[i];
  },
};

export interface GradCheckResult {
  /** Worst relative error |a − n| / max(|a| + |n|, 1e-12) per tensor name. */
  perTensor: Record<string, number>;
  worst: number;
  worstTensor: string;
  checked: number;
}

/**
 * Compare the analytic gradient of the summed loss over the given rows with central
 * differences (step eps), both in float64. Dropout is off. `maxPerTensor` limits
 * how many elements of each tensor are checked (evenly spaced) on big models.
 */
export function gradientCheck(
  spec: ModelSpec,
  params: ArrayLike<number>,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  rows: number,
  opts: { eps?: number; maxPerTensor?: number } = {},
): GradCheckResult {
  const eps = opts.eps ?? 1e-6;
  const net = new Network(spec, { maxRows: rows, kernels: float64Kernels });
  const P = net.params as unknown as Float64Array;
  for (let i = 0; i < P.length; i++) P[i] = params[i];
  for (let i = 0; i < rows * net.inputSize; i++) net.input[i] = x[i];
  for (let i = 0; i < rows * net.outputSize; i++) net.target[i] = y[i];
  net.lossAndGrad(rows);
  const analytic = Float64Array.from(net.grad as unknown as Float64Array);
  const lossAt = () => {
    net.forward(rows);
    return net.loss(rows).lossSum;
  };
  const perTensor: Record<string, number> = {};
  let worst = 0;
  let worstTensor = '';
  let checked = 0;
  for (const t of net.layout.tensors) {
    const count = Math.min(t.length, opts.maxPerTensor ?? t.length);
    let w = 0;
    for (let c = 0; c < count; c++) {
      const i = t.offset + Math.floor((c * t.length) / count);
      const keep = P[i];
      P[i] = keep + eps;
      const lp = lossAt();
      P[i] = keep - eps;
      const lm = lossAt();
      P[i] = keep;
      const numeric = (lp - lm) / (2 * eps);
      const a = analytic[i];
      const rel = Math.abs(a - numeric) / Math.max(Math.abs(a) + Math.abs(numeric), 1e-12);
      // both tiny: an absolute match is a match
      const err = Math.abs(a - numeric) < 1e-10 ? 0 : rel;
      if (err > w) w = err;
      checked++;
    }
    perTensor[t.name] = w;
    if (w >= worst) {
      worst = w;
      worstTensor = t.name;
    }
  }
  return { perTensor, worst, worstTensor, checked };
}
