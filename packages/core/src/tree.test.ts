import { describe, expect, it } from 'vitest';
import { TreeReducer, alignedNodes, leafCount, nextPow2 } from './tree.js';
import { Rng } from './rng.js';
import { createWasmKernels, jsKernels, wasmSupported } from './kernels/index.js';

/** Ground truth: the recursive sum of node (lo, size) over leaf vectors. */
function recursive(leaves: Float32Array[], lo: number, size: number): Float32Array {
  if (size === 1) return Float32Array.from(leaves[lo]);
  const l = recursive(leaves, lo, size / 2);
  if (lo + size / 2 >= leaves.length) return l;
  const r = recursive(leaves, lo + size / 2, size / 2);
  for (let i = 0; i < l.length; i++) l[i] += r[i];
  return l;
}

describe('reduction tree', () => {
  it('leafCount and nextPow2', () => {
    expect(leafCount(128, 32)).toBe(4);
    expect(leafCount(130, 32)).toBe(5);
    expect([1, 2, 3, 5, 8, 9].map(nextPow2)).toEqual([1, 2, 4, 8, 8, 16]);
  });

  it('alignedNodes partitions any range into aligned power-of-two nodes', () => {
    for (const L of [1, 2, 3, 5, 7, 8, 13, 16]) {
      for (let a = 0; a < L; a++) {
        for (let b = a + 1; b <= L; b++) {
          const nodes = alignedNodes(a, b, L);
          let cur = a;
          for (const n of nodes) {
            expect(n.lo).toBe(cur);
            expect(n.lo % n.size).toBe(0);
            expect(n.size & (n.size - 1)).toBe(0);
            cur = Math.min(n.lo + n.size, L);
          }
          expect(cur).toBe(b);
        }
      }
    }
    expect(alignedNodes(0, 8, 8)).toEqual([{ lo: 0, size: 8 }]);
    expect(alignedNodes(3, 6, 8)).toEqual([{ lo: 3, size: 1 }, { lo: 4, size: 2 }]);
    expect(alignedNodes(4, 5, 5)).toEqual([{ lo: 4, size: 4 }]);
    expect(() => alignedNodes(2, 2, 4)).toThrow(/leaf range/);
  });

  it('any partition, added in any order, reproduces the single-process sum bit for bit', () => {
    const rng = new Rng(3);
    for (const L of [1, 3, 4, 6, 11, 16]) {
      const leaves = Array.from({ length: L }, () => Float32Array.from({ length: 50 }, () => rng.nextNormal() * 10 ** rng.nextInt(6)));
      const truth = recursive(leaves, 0, nextPow2(L));
      for (let trial = 0; trial < 10; trial++) {
        // random cut points → ranges → canonical nodes, like workers
        const cuts = new Set<number>([0, L]);
        for (let c = 0; c < rng.nextInt(L); c++) cuts.add(rng.nextInt(L));
        const pts = [...cuts].sort((x, y) => x - y);
        const nodes = pts.slice(1).flatMap((b, i) => alignedNodes(pts[i], b, L));
        rng.shuffle(nodes);
        const red = new TreeReducer(L);
        for (const n of nodes) expect(red.add(n.lo, n.size, recursive(leaves, n.lo, n.size))).toBe(true);
        expect(red.complete).toBe(true);
        expect(Array.from(red.result())).toEqual(Array.from(truth));
      }
    }
  });

  it('sums siblings with the add it is given (wasm, js kernels) to the same bits, and refuses siblings of different lengths', () => {
    const rng = new Rng(4);
    const L = 11;
    const leaves = Array.from({ length: L }, () => Float32Array.from({ length: 1001 }, () => rng.nextNormal() * 10 ** rng.nextInt(6)));
    const truth = recursive(leaves, 0, nextPow2(L));
    const adds: Array<(n: number, d: Float32Array, s: Float32Array) => void> = [jsKernels.add];
    if (wasmSupported()) adds.push(createWasmKernels({ memoryMiB: 2 }).add);
    for (const add of adds) {
      let calls = 0;
      const red = new TreeReducer(L, () => {}, (n, d, s) => {
        calls++;
        add(n, d, s);
      });
      for (let j = 0; j < L; j++) red.add(j, 1, Float32Array.from(leaves[j]));
      expect(calls).toBe(L - 1);
      expect(Array.from(red.result())).toEqual(Array.from(truth));
    }
    const red = new TreeReducer(2);
    red.add(0, 1, new Float32Array(3));
    expect(() => red.add(1, 1, new Float32Array(4))).toThrow(/node \(1, 1\) has 4 values, its sibling 3/);
  });

  it('a naive left-to-right sum differs, so the test above can fail', () => {
    const rng = new Rng(4);
    const L = 16;
    const leaves = Array.from({ length: L }, () => Float32Array.from({ length: 200 }, () => rng.nextNormal() * 10 ** rng.nextInt(6)));
    const truth = recursive(leaves, 0, L);
    const seq = new Float32Array(200);
    for (const l of leaves) for (let i = 0; i < 200; i++) seq[i] += l[i];
    expect(Array.from(seq)).not.toEqual(Array.from(truth));
  });

  it('refuses duplicates and overlapping nodes, and nodes outside the tree', () => {
    const red = new TreeReducer(8);
    expect(red.add(0, 2, new Float32Array(1))).toBe(true);
    expect(red.add(0, 2, new Float32Array(1))).toBe(false);
    expect(red.add(1, 1, new Float32Array(1))).toBe(false);
    expect(red.add(0, 4, new Float32Array(1))).toBe(false);
    expect(() => red.add(3, 2, new Float32Array(1))).toThrow(/not a node/);
    expect(() => red.add(8, 1, new Float32Array(1))).toThrow(/not a node/);
    expect(red.complete).toBe(false);
    expect(() => red.result()).toThrow(/incomplete/);
  });
});
