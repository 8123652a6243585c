import { type TreeNode, alignedNodes } from '@dptrain/core';

/** A contiguous block of leaves [leafLo, leafHi) given to one worker. */
export interface LeafRange {
  leafLo: number;
  leafHi: number;
}

/**
 * Split leaves [0, L) over `workers` workers in order: active = min(workers, L), and
 * worker i < active gets [floor(i·L/active), floor((i+1)·L/active)). Workers beyond
 * `active` get nothing (the returned array has `active` entries).
 */
export function assignLeaves(workers: number, L: number): LeafRange[] {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`leaf count must be a positive integer, got ${L}`);
  const active = Math.min(workers, L);
  const out: LeafRange[] = [];
  for (let i = 0; i < active; i++) out.push({ leafLo: Math.floor((i * L) / active), leafHi: Math.floor(((i + 1) * L) / active) });
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
