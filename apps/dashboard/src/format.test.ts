import { describe, expect, it } from 'vitest';
import { DASH, flattenConfig, fmtAgo, fmtBytes, fmtDuration, fmtInt, fmtMs, fmtNum, fmtPct, fmtRate } from './format.js';
import { countPoints, stackSeries } from './stack.js';

describe('format', () => {
  it('formats numbers, bytes, durations and rates readably', () => {
    expect(fmtNum(0.123456)).toBe('0.1235');
    expect(fmtNum(1234567)).toBe('1.235e+6');
    expect(fmtNum(null)).toBe(DASH);
    expect(fmtNum(NaN)).toBe(DASH);
    expect(fmtInt(1234567)).toBe('1\u2009234\u2009567');
    expect(fmtPct(0.91234)).toBe('91.23 %');
    expect(fmtBytes(512)).toBe('512 B');
    expect(fmtBytes(1536)).toBe('1.5 KiB');
    expect(fmtBytes(50 * 1024 * 1024)).toBe('50 MiB');
    expect(fmtMs(0.4249)).toBe('0.42 ms');
    expect(fmtMs(12.34)).toBe('12.3 ms');
    expect(fmtMs(1250)).toBe('1.25 s');
    expect(fmtDuration(200_000)).toBe('3 min 20 s');
    expect(fmtDuration(7_500_000)).toBe('2 h 05 min');
    expect(fmtRate(1234.5)).toBe('1.23k/s');
    expect(fmtRate(5.5)).toBe('5.50/s');
    expect(fmtAgo(10_000, 13_400)).toBe('3 s ago');
    expect(fmtAgo(10_000, 10_200)).toBe('just now');
  });

  it('flattens nested config, skipping the model', () => {
    expect(flattenConfig({ batchSize: 64, optimizer: { name: 'sgd', lr: 0.1 }, model: { layers: [] }, data: 'mnist', dims: [1, 2] })).toEqual([
      ['batchSize', '64'],
      ['optimizer.name', 'sgd'],
      ['optimizer.lr', '0.1'],
      ['data', 'mnist'],
      ['dims', '[1,2]'],
    ]);
  });
});

describe('stackSeries', () => {
  it('accumulates levels, treating a missing value as 0 but an empty column as a gap', () => {
    expect(stackSeries([[1, 2, null, null], [10, null, null, 4], [100, 200, null, 5]])).toEqual([
      [1, 2, null, 0],
      [11, 2, null, 4],
      [111, 202, null, 9],
    ]);
    expect(stackSeries([])).toEqual([]);
    expect(countPoints([1, null, 3])).toBe(2);
  });
});
