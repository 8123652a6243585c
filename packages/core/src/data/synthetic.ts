import { ConfigError } from '../errors.js';
import { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';
import { oneHot } from './dataset.js';

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

function checkSeed(seed: unknown, field = 'seed'): number {
  if (!isInt(seed, 0, 0xffffffff)) throw new ConfigError(field, `expected an integer in [0, 4294967295], got ${JSON.stringify(seed)}`);
  return seed;
}

function checkNonNeg(v: unknown, field: string, hi: number): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= hi)) throw new ConfigError(field, `expected a number in [0, ${hi}], got ${JSON.stringify(v)}`);
  return v;
}

/** The four XOR points: inputs {0,1}², one binary target (outputSize 1), labels 0/1. */
export function xorDataset(): Dataset {
  const labels = Int32Array.from([0, 1, 1, 0]);
  return {
    name: 'xor',
    n: 4,
    inputSize: 2,
    outputSize: 1,
    x: Float32Array.from([0, 0, 0, 1, 1, 0, 1, 1]),
    y: Float32Array.from(labels),
    labels,
    classes: 2,
  };
}

export interface SpiralsOptions {
  seed: number;
  /** Standard deviation of the Gaussian noise added to each coordinate (default 0.05). */
  noise?: number;
  /** Only 2 is supported. */
  classes?: 2;
}

/**
 * Two interleaved spirals in the unit disc, one-hot over 2 classes. Sample i has class i % 2
 * and position j = floor(i / 2) along its arm: t = (j + 0.5) / perClass, radius t, angle
 * 3πt + πc (one and a half turns), plus noise·N(0, 1) per coordinate from Rng(seed).
 */
export function spirals(n: number, opts: SpiralsOptions): Dataset {
  if (!isInt(n, 2, 1 << 24)) throw new ConfigError('n', `expected an integer in [2, 16777216], got ${JSON.stringify(n)}`);
  const seed = checkSeed(opts?.seed, 'seed');
  const noise = checkNonNeg(opts.noise ?? 0.05, 'noise', 10);
  if (opts.classes !== undefined && opts.classes !== 2) throw new ConfigError('classes', `only 2 is supported, got ${JSON.stringify(opts.classes)}`);
  const rng = new Rng(seed);
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 2;
    const perClass = c === 0 ? Math.ceil(n / 2) : Math.floor(n / 2);
    const t = (Math.floor(i / 2) + 0.5) / perClass;
    const a = 3 * Math.PI * t + Math.PI * c;
    x[2 * i] = t * Math.cos(a) + noise * rng.nextNormal();
    x[2 * i + 1] = t * Math.sin(a) + noise * rng.nextNormal();
    labels[i] = c;
  }
  return { name: 'spirals', n, inputSize: 2, outputSize: 2, x, y: oneHot(labels, 2), labels, classes: 2 };
}

export interface BlobsOptions {
  seed: number;
  /** Number of clusters = classes (default 3, at least 2). */
  centers?: number;
  /** Input dimensions (default 2). */
  dims?: number;
  /** Standard deviation of each cluster (default 0.1). */
  spread?: number;
}

/**
 * Gaussian clusters: centres uniform in [-1, 1]^dims, then sample i of class i % centers at
 * centre + spread·N(0, I), all draws from Rng(seed) in that order. One-hot targets.
 */
export function blobs(n: number, opts: BlobsOptions): Dataset {
  if (!isInt(n, 1, 1 << 24)) throw new ConfigError('n', `expected an integer in [1, 16777216], got ${JSON.stringify(n)}`);
  const seed = checkSeed(opts?.seed, 'seed');
  const k = opts.centers ?? 3;
  if (!isInt(k, 2, 1024)) throw new ConfigError('centers', `expected an integer in [2, 1024], got ${JSON.stringify(opts.centers)}`);
  const dims = opts.dims ?? 2;
  if (!isInt(dims, 1, 4096)) throw new ConfigError('dims', `expected an integer in [1, 4096], got ${JSON.stringify(opts.dims)}`);
  const spread = checkNonNeg(opts.spread ?? 0.1, 'spread', 100);
  const rng = new Rng(seed);
  const centres = new Float64Array(k * dims);
  for (let i = 0; i < centres.length; i++) centres[i] = rng.uniform(-1, 1);
  const x = new Float32Array(n * dims);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    for (let d = 0; d < dims; d++) x[i * dims + d] = centres[c * dims + d] + spread * rng.nextNormal();
  }
  return { name: 'blobs', n, inputSize: dims, outputSize: k, x, y: oneHot(labels, k), labels, classes: k };
}
