import { type TreeNode, alignedNodes } from '@dptrain/core';

/** A contiguous block of leaves [leafLo, leafHi) given to one worker. */
export interface LeafRange {
  leafLo: number;
  leafHi: number;
}

/**
 * Split leaves [0, L) over `workers` workers in order: active = min(workers, L), and
 * worker i < active gets a contiguous block of at least one leaf. Without `weights` the
 * blocks are even: [floor(i·L/active), floor((i+1)·L/active)). With `weights` (one positive
 * finite number per worker, e.g. its measured samples per ms) worker i's block ends at
 * floor(L·(w₀+…+wᵢ)/Σw), so a worker twice as fast gets about twice the leaves; equal
 * weights give the even split. Workers beyond `active` get nothing (the returned array has
 * `active` entries). The split never changes the result: every canonical node is summed in
 * the same tree whoever computes it.
 */
export function assignLeaves(workers: number, L: number, weights?: readonly number[]): LeafRange[] {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`leaf count must be a positive integer, got ${L}`);
  if (weights !== undefined) {
    if (weights.length !== workers) throw new RangeError(`expected ${workers} weights, got ${weights.length}`);
    const bad = weights.findIndex((w) => !(w > 0) || !Number.isFinite(w));
    if (bad >= 0) throw new RangeError(`weights[${bad}] must be a positive finite number, got ${weights[bad]}`);
  }
  const active = Math.min(workers, L);
  const w = weights?.slice(0, active) ?? new Array<number>(active).fill(1);
  const total = w.reduce((a, b) => a + b, 0);
  const out: LeafRange[] = [];
  let lo = 0;
  let cum = 0;
  for (let i = 0; i < active; i++) {
    cum += w[i];
    // at least one leaf each, and room for one leaf for every worker after this one
    const hi = i === active - 1 ? L : Math.min(L - (active - 1 - i), Math.max(lo + 1, Math.floor((L * cum) / total)));
    out.push({ leafLo: lo, leafHi: hi });
    lo = hi;
  }
  return out;
}

/** The real leaves [lo, hi) of a tree node in a tree over L leaves (its padded part cut off). */
export function nodeLeafRange(node: TreeNode, L: number): LeafRange {
  return { leafLo: node.lo, leafHi: Math.min(node.lo + node.size, L) };
}

/**
 * The leaf range to give a worker so that it computes exactly `node` and nothing else:
 * the node's real leaf range, whose canonical decomposition is the node itself.
 */
export function rangeForNode(node: TreeNode, L: number): LeafRange {
  const r = nodeLeafRange(node, L);
  const nodes = alignedNodes(r.leafLo, r.leafHi, L);
  if (nodes.length !== 1 || nodes[0].lo !== node.lo || nodes[0].size !== node.size) {
    throw new RangeError(`node (${node.lo}, ${node.size}) is not a canonical node of a tree over ${L} leaves`);
  }
  return r;
}

/** Samples in the real leaves of a node: rows lo·leafSize .. min(hi·leafSize, B). */
export function nodeSamples(node: TreeNode, L: number, leafSize: number, B: number): number {
  const r = nodeLeafRange(node, L);
  return Math.min(r.leafHi * leafSize, B) - r.leafLo * leafSize;
}
