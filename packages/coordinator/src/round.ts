import { type NodeStats, type SamplerBatch, type TreeNode, TreeReducer, alignedNodes, firstNonFinite, leafCount } from '@dptrain/core';
import type { ResultMessage, TaskMessage } from '@dptrain/protocol';
import { type LeafRange, assignLeaves, nodeSamples, rangeForNode } from './assign.js';

/** A task as the machine hands it to the transport (the protocol `task` message without type/v). */
export type TaskInit = Omit<TaskMessage, 'type' | 'v'>;

/** A decoded `result` message without type/v (the fields the round needs). */
export type ResultInit = Omit<ResultMessage, 'type' | 'v'>;

/** How a result's gradient reached the round (both default to false: scan it, copy it). */
export interface ResultHandling {
  /** Every gradient value was already checked finite (protocol decode does): it is not scanned again. */
  checked?: boolean;
  /**
   * The gradient's memory is the round's from now on (a decoded frame nobody else holds):
   * it goes into the reduction tree as it is, which sums into it in place, instead of being
   * copied into a pooled buffer first.
   */
  owned?: boolean;
}

/** What happened to a result: taken into the tree, or dropped (state untouched). */
export type Verdict =
  | { status: 'accepted'; complete: boolean }
  | { status: 'stale' | 'duplicate' | 'unexpected'; reason: string }
  | { status: 'invalid'; reason: string; code: 'E_NONFINITE' | 'E_FIELD' };

interface NodeEntry {
  node: TreeNode;
  /**
   * Workers that owe this node: usually one; more while a late worker's node is also being
   * re-executed elsewhere (the first valid result wins). Empty while orphaned.
   */
  owners: Set<string>;
  /** The last worker that was given it. */
  lastOwner: string;
  received: boolean;
  /** Bad results (or worker errors) this node has been through. */
  failures: number;
  stats?: NodeStats;
}

const key = (lo: number, size: number) => `${lo}/${size}`;

/**
 * One synchronous step: the batch, which worker owes which tree node, and the
 * reduction of the node sums as they arrive. No I/O, no clocks.
 */
export class Round {
  readonly step: number;
  readonly version: number;
  readonly batch: SamplerBatch;
  readonly B: number;
  readonly L: number;
  readonly leafSize: number;
  private readonly paramCount: number;
  private readonly reducer: TreeReducer;
  private readonly entries = new Map<string, NodeEntry>();
  private readonly takeBuffer: () => Float32Array;
  private readonly releaseBuffer: (b: Float32Array) => void;
  private readonly scan: (n: number, x: Float32Array) => number;
  /** Compute time reported per worker in this round, ms. */
  readonly computeMs = new Map<string, number>();
  /** Samples computed per worker in this round. */
  readonly samplesBy = new Map<string, number>();
  /** Distinct workers that were given nodes this round. */
  readonly participants = new Set<string>();

  constructor(args: {
    step: number;
    version: number;
    batch: SamplerBatch;
    leafSize: number;
    paramCount: number;
    takeBuffer: () => Float32Array;
    releaseBuffer: (b: Float32Array) => void;
    /** Sums one node into its sibling (a kernels' add; default a JS loop: the same bits). */
    add?: (n: number, dst: Float32Array, src: Float32Array) => void;
    /** Finds the first non-finite value (a kernels' firstNonFinite; default core's JS scan). */
    scan?: (n: number, x: Float32Array) => number;
  }) {
    this.step = args.step;
    this.version = args.version;
    this.batch = args.batch;
    this.B = args.batch.indices.length;
    this.leafSize = args.leafSize;
    this.L = leafCount(this.B, args.leafSize);
    this.paramCount = args.paramCount;
    this.takeBuffer = args.takeBuffer;
    this.releaseBuffer = args.releaseBuffer;
    this.scan = args.scan ?? ((_n, x) => firstNonFinite(x));
    this.reducer = new TreeReducer(this.L, args.releaseBuffer, args.add);
  }

