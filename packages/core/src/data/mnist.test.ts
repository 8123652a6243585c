import { describe, expect, it } from 'vitest';
import { DataError } from '../errors.js';
import { buildMnist, mnistSplit } from './mnist.js';

/** Fake per-digit arrays: digit k has counts[k] samples whose every pixel is (k*10 + j) / 1000. */
function fake(counts: number[]): number[][] {
  return counts.map((c, k) => Array.from({ length: c * 784 }, (_, i) => (k * 10 + Math.floor(i / 784)) / 1000));
}

describe('buildMnist', () => {
  it('interleaves the digits round-robin, skipping exhausted ones', () => {
    const ds = buildMnist(fake([2, 1, 1, 1, 1, 1, 1, 1, 1, 3]));
    expect(ds).toMatchObject({ name: 'mnist', n: 13, inputSize: 784, outputSize: 10, classes: 10 });
    expect(Array.from(ds.labels!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 9, 9]);
    // Row 11 is sample 1 of digit 9, row 12 sample 2 of digit 9.
    expect(ds.x[11 * 784]).toBe(Math.fround(91 / 1000));
    expect(ds.x[12 * 784 + 783]).toBe(Math.fround(92 / 1000));
    expect(ds.y[12 * 10 + 9]).toBe(1);
  });

  it('rejects a wrong number of digits, ragged arrays and out-of-range pixels', () => {
    expect(() => buildMnist(fake([1, 1]))).toThrow(DataError);
    const bad = fake(new Array(10).fill(1));
    bad[3] = bad[3].slice(1);
    expect(() => buildMnist(bad)).toThrow(/digit 3/);
    const big = fake(new Array(10).fill(1));
    big[2][5] = 2;
    expect(() => buildMnist(big)).toThrow(/digit 2, sample 0, pixel 5/);
  });
});

describe('mnistSplit', () => {
  it('is stratified: every class gives its share of the test set, evenly spaced', () => {
    const ds = buildMnist(fake([3, 3, 3, 3, 3, 3, 3, 3, 3, 6]));
    const { train, test } = mnistSplit(ds, 11);
    expect([train.n, test.n]).toEqual([22, 11]);
    const per = new Array(10).fill(0);
    for (const l of test.labels!) per[l]++;
    // 33 samples, 11 test rows: a third of each class; digit 9 has 6 samples, so 2
    expect(per).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    const again = mnistSplit(ds, 11);
    expect(Array.from(again.test.x)).toEqual(Array.from(test.x));
    expect(() => mnistSplit(ds, 33)).toThrow(/testCount/);
  });
});
