import { describe, expect, it } from 'vitest';
import { ConfigError } from '@dptrain/core';
import { W_SPEC, median, parseFlags, secondsPerCall, stepFlopsPerSample, summarize, syntheticClassification, table, widths } from './util.js';

describe('median and summarize', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });
  it('reports min, max and count without reordering the input', () => {
    const v = [3, 9, 1];
    expect(summarize(v)).toEqual({ median: 3, min: 1, max: 9, n: 3 });
    expect(v).toEqual([3, 9, 1]);
  });
});

describe('stepFlopsPerSample', () => {
  it('counts forward, weight grad and (except the first layer) input grad', () => {
    expect(widths(W_SPEC)).toEqual([784, 256, 128, 10]);
    expect(stepFlopsPerSample(widths(W_SPEC))).toBe(1_007_104);
    expect(stepFlopsPerSample([2, 3])).toBe(24);
    expect(stepFlopsPerSample([2, 3, 4])).toBe(24 + 3 * 24);
  });
});

describe('syntheticClassification', () => {
  it('is seeded, uniform in [0, 1) and one-hot', () => {
    const a = syntheticClassification(50, 7, 4, 3);
    const b = syntheticClassification(50, 7, 4, 3);
    const c = syntheticClassification(50, 7, 4, 4);
    expect(a.x).toEqual(b.x);
    expect(a.x).not.toEqual(c.x);
    expect(a.x.every((v) => v >= 0 && v < 1)).toBe(true);
    for (let i = 0; i < a.n; i++) {
      const row = Array.from(a.y.subarray(i * 4, i * 4 + 4));
      expect(row.reduce((s, v) => s + v, 0)).toBe(1);
      expect(row[a.labels![i]]).toBe(1);
    }
    expect(new Set(a.labels).size).toBeGreaterThan(1);
  });
});

describe('parseFlags', () => {
  const spec = { runs: { kind: 'int', min: 1, max: 10, default: 7 }, json: { kind: 'bool' } } as const;
  it('merges flags over the defaults', () => {
    expect(parseFlags([], spec)).toEqual({ runs: 7, json: false });
    expect(parseFlags(['--json', '--runs', '3'], spec)).toEqual({ runs: 3, json: true });
  });
  it('names the bad flag and what it accepts', () => {
    expect(() => parseFlags(['--runs', '0'], spec)).toThrow(/--runs.*\[1, 10\]/);
    expect(() => parseFlags(['--runs', '2.5'], spec)).toThrow(ConfigError);
    expect(() => parseFlags(['--runs'], spec)).toThrow(/--runs/);
    expect(() => parseFlags(['--steps', '3'], spec)).toThrow(/--steps.*--runs N, --json/);
  });
});

describe('secondsPerCall', () => {
  it('returns one positive sample per run and calls the function every run', () => {
    let calls = 0;
    const s = secondsPerCall(() => calls++, 4, 1, 1);
    expect(s).toHaveLength(4);
    expect(s.every((v) => v > 0)).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(3 + 4);
  });
});

describe('table', () => {
  it('pads the first column left-aligned and the others right-aligned', () => {
    expect(table(['a', 'bb'], [['xyz', '1'], ['q', '22']]).split('\n')).toEqual(['a    bb', '---  --', 'xyz   1', 'q    22']);
  });
});
