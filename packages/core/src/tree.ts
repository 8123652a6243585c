/**
 * The fixed reduction tree over the leaves (micro-batches) of one global batch.
 *
 * Leaves 0..L-1 are padded to P = nextPow2(L). A node (lo, size) has size a power
 * of two and lo a multiple of size; its value is left + right of its two halves,
 * where a half that holds no real leaf (lo >= L) is empty and the other half is
 * passed up unchanged. Floating-point addition is commutative, so combining two
 * siblings gives the same bits whoever holds which; what matters is that every
 * sum follows this one tree. A worker given leaves [a, b) returns one partial sum
 * per canonical node of that range (alignedNodes), which are exactly nodes of the
 * tree, so the coordinator can finish the tree bit-identically to a single process.
 */
export interface TreeNode {
  lo: number;
  size: number;
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Number of leaves of a batch. */
export function leafCount(batchSize: number, leafSize: number): number {
  return Math.ceil(batchSize / leafSize);
}

/**
 * Canonical decomposition of leaf range [a, b) of a tree with `leaves` real leaves
 * into maximal aligned nodes, in leaf order. A node may extend past the last real
 * leaf (its padded part is empty); it counts as inside [a, b) when its real part is.
 */
export function alignedNodes(a: number, b: number, leaves: number): TreeNode[] {
  if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && a < b && b <= leaves)) {
    throw new RangeError(`leaf range [${a}, ${b}) is not within [0, ${leaves})`);
  }
  const P = nextPow2(leaves);
  const out: TreeNode[] = [];
  let lo = a;
  while (lo < b) {
    let size = 1;
    // grow while the bigger aligned node starting at lo stays inside [a, b) (real part)
    while (size * 2 <= P && lo % (size * 2) === 0 && Math.min(lo + size * 2, leaves) <= b) size *= 2;
    out.push({ lo, size });
    lo += size;
  }
  return out;
}

const key = (lo: number, size: number) => `${lo}/${size}`;

function addPlain(n: number, dst: Float32Array, src: Float32Array): void {
  for (let i = 0; i < n; i++) dst[i] += src[i];
}

/**
 * Collects node sums (any partition of the leaves into tree nodes) and combines
 * siblings as soon as both are present, so results are reduced as they arrive.
 * Buffers passed to add() are owned by the reducer until result()/reset().
 */
export class TreeReducer {
  private readonly nodes = new Map<string, Float32Array>();
  readonly leaves: number;
  readonly P: number;
  private root: Float32Array | undefined;
  private readonly release: (buf: Float32Array) => void;
  private readonly addInto: (n: number, dst: Float32Array, src: Float32Array) => void;

  /**
   * `release` gets every buffer the reducer is done with; `add` sums a sibling into
   * another (default: a JS loop; pass a kernels' `add` — every implementation gives the
   * same bits, one float32 addition per element).
   */
  constructor(leaves: number, release: (buf: Float32Array) => void = () => {}, add: (n: number, dst: Float32Array, src: Float32Array) => void = addPlain) {
    if (!Number.isInteger(leaves) || leaves < 1) throw new RangeError(`leaves must be a positive integer, got ${leaves}`);
    this.leaves = leaves;
    this.P = nextPow2(leaves);
    this.release = release;
    this.addInto = add;
  }

  /** Whether node (lo, size) or any node overlapping it has been added. */
  has(lo: number, size: number): boolean {
    return this.nodes.has(key(lo, size));
  }

  /** Add the sum of node (lo, size). Returns false (and takes nothing) for a node already covered. */
  add(lo: number, size: number, sum: Float32Array): boolean {
    if (this.root) return false;
    if (!(size >= 1 && (size & (size - 1)) === 0 && lo % size === 0 && lo < this.leaves && size <= this.P)) {
      throw new RangeError(`(${lo}, ${size}) is not a node of a tree over ${this.leaves} leaves`);
    }
    if (this.covered(lo, size)) return false;
    let cur = sum;
    let s = size;
    let l = lo;
    for (;;) {
      if (s === this.P) {
        this.root = cur;
        return true;
      }
      const parentLo = l - (l % (2 * s));
      const sibLo = parentLo === l ? l + s : parentLo;
      if (sibLo >= this.leaves) {
        // empty sibling: pass up unchanged
        l = parentLo;
        s *= 2;
        continue;
      }
      const sib = this.nodes.get(key(sibLo, s));
      if (!sib) {
        this.nodes.set(key(l, s), cur);
        return true;
      }
      this.nodes.delete(key(sibLo, s));
      // left + right; IEEE addition is commutative so the order of operands does not matter
      if (sib.length !== cur.length) throw new RangeError(`node (${l}, ${s}) has ${cur.length} values, its sibling ${sib.length}`);
      this.addInto(cur.length, sib, cur);
      this.release(cur);
      cur = sib;
      l = parentLo;
      s *= 2;
    }
  }

  /** True when some stored node or an ancestor already covers (lo, size). */
  private covered(lo: number, size: number): boolean {
    for (let s = size, l = lo; s <= this.P; l -= l % (2 * s), s *= 2) {
      if (this.nodes.has(key(l, s))) return true;
    }
    // a descendant stored?
    for (const k of this.nodes.keys()) {
      const [l, s] = k.split('/').map(Number);
      if (l >= lo && l + s <= lo + size) return true;
    }
    return false;
  }

  get complete(): boolean {
    return this.root !== undefined;
  }

  /** The sum over all leaves; throws if incomplete. */
  result(): Float32Array {
    if (!this.root) throw new Error('reduction tree is incomplete');
    return this.root;
  }
}
