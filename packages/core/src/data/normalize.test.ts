import { describe, expect, it } from 'vitest';
import { normalize } from './normalize.js';

describe('normalize', () => {
  const train = Float32Array.from([0, 10, 5, 2, 10, 5, 4, 10, 5]); // 3 rows × 3 cols, cols 2 and 3 constant

  it('minmax maps the train columns to [0, 1] and constant columns to 0', () => {
    const { x, stats } = normalize(train, 3, 'minmax');
    expect(Array.from(x)).toEqual([0, 0, 0, 0.5, 0, 0, 1, 0, 0]);
    expect(stats).toEqual({ kind: 'minmax', offset: [0, 10, 5], scale: [0.25, 1, 1] });
  });

  it('standard gives zero mean, unit variance; stats apply unchanged to test data', () => {
    const { x, stats } = normalize(train, 3, 'standard');
    const col0 = [x[0], x[3], x[6]];
    expect(col0[0] + col0[1] + col0[2]).toBeCloseTo(0, 6);
    expect((col0[0] ** 2 + col0[1] ** 2 + col0[2] ** 2) / 3).toBeCloseTo(1, 5);
    const test = normalize(Float32Array.from([2, 11, 5]), 3, 'standard', stats);
    expect(test.stats).toBe(stats);
    expect(test.x[0]).toBeCloseTo(0, 6);
    expect(test.x[1]).toBe(1); // constant column: scale 1, offset 10
  });

  it('validates its arguments', () => {
    expect(() => normalize(train, 2, 'minmax')).toThrow(/rows of 2 columns/);
    expect(() => normalize(train, 3, 'minmax', { kind: 'standard', offset: [0, 0, 0], scale: [1, 1, 1] })).toThrow(/stats\.kind/);
    expect(() => normalize(train, 3, 'minmax', { kind: 'minmax', offset: [0], scale: [1] })).toThrow(/stats/);
    expect(() => normalize(train, 3, 'other' as never)).toThrow(/kind/);
  });
});
