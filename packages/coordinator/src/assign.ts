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
 * round(L·(w₀+…+wᵢ)/Σw), so a worker twice as fast gets about twice the leaves; equal
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
  // equal weights (or none): the even split, exactly; otherwise shares of the largest weight
  // (so no sum overflows) and the nearest boundary to each worker's share
  const raw = weights?.slice(0, active);
  const even = raw === undefined || raw.every((x) => x === raw[0]);
  const top = even ? 1 : Math.max(...raw);
  const w = even ? new Array<number>(active).fill(1) : raw.map((x) => x / top);
  const total = w.reduce((a, b) => a + b, 0);
  const cut = even ? Math.floor : Math.round;
  const out: LeafRange[] = [];
  let lo = 0;
  let cum = 0;
  for (let i = 0; i < active; i++) {
    cum += w[i];
    // at least one leaf each, and room for one leaf for every worker after this one
    const hi = i === active - 1 ? L : Math.min(L - (active - 1 - i), Math.max(lo + 1, cut((L * cum) / total)));
    out.push({ leafLo: lo, leafHi: hi });
    lo = hi;
  }
  return out;
}

/**
 * Leaves per worker for a step of L leaves over workers of measured `speeds` (samples per
 * ms, all > 0; at most L workers): the split in proportion to the speeds (assignLeaves)
 * if it is predicted to end the step at least `gain` (a fraction) sooner than `current`
 * (leaves per worker summing to L; default the even split), else `current`. The predicted
 * step time of a split is the largest leaves / speed over the workers. Keeping a split
 * until a clearly better one appears stops measurement noise from reshuffling leaves (and
 * adding tree nodes to send and sum) every step.
 */
export function chooseSplit(L: number, speeds: readonly number[], current?: readonly number[], gain = 0.15): number[] {
  const n = speeds.length;
  if (n < 1 || n > L) throw new RangeError(`expected 1 to ${L} workers, got ${n}`);
  if (current !== undefined && (current.length !== n || current.reduce((a, b) => a + b, 0) !== L || current.some((x) => !Number.isInteger(x) || x < 1))) {
    throw new RangeError(`current split [${current.join(', ')}] does not give each of ${n} workers at least one of ${L} leaves`);
  }
  const sizes = (rs: LeafRange[]) => rs.map((r) => r.leafHi - r.leafLo);
  const now = current ?? sizes(assignLeaves(n, L));
  const next = sizes(assignLeaves(n, L, speeds));
  const time = (split: readonly number[]) => Math.max(...split.map((x, i) => x / speeds[i]));
  return time(next) < (1 - gain) * time(now) ? next : [...now];
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
