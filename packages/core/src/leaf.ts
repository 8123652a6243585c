import type { Dataset } from './data/index.js';
import { type Kernels, allocOrPlain } from './kernels/index.js';
import { Network } from './network.js';
import type { ModelSpec } from './spec.js';
import { type TreeNode, alignedNodes, nextPow2 } from './tree.js';
import { ShapeError } from './errors.js';

export interface NodeStats {
  samples: number;
  lossSum: number;
  correct: number;
  /** With `{ scan: true }`: index of the first NaN or ±Infinity in the node's gradient, or -1. */
  firstNonFinite?: number;
}

/** A node's sum as computeNodeView hands it out: `grad` is valid until the computer's next compute call. */
export interface NodeView {
  stats: NodeStats;
  /** The node's gradient sum, a view of the computer's tree buffer (overwritten by its next compute call). */
  grad: Float32Array;
}

/** The batch a leaf range belongs to. */
export interface BatchRef {
  step: number;
  /** Leaves in the whole global batch (L = ceil(batchSize / leafSize)). */
  leafCount: number;
  batchSize: number;
  /** Sample indices of the rows of leaves [indexBase, ...): row r of leaf j is indices[(j - indexBase) * leafSize + r]. */
  indices: ArrayLike<number>;
  indexBase: number;
}

/**
 * Parameter-sized buffers a LeafComputer uses to sum nodes of a batch of `batchSize`
 * rows in leaves of `leafSize`: one per tree level plus the node itself. Pass it to
 * kernelsForModel so they fit in the kernels' memory.
 */
export function treeBuffers(batchSize: number, leafSize: number): number {
  return Math.log2(nextPow2(Math.ceil(batchSize / leafSize))) + 1;
}

/**
 * Computes gradient sums of tree nodes: every leaf the same way (one forward and
 * backward pass over its rows), then the leaves of a node summed by the fixed tree.
 * This is the only place a gradient is computed, for the single-process trainer
 * and for workers alike, which is why their results are bit-identical.
 */
export class LeafComputer {
  readonly net: Network;
  readonly leafSize: number;
  private readonly data: Dataset;
  private readonly seed: number;
  private readonly ids: Int32Array;
  private readonly scratch: Float32Array[] = [];

  constructor(spec: ModelSpec, data: Dataset, opts: { leafSize: number; seed: number; kernels?: Kernels }) {
    this.net = new Network(spec, { maxRows: opts.leafSize, kernels: opts.kernels });
    if (data.inputSize !== this.net.inputSize) throw new ShapeError(`dataset ${data.name} has ${data.inputSize} inputs, the model takes ${this.net.inputSize}`);
    if (data.outputSize !== this.net.outputSize) throw new ShapeError(`dataset ${data.name} has ${data.outputSize} targets per sample, the model outputs ${this.net.outputSize}`);
    this.data = data;
    this.leafSize = opts.leafSize;
    this.seed = opts.seed;
    this.ids = new Int32Array(opts.leafSize);
  }

  get paramCount(): number {
    return this.net.layout.total;
  }

  setParams(p: Float32Array): void {
    this.net.setParams(p);
  }

  /** Canonical nodes of a leaf range, in order. */
  nodesOf(leafLo: number, leafHi: number, leafCount: number): TreeNode[] {
    return alignedNodes(leafLo, leafHi, leafCount);
  }

  /**
   * Sum of node (lo, size) into `out` (overwritten). With `scan`, the stats also name the
   * first non-finite gradient value (found by the kernels where the sum was made, faster
   * than a scan of `out`). The same bits as computeNodeView, copied out once.
   */
  computeNode(batch: BatchRef, node: TreeNode, out: Float32Array, opts: { scan?: boolean } = {}): NodeStats {
    if (out.length !== this.paramCount) throw new ShapeError(`gradient buffer has ${out.length} values, expected ${this.paramCount}`);
    const { stats, grad } = this.computeNodeView(batch, node, opts);
    out.set(grad);
    return stats;
  }

  /**
   * Sum of node (lo, size), handed out without a copy: `grad` is a view of the buffer the
   * tree was summed in (in the kernels' own memory when it had room). The view is valid
   * only until the next computeNode or computeNodeView call of this computer, which
   * overwrites it (every value: whatever the caller wrote into it does not leak into the
   * next node) and returns the same view again. Read it, or copy it, before then. `scan`
   * as for computeNode.
   */
  computeNodeView(batch: BatchRef, node: TreeNode, opts: { scan?: boolean } = {}): NodeView {
    // The tree is summed in buffers of the kernels' own memory (level 0 holds the node),
    // where the leaves' weight gradients are written in place and kernels.add sums them.
    const root = this.level(0);
    const stats = this.sumNode(batch, node.lo, node.size, root, 1);
    if (opts.scan) stats.firstNonFinite = this.net.kernels.firstNonFinite(this.paramCount, root);
    return { stats, grad: root };
  }

  /**
   * The tree buffer of a level (allocated on first use from the kernels' memory, or as
   * a plain array when that memory is full: correct, just slower).
   */
  private level(depth: number): Float32Array {
    while (this.scratch.length <= depth) this.scratch.push(allocOrPlain(this.net.kernels, this.paramCount));
    return this.scratch[depth];
  }

  /** Node (lo, size) into `dst`: its left half into dst, its right half into the next level's buffer, then dst += right. */
  private sumNode(batch: BatchRef, lo: number, size: number, dst: Float32Array, depth: number): NodeStats {
    if (size === 1) return this.leaf(batch, lo, dst);
    const half = size / 2;
    const left = this.sumNode(batch, lo, half, dst, depth);
    if (lo + half >= batch.leafCount) return left;
    const tmp = this.level(depth);
    const right = this.sumNode(batch, lo + half, half, tmp, depth + 1);
    this.net.kernels.add(this.paramCount, dst, tmp);
    return { samples: left.samples + right.samples, lossSum: left.lossSum + right.lossSum, correct: left.correct + right.correct };
  }

  private leaf(batch: BatchRef, j: number, out: Float32Array): NodeStats {
    const L = this.leafSize;
    const rows = Math.min(L, batch.batchSize - j * L);
    if (rows < 1) throw new ShapeError(`leaf ${j} is outside a batch of ${batch.batchSize} samples`);
    const net = this.net;
    const { x, y, n } = this.data;
    const fin = net.inputSize;
    const fout = net.outputSize;
    const base = (j - batch.indexBase) * L;
    for (let r = 0; r < rows; r++) {
      const s = batch.indices[base + r];
      if (!(s >= 0 && s < n)) throw new ShapeError(`sample index ${s} is outside the dataset (0..${n - 1})`);
      this.ids[r] = s;
      net.input.set(x.subarray(s * fin, (s + 1) * fin), r * fin);
      net.target.set(y.subarray(s * fout, (s + 1) * fout), r * fout);
    }
    const st = net.lossAndGrad(rows, { training: true, dropoutSeed: this.seed, step: batch.step, sampleIds: this.ids }, out);
    return { samples: rows, lossSum: st.lossSum, correct: st.correct };
  }
}