  /** Give contiguous leaf blocks to the workers (in order); returns the tasks per worker. */
  assign(workerIds: readonly string[], weights?: readonly number[]): Array<{ workerId: string; task: TaskInit }> {
    if (this.entries.size > 0) throw new Error(`step ${this.step} is already assigned`);
    return assignLeaves(workerIds.length, this.L, weights).map((r, i) => {
      const workerId = workerIds[i];
      this.participants.add(workerId);
      for (const node of alignedNodes(r.leafLo, r.leafHi, this.L)) {
        this.entries.set(key(node.lo, node.size), { node, owners: new Set([workerId]), lastOwner: workerId, received: false, failures: 0 });
      }
      return { workerId, task: this.task(r) };
    });
  }

  /** The task message for a leaf range of this step. */
  task(r: LeafRange): TaskInit {
    const ls = this.leafSize;
    return {
      step: this.step,
      version: this.version,
      epoch: this.batch.epoch,
      leafLo: r.leafLo,
      leafHi: r.leafHi,
      leafCount: this.L,
      batchSize: this.B,
      indices: this.batch.indices.slice(r.leafLo * ls, Math.min(r.leafHi * ls, this.B)),
    };
  }

  /** Nodes a worker still owes, in node order. */
  outstanding(workerId: string): TreeNode[] {
    return this.sorted().filter((e) => e.owners.has(workerId) && !e.received).map((e) => e.node);
  }

  /** Nodes nobody owes (their owner left), in node order, with the worker that had them. */
  orphans(): Array<{ node: TreeNode; from: string }> {
    return this.sorted()
      .filter((e) => e.owners.size === 0 && !e.received)
      .map((e) => ({ node: e.node, from: e.lastOwner }));
  }

  /** Workers that owe at least one node. */
  busyWorkers(): Set<string> {
    const s = new Set<string>();
    for (const e of this.entries.values()) if (!e.received) for (const o of e.owners) s.add(o);
    return s;
  }

  /** Whether `workerId` owes this node (and it has not been received). */
  owes(workerId: string, node: TreeNode): boolean {
    const e = this.entries.get(key(node.lo, node.size));
    return !!e && !e.received && e.owners.has(workerId);
  }

