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

/** About how many rows a LeafComputer passes through the network at once (see leafChunkRows). */
export const CHUNK_ROWS = 256;

/**
 * Rows a LeafComputer's network holds: whole leaves, a power of two of them (so a chunk is
 * a node of the tree), as many as fit in CHUNK_ROWS rows, at least one leaf. Size kernels
 * for a LeafComputer with it (kernelsForModel's maxRows).
 */
export function leafChunkRows(leafSize: number): number {
  let leaves = 1;
  while (leaves * 2 * leafSize <= CHUNK_ROWS) leaves *= 2;
  return leaves * leafSize;
}

/**
 * Computes gradient sums of tree nodes: every leaf the same way, then the leaves of a
 * node summed by the fixed tree. The forward pass and the δ of up to a chunk of leaves
 * (leafChunkRows) run as one pass over all their rows — larger, faster matrix products,
 * and a row's values depend only on that row in every kernel — and each leaf's gradient
 * is then the weight gradient of its own rows: the same bits as one pass per leaf.
 * This is the only place a gradient is computed, for the single-process trainer
 * and for workers alike, which is why their results are bit-identical.
 */
export class LeafComputer {
  readonly net: Network;
  readonly leafSize: number;
  private readonly data: Dataset;
  private readonly seed: number;
  private readonly ids: Int32Array;
  private readonly rowLoss: Float64Array;
  private readonly rowCorrect: Uint8Array;
  private readonly chunkLeaves: number;
  private readonly scratch: Float32Array[] = [];

  constructor(spec: ModelSpec, data: Dataset, opts: { leafSize: number; seed: number; kernels?: Kernels }) {
    const chunkRows = leafChunkRows(opts.leafSize);
    this.net = new Network(spec, { maxRows: chunkRows, kernels: opts.kernels });
    if (data.inputSize !== this.net.inputSize) throw new ShapeError(`dataset ${data.name} has ${data.inputSize} inputs, the model takes ${this.net.inputSize}`);
    if (data.outputSize !== this.net.outputSize) throw new ShapeError(`dataset ${data.name} has ${data.outputSize} targets per sample, the model outputs ${this.net.outputSize}`);
    this.data = data;
    this.leafSize = opts.leafSize;
    this.seed = opts.seed;
    this.chunkLeaves = chunkRows / opts.leafSize;
    this.ids = new Int32Array(chunkRows);
    this.rowLoss = new Float64Array(chunkRows);
    this.rowCorrect = new Uint8Array(chunkRows);
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
    const stats = this.sumNode(batch, node.lo, node.size, root, 1, -1);
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

  /**
   * Node (lo, size) into `dst`: its left half into dst, its right half into the next level's
   * buffer, then dst += right. `chunk` is the first leaf of the pass the network holds, or -1
   * above the chunks: the first node small enough to be a chunk runs its pass.
   */
  private sumNode(batch: BatchRef, lo: number, size: number, dst: Float32Array, depth: number, chunk: number): NodeStats {
    if (chunk < 0 && size <= this.chunkLeaves) chunk = this.pass(batch, lo, Math.min(lo + size, batch.leafCount));
    if (size === 1) return this.leaf(batch, lo, chunk, dst);
    const half = size / 2;
    const left = this.sumNode(batch, lo, half, dst, depth, chunk);
    if (lo + half >= batch.leafCount) return left;
    const tmp = this.level(depth);
    const right = this.sumNode(batch, lo + half, half, tmp, depth + 1, chunk);
    this.net.kernels.add(this.paramCount, dst, tmp);
    return { samples: left.samples + right.samples, lossSum: left.lossSum + right.lossSum, correct: left.correct + right.correct };
  }

  /** Rows of leaf j: leafSize, fewer in the batch's last leaf. */
  private rowsOf(batch: BatchRef, j: number): number {
    const rows = Math.min(this.leafSize, batch.batchSize - j * this.leafSize);
    if (rows < 1) throw new ShapeError(`leaf ${j} is outside a batch of ${batch.batchSize} samples`);
    return rows;
  }

  /** Forward pass and δ over all rows of leaves [lo, hi) (one chunk): the network then holds them. Returns lo. */
  private pass(batch: BatchRef, lo: number, hi: number): number {
    const L = this.leafSize;
    const net = this.net;
    const { x, y, n } = this.data;
    const fin = net.inputSize;
    const fout = net.outputSize;
    let rows = 0;
    for (let j = lo; j < hi; j++) {
      const base = (j - batch.indexBase) * L;
      const count = this.rowsOf(batch, j);
      for (let r = 0; r < count; r++, rows++) {
        const s = batch.indices[base + r];
        if (!(s >= 0 && s < n)) throw new ShapeError(`sample index ${s} is outside the dataset (0..${n - 1})`);
        this.ids[rows] = s;
        net.input.set(x.subarray(s * fin, (s + 1) * fin), rows * fin);
        net.target.set(y.subarray(s * fout, (s + 1) * fout), rows * fout);
      }
    }
    net.forwardDeltas(rows, { training: true, dropoutSeed: this.seed, step: batch.step, sampleIds: this.ids }, this.rowLoss, this.rowCorrect);
    return lo;
  }

  /** Leaf j's gradient sum into `out`, from the pass of the chunk starting at leaf `chunk`: the weight gradients of its own rows. */
  private leaf(batch: BatchRef, j: number, chunk: number, out: Float32Array): NodeStats {
    const rows = this.rowsOf(batch, j);
    const r0 = (j - chunk) * this.leafSize;
    this.net.rowGradient(r0, rows, out);
    let lossSum = 0;
    let correct = 0;
    for (let r = r0; r < r0 + rows; r++) {
      lossSum += this.rowLoss[r];
      correct += this.rowCorrect[r];
    }
    return { samples: rows, lossSum, correct };
  }
}
