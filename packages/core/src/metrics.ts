import type { Dataset } from './data/index.js';
import type { Network } from './network.js';
import { ShapeError } from './errors.js';

export interface EvalResult {
  /** Mean loss per sample. */
  loss: number;
  accuracy: number;
  samples: number;
  /** confusion[true][predicted] counts (classification with ≥ 2 outputs; 2×2 for one sigmoid output). */
  confusion?: number[][];
}

/** Evaluate parameters on a dataset (no dropout), in chunks of the network's maxRows. */
export function evaluate(net: Network, params: Float32Array, data: Dataset, opts: { confusion?: boolean } = {}): EvalResult {
  if (data.inputSize !== net.inputSize || data.outputSize !== net.outputSize) {
    throw new ShapeError(`dataset ${data.name} is ${data.inputSize}→${data.outputSize}, the model is ${net.inputSize}→${net.outputSize}`);
  }
  net.setParams(params);
  const fin = net.inputSize;
  const fout = net.outputSize;
  const classes = fout === 1 ? 2 : fout;
  const confusion = opts.confusion ? Array.from({ length: classes }, () => new Array<number>(classes).fill(0)) : undefined;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += net.maxRows) {
    const rows = Math.min(net.maxRows, data.n - start);
    net.input.set(data.x.subarray(start * fin, (start + rows) * fin));
    net.target.set(data.y.subarray(start * fout, (start + rows) * fout));
    const out = net.forward(rows);
    const st = net.loss(rows);
    lossSum += st.lossSum;
    correct += st.correct;
    if (confusion) {
      for (let r = 0; r < rows; r++) {
        const t = classOf(data.y, (start + r) * fout, fout);
        const p = classOf(out, r * fout, fout);
        confusion[t][p]++;
      }
    }
  }
  return { loss: data.n ? lossSum / data.n : NaN, accuracy: data.n ? correct / data.n : NaN, samples: data.n, confusion };
}

function classOf(v: ArrayLike<number>, o: number, width: number): number {
  if (width === 1) return v[o] >= 0.5 ? 1 : 0;
  let best = 0;
  for (let j = 1; j < width; j++) if (v[o + j] > v[o + best]) best = j;
  return best;
}

/** Accuracy from a confusion matrix. */
export function accuracyOf(confusion: number[][]): number {
  let ok = 0;
  let all = 0;
  confusion.forEach((row, i) => row.forEach((c, j) => {
    all += c;
    if (i === j) ok += c;
  }));
  return all ? ok / all : NaN;
}