  /** Leaves a worker holds in this round (received or not). */
  leavesOf(workerId: string): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.owners.has(workerId)) n += Math.min(e.node.lo + e.node.size, this.L) - e.node.lo;
    return n;
  }

  /**
   * A worker no longer owes its outstanding nodes (it left). Returns those that are now
   * orphaned (nobody else is computing them), in node order.
   */
  release(workerId: string): TreeNode[] {
    const out: TreeNode[] = [];
    for (const n of this.outstanding(workerId)) {
      const e = this.entries.get(key(n.lo, n.size))!;
      e.owners.delete(workerId);
      if (e.owners.size === 0) out.push(n);
    }
    return out;
  }

  /**
   * A worker's result for a node it owed was bad (or it reported an error): it no longer
   * owes the node, whose failure count goes up. Returns the new count, and whether the
   * node is now orphaned; undefined if the worker did not owe that node.
   */
  fail(workerId: string, lo: number, size: number): { failures: number; orphaned: boolean } | undefined {
    const e = this.entries.get(key(lo, size));
    if (!e || e.received || !e.owners.has(workerId)) return undefined;
    e.owners.delete(workerId);
    e.failures++;
    return { failures: e.failures, orphaned: e.owners.size === 0 };
  }

  /** Give an orphaned node to a worker; returns the task that computes exactly that node. */
  reassign(node: TreeNode, workerId: string): TaskInit {
    const e = this.entries.get(key(node.lo, node.size));
    if (!e || e.received || e.owners.size !== 0) throw new Error(`node (${node.lo}, ${node.size}) of step ${this.step} is not orphaned`);
    return this.giveTo(e, workerId);
  }

  /**
   * Also give a node still owed by a late worker to `workerId` (re-execution): whichever
   * valid result comes first is taken, the other is dropped as a duplicate.
   */
  duplicate(node: TreeNode, workerId: string): TaskInit {
    const e = this.entries.get(key(node.lo, node.size));
    if (!e || e.received || e.owners.has(workerId)) throw new Error(`node (${node.lo}, ${node.size}) of step ${this.step} cannot be re-executed by ${workerId}`);
    return this.giveTo(e, workerId);
  }

  private giveTo(e: NodeEntry, workerId: string): TaskInit {
    e.owners.add(workerId);
    e.lastOwner = workerId;
    this.participants.add(workerId);
    return this.task(rangeForNode(e.node, this.L));
  }

  /**
   * Check a result against the bookkeeping and, if it is owed, validate it and add its
   * gradient to the tree. Anything dropped leaves the round untouched (and is never written).
   */
  /** Whether a result for node (lo, size) of `step` from `workerId` would be taken (the step, an owner, not yet received). */
  wants(workerId: string, step: number, lo: number, size: number): boolean {
    const e = this.entries.get(key(lo, size));
    return step === this.step && e !== undefined && !e.received && e.owners.has(workerId);
  }

  accept(workerId: string, r: ResultInit, how: ResultHandling = {}): Verdict {
    if (r.step !== this.step) return { status: 'stale', reason: `result for step ${r.step}, the current step is ${this.step}` };
    const e = this.entries.get(key(r.nodeLo, r.nodeSize));
    const what = `node (${r.nodeLo}, ${r.nodeSize}) of step ${this.step}`;
    if (e?.received) return { status: 'duplicate', reason: `${what} was already received` };
    if (!e || !e.owners.has(workerId)) return { status: 'unexpected', reason: `${what} is not assigned to ${workerId}` };
    const want = nodeSamples(e.node, this.L, this.leafSize, this.B);
    if (r.samples !== want) return { status: 'invalid', code: 'E_FIELD', reason: `${what} has ${want} samples, the result claims ${r.samples}` };
    if (!(r.correct >= 0 && r.correct <= r.samples)) return { status: 'invalid', code: 'E_FIELD', reason: `${what}: correct ${r.correct} is outside [0, ${r.samples}]` };
    if (!Number.isFinite(r.lossSum)) return { status: 'invalid', code: 'E_NONFINITE', reason: `${what}: lossSum is ${r.lossSum}` };
    if (r.grad.length !== this.paramCount) return { status: 'invalid', code: 'E_FIELD', reason: `${what}: gradient has ${r.grad.length} values, expected ${this.paramCount}` };
    // copied first (into the pool's buffers, where the kernels work), then scanned there
    let buf = r.grad;
    if (how.owned !== true) {
      buf = this.takeBuffer();
      buf.set(r.grad);
    }
    const bad = how.checked === true ? -1 : this.scan(buf.length, buf);
    if (bad >= 0) {
      if (buf !== r.grad) this.releaseBuffer(buf);
      return { status: 'invalid', code: 'E_NONFINITE', reason: `${what}: gradient element ${bad} is ${r.grad[bad]}` };
    }
    if (!this.reducer.add(e.node.lo, e.node.size, buf)) throw new Error(`${what} was already covered in the reduction tree`);
    e.received = true;
    e.stats = { samples: r.samples, lossSum: r.lossSum, correct: r.correct };
    this.computeMs.set(workerId, (this.computeMs.get(workerId) ?? 0) + r.computeMs);
    this.samplesBy.set(workerId, (this.samplesBy.get(workerId) ?? 0) + r.samples);
    return { status: 'accepted', complete: this.reducer.complete };
  }

  get complete(): boolean {
    return this.reducer.complete;
  }

  /** The gradient sum over the whole batch (owned by the caller's pool afterwards). */
  gradSum(): Float32Array {
    return this.reducer.result();
  }

  /** Samples, loss and correct summed along the same tree as LeafComputer (so the loss matches train()). */
  stats(): NodeStats {
    const sum = (lo: number, size: number): NodeStats => {
      const e = this.entries.get(key(lo, size));
      if (e) {
        if (!e.stats) throw new Error(`node (${lo}, ${size}) of step ${this.step} has not been received`);
        return e.stats;
      }
      if (size === 1) throw new Error(`leaf ${lo} of step ${this.step} is not covered by any node`);
      const half = size / 2;
      const left = sum(lo, half);
      if (lo + half >= this.L) return left;
      const right = sum(lo + half, half);
      return { samples: left.samples + right.samples, lossSum: left.lossSum + right.lossSum, correct: left.correct + right.correct };
    };
    return sum(0, this.reducer.P);
  }

  private sorted(): NodeEntry[] {
    return [...this.entries.values()].sort((a, b) => a.node.lo - b.node.lo);
  }
}
