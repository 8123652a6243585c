import { ConfigError, DataError } from '../errors.js';
import { Rng } from '../rng.js';

/** A dense dataset in memory: inputs and targets as row-major float32 matrices. */
export interface Dataset {
  /** Where it came from, e.g. 'mnist', 'xor', 'spirals', 'blobs', 'idx', 'csv'. Not part of the fingerprint. */
  name: string;
  /** Number of samples (rows). */
  n: number;
  /** Width of one input row. */
  inputSize: number;
  /** Width of one target row: the number of classes (one-hot) for classification, 1 for binary or regression. */
  outputSize: number;
  /** Inputs, n × inputSize row-major. */
  x: Float32Array;
  /** Targets, n × outputSize row-major (one-hot rows for classification). */
  y: Float32Array;
  /** Class index per sample (classification only). */
  labels?: Int32Array;
  /** Number of classes (classification only). */
  classes?: number;
}

export interface DatasetSplit {
  train: Dataset;
  test: Dataset;
}

export interface SplitOptions {
  /** Number of test samples, in [1, n - 1]. Wins over testFraction. */
  testCount?: number;
  /** Fraction of samples in the test set, in (0, 1); rounded, then clamped to [1, n - 1]. Default 0.2. */
  testFraction?: number;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Shuffle before splitting (default false: the last samples are the test set). */
  shuffle?: boolean;
}

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** Check that the arrays of a dataset have the sizes its header claims; throws DataError naming the field. */
export function assertDataset(ds: Dataset, what = 'dataset'): Dataset {
  if (typeof ds !== 'object' || ds === null) throw new DataError(`${what}: expected a dataset object`);
  if (!isInt(ds.n, 0, 0x7fffffff)) throw new DataError(`${what}.n: expected a non-negative integer, got ${ds.n}`);
  if (!isInt(ds.inputSize, 1, 1 << 24)) throw new DataError(`${what}.inputSize: expected an integer in [1, 16777216], got ${ds.inputSize}`);
  if (!isInt(ds.outputSize, 1, 1 << 24)) throw new DataError(`${what}.outputSize: expected an integer in [1, 16777216], got ${ds.outputSize}`);
  if (!(ds.x instanceof Float32Array) || ds.x.length !== ds.n * ds.inputSize) {
    throw new DataError(`${what}.x: expected a Float32Array of n × inputSize = ${ds.n * ds.inputSize} values, got ${ds.x?.length}`);
  }
  if (!(ds.y instanceof Float32Array) || ds.y.length !== ds.n * ds.outputSize) {
    throw new DataError(`${what}.y: expected a Float32Array of n × outputSize = ${ds.n * ds.outputSize} values, got ${ds.y?.length}`);
  }
  if (ds.labels !== undefined && (!(ds.labels instanceof Int32Array) || ds.labels.length !== ds.n)) {
    throw new DataError(`${what}.labels: expected an Int32Array of n = ${ds.n} values, got ${ds.labels?.length}`);
  }
  return ds;
}

/** One-hot rows (n × classes) for integer labels in [0, classes). */
export function oneHot(labels: Int32Array, classes: number): Float32Array {
  if (!isInt(classes, 1, 1 << 24)) throw new ConfigError('classes', `expected an integer in [1, 16777216], got ${classes}`);
  const out = new Float32Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!(c >= 0 && c < classes)) throw new DataError(`labels[${i}]: expected a class index in [0, ${classes - 1}], got ${c}`);
    out[i * classes + c] = 1;
  }
  return out;
}

/** A new dataset holding copies of the given rows, in the given order. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const { n, inputSize: ni, outputSize: no } = ds;
  const m = indices.length;
  const x = new Float32Array(m * ni);
  const y = new Float32Array(m * no);
  const labels = ds.labels ? new Int32Array(m) : undefined;
  for (let r = 0; r < m; r++) {
    const i = indices[r];
    if (!isInt(i, 0, n - 1)) throw new DataError(`subset: indices[${r}] = ${i} is not a row index in [0, ${n - 1}]`);
    x.set(ds.x.subarray(i * ni, (i + 1) * ni), r * ni);
    y.set(ds.y.subarray(i * no, (i + 1) * no), r * no);
    if (labels) labels[r] = ds.labels![i];
  }
  const out: Dataset = { name, n: m, inputSize: ni, outputSize: no, x, y };
  if (labels) out.labels = labels;
  if (ds.classes !== undefined) out.classes = ds.classes;
  return out;
}

/** Resolve split options to a test count in [1, n - 1]. */
function testCountOf(n: number, opts: SplitOptions): number {
  if (n < 2) throw new DataError(`cannot split a dataset of ${n} sample(s): need at least 2`);
  if (opts.testCount !== undefined) {
    if (!isInt(opts.testCount, 1, n - 1)) throw new ConfigError('testCount', `expected an integer in [1, ${n - 1}], got ${opts.testCount}`);
    return opts.testCount;
  }
  const f = opts.testFraction ?? 0.2;
  if (typeof f !== 'number' || !(f > 0 && f < 1)) throw new ConfigError('testFraction', `expected a number in (0, 1), got ${f}`);
  return Math.min(n - 1, Math.max(1, Math.round(n * f)));
}

/**
 * Split into train and test, deterministically. Without shuffle the last testCount rows are
 * the test set. With shuffle, perm = Rng(seed).shuffle([0..n-1]); train = perm[0 .. n-t),
 * test = perm[n-t .. n), rows kept in permutation order.
 */
export function splitDataset(ds: Dataset, opts: SplitOptions = {}): DatasetSplit {
  assertDataset(ds);
  const t = testCountOf(ds.n, opts);
  const seed = opts.seed ?? 0;
  if (!isInt(seed, 0, 0xffffffff)) throw new ConfigError('seed', `expected an integer in [0, 4294967295], got ${seed}`);
  const shuffle = opts.shuffle ?? false;
  if (typeof shuffle !== 'boolean') throw new ConfigError('shuffle', `expected a boolean, got ${JSON.stringify(shuffle)}`);
  const perm = new Int32Array(ds.n);
  for (let i = 0; i < ds.n; i++) perm[i] = i;
  if (shuffle) new Rng(seed).shuffle(perm);
  const cut = ds.n - t;
  return { train: subset(ds, perm.subarray(0, cut)), test: subset(ds, perm.subarray(cut)) };
}
