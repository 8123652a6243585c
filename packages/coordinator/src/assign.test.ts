import { alignedNodes } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { assignLeaves, nodeSamples, rangeForNode } from './assign.js';

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

  it('with equal weights splits exactly as without weights', () => {
    for (let W = 1; W <= 9; W++) for (let L = 1; L <= 40; L++) expect(assignLeaves(W, L, new Array(W).fill(2.5))).toEqual(assignLeaves(W, L));
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
