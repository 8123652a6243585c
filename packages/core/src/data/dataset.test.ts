import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '../errors.js';
import { assertDataset, oneHot, splitDataset, subset } from './dataset.js';
import { fingerprint } from './fingerprint.js';
import { blobs } from './synthetic.js';

describe('oneHot and subset', () => {
  it('one-hot encodes and rejects out-of-range labels', () => {
    expect(Array.from(oneHot(Int32Array.from([2, 0]), 3))).toEqual([0, 0, 1, 1, 0, 0]);
    expect(() => oneHot(Int32Array.from([3]), 3)).toThrow(/labels\[0\]/);
    expect(() => oneHot(Int32Array.from([0]), 0)).toThrow(ConfigError);
  });

  it('copies rows in order and rejects bad indices', () => {
    const ds = blobs(10, { seed: 2, dims: 2, centers: 2 });
    const s = subset(ds, [3, 1], 'part');
    expect(s).toMatchObject({ name: 'part', n: 2, inputSize: 2, outputSize: 2, classes: 2 });
    expect(Array.from(s.x)).toEqual([...ds.x.subarray(6, 8), ...ds.x.subarray(2, 4)]);
    expect(Array.from(s.labels!)).toEqual([1, 1]);
    s.x[0] = 99;
    expect(ds.x[6]).not.toBe(99);
    expect(() => subset(ds, [10])).toThrow(DataError);
  });

  it('assertDataset catches inconsistent lengths', () => {
    const ds = blobs(4, { seed: 1 });
    expect(() => assertDataset({ ...ds, n: 5 })).toThrow(/\.x/);
  });
});

describe('splitDataset', () => {
  const ds = blobs(100, { seed: 3, centers: 4 });

  it('without shuffle keeps the last rows as the test set', () => {
    const { train, test } = splitDataset(ds, { testCount: 10 });
    expect([train.n, test.n]).toEqual([90, 10]);
    expect(Array.from(test.x)).toEqual(Array.from(ds.x.subarray(180)));
  });

  it('with shuffle is deterministic by seed, disjoint and complete', () => {
    const a = splitDataset(ds, { testFraction: 0.25, seed: 5, shuffle: true });
    const b = splitDataset(ds, { testFraction: 0.25, seed: 5, shuffle: true });
    const c = splitDataset(ds, { testFraction: 0.25, seed: 6, shuffle: true });
    expect([a.train.n, a.test.n]).toEqual([75, 25]);
    expect(fingerprint(a.test)).toBe(fingerprint(b.test));
    expect(fingerprint(a.test)).not.toBe(fingerprint(c.test));
    // Every row ends up exactly once across train and test.
    const key = (x: Float32Array, i: number) => `${x[2 * i]},${x[2 * i + 1]}`;
    const rows = (d: typeof ds) => Array.from({ length: d.n }, (_, i) => key(d.x, i));
    expect([...rows(a.train), ...rows(a.test)].sort()).toEqual(rows(ds).sort());
  });

  it('validates options', () => {
    expect(() => splitDataset(ds, { testCount: 100 })).toThrow(/testCount/);
    expect(() => splitDataset(ds, { testFraction: 1 })).toThrow(/testFraction/);
    expect(() => splitDataset(ds, { seed: -2, shuffle: true })).toThrow(/seed/);
  });
});
