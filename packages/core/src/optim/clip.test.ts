import { describe, expect, it } from 'vitest';
import { ConfigError, DptrainError } from '../errors.js';
import { clipByGlobalNorm, globalNorm } from './clip.js';

describe('clipByGlobalNorm', () => {
  it('scales by maxNorm / (norm + 1e-6) when above maxNorm and returns the pre-clip norm', () => {
    const g = Float32Array.from([3, 0, -4]);
    const norm = clipByGlobalNorm(g, 1);
    expect(norm).toBe(5);
    const c = 1 / (5 + 1e-6);
    expect(Array.from(g)).toEqual([Math.fround(3 * c), 0, Math.fround(-4 * c)]);
    expect(globalNorm(g)).toBeCloseTo(1, 5);
    expect(globalNorm(g)).toBeLessThan(1);
  });

  it('leaves gradients below the limit untouched', () => {
    const g = Float32Array.from([0.3, 0.4]);
    const norm = clipByGlobalNorm(g, 1);
    expect(norm).toBeCloseTo(0.5, 7);
    expect(g).toEqual(Float32Array.from([0.3, 0.4]));
  });

  it('sums squares in float64 in index order', () => {
    const g = Float32Array.from([1e-20, 1e20, -1e20, 1]);
    // index order in float64: ((1e-40 + 1e40) + 1e40) + 1
    let s = 0;
    for (const v of g) s += v * v;
    expect(globalNorm(g)).toBe(Math.sqrt(s));
    expect(globalNorm(new Float32Array(0))).toBe(0);
  });

  it('rejects non-finite gradients without changing them, and a bad maxNorm', () => {
    const g = Float32Array.from([10, Infinity, 10]);
    expect(() => clipByGlobalNorm(g, 1)).toThrow(DptrainError);
    try {
      clipByGlobalNorm(g, 1);
    } catch (e) {
      expect((e as DptrainError).code).toBe('E_NONFINITE');
      expect((e as Error).message).toContain('gradient[1]');
    }
    expect(g).toEqual(Float32Array.from([10, Infinity, 10]));
    expect(() => clipByGlobalNorm(Float32Array.from([1]), 0)).toThrow(ConfigError);
    expect(() => clipByGlobalNorm(Float32Array.from([1]), NaN)).toThrow(ConfigError);
  });
});
