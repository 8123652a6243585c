import { ConfigError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';

export interface EpochSamplerOptions {
  /** Number of samples. */
  n: number;
  /** Global batch size. */
  batchSize: number;
  /** Seed of the per-epoch shuffles. */
  seed: number;
  /** Shuffle every epoch (otherwise 0..n-1 in order). */
  shuffle: boolean;
  /** Drop the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
}

/** Where a sampler stands: the epoch and the number of samples of it already handed out. */
export interface SamplerState {
  epoch: number;
  cursor: number;
}

export interface SamplerBatch {
  /** Sample indices of this global batch (a fresh array the caller may keep). */
  indices: Int32Array;
  epoch: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
}

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/**
 * Global batches of sample indices, epoch after epoch. The order of epoch e is
 * Rng(deriveSeed(seed, e)).shuffle([0..n-1]) (or 0..n-1 without shuffle), cut into batches of
 * batchSize; the last batch of an epoch is smaller unless dropLast. Batches never straddle
 * epochs. The order depends only on (n, batchSize, seed, shuffle, dropLast, epoch), so a
 * sampler rebuilt with fromState(opts, state()) continues with identical batches.
 */
export class EpochSampler {
  readonly n: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly batchesPerEpoch: number;
  private epoch = 0;
  private cursor = 0;
  private order: Int32Array | null = null;
  private orderEpoch = -1;

  constructor(opts: EpochSamplerOptions) {
    if (typeof opts !== 'object' || opts === null) throw new ConfigError('sampler', 'expected an options object { n, batchSize, seed, shuffle }');
    if (!isInt(opts.n, 1, 0x7fffffff)) throw new ConfigError('n', `expected an integer in [1, 2147483647], got ${JSON.stringify(opts.n)}`);
    if (!isInt(opts.batchSize, 1, 0x7fffffff)) throw new ConfigError('batchSize', `expected an integer >= 1, got ${JSON.stringify(opts.batchSize)}`);
    if (!isInt(opts.seed, 0, 0xffffffff)) throw new ConfigError('seed', `expected an integer in [0, 4294967295], got ${JSON.stringify(opts.seed)}`);
    if (typeof opts.shuffle !== 'boolean') throw new ConfigError('shuffle', `expected a boolean, got ${JSON.stringify(opts.shuffle)}`);
    const dropLast = opts.dropLast ?? false;
    if (typeof dropLast !== 'boolean') throw new ConfigError('dropLast', `expected a boolean, got ${JSON.stringify(opts.dropLast)}`);
    if (dropLast && opts.batchSize > opts.n) {
      throw new ConfigError('batchSize', `with dropLast the batch size must be at most n = ${opts.n}, got ${opts.batchSize}`);
    }
    this.n = opts.n;
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle;
    this.dropLast = dropLast;
    this.batchesPerEpoch = dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** A sampler with these options positioned at a state returned by state(). */
  static fromState(opts: EpochSamplerOptions, state: SamplerState): EpochSampler {
    const s = new EpochSampler(opts);
    if (typeof state !== 'object' || state === null) throw new ConfigError('state', 'expected { epoch, cursor }');
    if (!isInt(state.epoch, 0, Number.MAX_SAFE_INTEGER)) throw new ConfigError('state.epoch', `expected an integer >= 0, got ${JSON.stringify(state.epoch)}`);
    const end = s.batchesPerEpoch * s.batchSize;
    if (!isInt(state.cursor, 0, s.n - 1) || state.cursor % s.batchSize !== 0 || state.cursor >= end) {
      throw new ConfigError('state.cursor', `expected a multiple of batchSize ${s.batchSize} in [0, ${Math.min(end, s.n) - 1}], got ${JSON.stringify(state.cursor)}`);
    }
    s.epoch = state.epoch;
    s.cursor = state.cursor;
    return s;
  }

  /** The sample order of an epoch (a fresh array). */
  epochOrder(epoch: number): Int32Array {
    const order = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) order[i] = i;
    return this.shuffle ? new Rng(deriveSeed(this.seed, epoch)).shuffle(order) : order;
  }

  /** The next global batch; advances the state. */
  next(): SamplerBatch {
    if (this.orderEpoch !== this.epoch) {
      this.order = this.epochOrder(this.epoch);
      this.orderEpoch = this.epoch;
    }
    const start = this.cursor;
    const stop = Math.min(start + this.batchSize, this.n);
    const batch: SamplerBatch = {
      indices: this.order!.slice(start, stop),
      epoch: this.epoch,
      batchInEpoch: start / this.batchSize,
      batchesPerEpoch: this.batchesPerEpoch,
    };
    this.cursor = stop;
    if (this.cursor + (this.dropLast ? this.batchSize : 1) > this.n) {
      this.epoch++;
      this.cursor = 0;
    }
    return batch;
  }

  /** Plain-data position, for checkpoints: the next batch is batch cursor / batchSize of epoch. */
  state(): SamplerState {
    return { epoch: this.epoch, cursor: this.cursor };
  }
}
