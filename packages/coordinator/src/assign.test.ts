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
