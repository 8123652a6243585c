import { alignedNodes } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { assignLeaves, chooseSplit, nodeSamples, rangeForNode } from './assign.js';

describe('assignLeaves', () => {
  it('gives min(W, L) workers contiguous blocks that cover every leaf once, sizes differing by at most one', () => {
    for (let W = 1; W <= 9; W++) {
      for (let L = 1; L <= 13; L++) {
        const rs = assignLeaves(W, L);
        expect(rs.length).toBe(Math.min(W, L));
        expect(rs[0].leafLo).toBe(0);
        expect(rs.at(-1)!.leafHi).toBe(L);
        for (let i = 1; i < rs.length; i++) expect(rs[i].leafLo).toBe(rs[i - 1].leafHi);
        const sizes = rs.map((r) => r.leafHi - r.leafLo);
        expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      }
    }
  });

  it('refuses nonsense', () => {
    expect(() => assignLeaves(0, 4)).toThrow(/workers/);
    expect(() => assignLeaves(2, 0)).toThrow(/leaf count/);
    expect(() => assignLeaves(2, 4, [1])).toThrow(/expected 2 weights/);
    expect(() => assignLeaves(2, 4, [1, 0])).toThrow(/weights\[1\] must be a positive finite number, got 0/);
    expect(() => assignLeaves(2, 4, [Number.NaN, 1])).toThrow(/weights\[0\]/);
    expect(() => assignLeaves(2, 4, [1, Infinity])).toThrow(/weights\[1\]/);
  });

  it('with equal weights splits exactly as without weights (also weights like 0.1 whose sums round)', () => {
    for (const x of [2.5, 0.1, 1e-7, 3e300]) {
      for (let W = 1; W <= 9; W++) for (let L = 1; L <= 90; L++) expect(assignLeaves(W, L, new Array(W).fill(x))).toEqual(assignLeaves(W, L));
    }
  });

  it('huge and tiny weights do not overflow into NaN boundaries', () => {
    expect(assignLeaves(2, 4, [1e308, 5e307])).toEqual([
      { leafLo: 0, leafHi: 3 },
      { leafLo: 3, leafHi: 4 },
    ]);
    expect(assignLeaves(2, 4, [1e-300, 3e-300])).toEqual([
      { leafLo: 0, leafHi: 1 },
      { leafLo: 1, leafHi: 4 },
    ]);
  });

  it('gives leaves in proportion to the weights, at least one each, covering every leaf once', () => {
    expect(assignLeaves(2, 16, [1.7, 1])).toEqual([
      { leafLo: 0, leafHi: 10 },
      { leafLo: 10, leafHi: 16 },
    ]);
    expect(assignLeaves(3, 12, [1, 2, 1])).toEqual([
      { leafLo: 0, leafHi: 3 },
      { leafLo: 3, leafHi: 9 },
      { leafLo: 9, leafHi: 12 },
    ]);
    // a very slow worker still gets one leaf; one with a huge weight leaves one to each other
    expect(assignLeaves(3, 8, [1, 1000, 1])).toEqual([
      { leafLo: 0, leafHi: 1 },
      { leafLo: 1, leafHi: 7 },
      { leafLo: 7, leafHi: 8 },
    ]);
    expect(assignLeaves(2, 8, [1e-6, 1])).toEqual([
      { leafLo: 0, leafHi: 1 },
      { leafLo: 1, leafHi: 8 },
    ]);
    for (let W = 1; W <= 6; W++) {
      for (let L = 1; L <= 20; L++) {
        const w = Array.from({ length: W }, (_, i) => 1 + ((i * 7) % 5));
        const rs = assignLeaves(W, L, w);
        expect(rs.length).toBe(Math.min(W, L));
        expect(rs[0].leafLo).toBe(0);
        expect(rs.at(-1)!.leafHi).toBe(L);
        for (let i = 0; i < rs.length; i++) {
          expect(rs[i].leafHi - rs[i].leafLo).toBeGreaterThanOrEqual(1);
          if (i > 0) expect(rs[i].leafLo).toBe(rs[i - 1].leafHi);
        }
      }
    }
  });
});

describe('chooseSplit', () => {
  it('moves off the even split only for a predicted gain of at least 15 %', () => {
    // 1.3 : 1 would give 9 + 7 leaves: max(9/1.3, 7/1) = 7 against max(8/1.3, 8/1) = 8 for 8 + 8, only 12.5 % sooner
    expect(chooseSplit(16, [1.3, 1])).toEqual([8, 8]);
    // 1.7 : 1 gives 10 + 6: max(5.9, 6) = 6, 25 % sooner than 8
    expect(chooseSplit(16, [1.7, 1])).toEqual([10, 6]);
    expect(chooseSplit(16, [1, 1.7])).toEqual([6, 10]);
    expect(chooseSplit(12, [1, 2, 1])).toEqual([3, 6, 3]);
    // the gain threshold is a parameter: with 0 any better split is taken
    expect(chooseSplit(16, [1.3, 1], undefined, 0)).toEqual([9, 7]);
  });

  it('keeps the current split unless the new one is clearly better, so noise does not reshuffle leaves', () => {
    // after 10 + 6, speeds drift to 1.5 : 1 (9 + 7 would take 7, 10 + 6 takes 6.67): kept
    expect(chooseSplit(16, [1.5, 1], [10, 6])).toEqual([10, 6]);
    // the speeds swap: 6 + 10 takes 6 against 10 for 10 + 6: taken
    expect(chooseSplit(16, [1, 1.7], [10, 6])).toEqual([6, 10]);
    // back to equal speeds: 8 + 8 takes 8, 10 + 6 takes 10: the even split returns
    expect(chooseSplit(16, [1, 1], [10, 6])).toEqual([8, 8]);
  });

  it('refuses more workers than leaves and a current split that is not one', () => {
    expect(() => chooseSplit(2, [1, 1, 1])).toThrow(/expected 1 to 2 workers, got 3/);
    expect(() => chooseSplit(8, [1, 1], [4, 3])).toThrow(/current split \[4, 3\]/);
    expect(() => chooseSplit(8, [1, 1], [8, 0])).toThrow(/at least one/);
    expect(() => chooseSplit(8, [1, 1], [8])).toThrow(/current split/);
  });
});

describe('rangeForNode', () => {
  it('maps every canonical node of every block to a range whose decomposition is that node alone', () => {
    for (let L = 1; L <= 17; L++) {
      for (let W = 1; W <= 5; W++) {
        for (const r of assignLeaves(W, L)) {
          for (const node of alignedNodes(r.leafLo, r.leafHi, L)) {
            const back = rangeForNode(node, L);
            expect(back.leafLo).toBe(node.lo);
            expect(back.leafHi).toBe(Math.min(node.lo + node.size, L));
            expect(nodeSamples(node, L, 8, L * 8 - 3)).toBe(Math.min(back.leafHi * 8, L * 8 - 3) - node.lo * 8);
          }
        }
      }
    }
  });

  it('refuses a node that is not canonical', () => {
    // (0, 2) over 3 leaves is a tree node, but the canonical node for leaves [0, 3) is (0, 4)
    expect(rangeForNode({ lo: 0, size: 2 }, 3)).toEqual({ leafLo: 0, leafHi: 2 });
    expect(() => rangeForNode({ lo: 1, size: 2 }, 4)).toThrow(/not a canonical node/);
  });
});
