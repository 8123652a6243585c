import { type Dataset, DptrainError, LeafComputer, alignedNodes, firstNonFinite, kernelsForModel, leafChunkRows, runSeeds, treeBuffers } from '@dptrain/core';
import { ProtocolError, ResultFrame, type ResultMessage, type TaskMessage, type WelcomeMessage } from '@dptrain/protocol';
import type { FaultInjector } from './test-fault.js';

/**
 * One node's result as TaskRunner.run yields it: the gradient as a view of the kernels'
 * memory, the encoded frame only when asked for. Everything here is valid only until the
 * runner computes its next node (the generator is resumed, or another run() starts):
 * send the result, through shared memory from `grad` or as `frame()`, before that.
 */
export interface NodeResult {
  /** The result's fields (what the frame's header says). */
  header: Omit<ResultMessage, 'type' | 'v' | 'grad'>;
  /**
   * The gradient, a view of the buffer the kernels summed the node in (no copy made):
   * read it before the next node is computed, which overwrites it. Throws E_STATE once
   * that has happened.
   */
  readonly grad: Float32Array;
  nodeLo: number;
  nodeSize: number;
  samples: number;
  computeMs: number;
  /**
   * The encoded result frame: the gradient copied into a pooled frame and the header
   * encoded, on the first call (later calls return the same bytes). The first call must
   * come before the next node is computed (E_STATE after); the bytes stay valid until
   * release(), after which frame() throws E_STATE.
   */
  frame(): Uint8Array;
  /** Give the frame's memory back for reuse once its send has completed (nothing to give if frame() was never called). */
  release(): void;
}

/**
 * The worker's compute state for one run: a LeafComputer built exactly as core's train()
 * builds it (same leaf size, dropout seed runSeeds(seed).dropout, kernel), the parameter
 * version it holds, and a small pool of result frames for the gradients that go on the
 * wire (those sent through shared memory are written from the kernels' memory instead).
 */
export class TaskRunner {
  readonly computer: LeafComputer;
  readonly paramCount: number;
  private held: number | undefined;
  private readonly pool: ResultFrame[] = [];
  /** Nodes computed so far: a NodeResult is valid while this still counts its own node. */
  private computed = 0;

  /**
   * `fault` is the test-only fault hook (see test-fault.ts); absent in real runs.
   */
  constructor(
    welcome: Pick<WelcomeMessage, 'model' | 'run' | 'paramCount'>,
    train: Dataset,
    private readonly fault?: FaultInjector,
  ) {
    // the batch size is not known before the first task: room for nodes of up to 128 leaves
    // in the kernels' memory (larger nodes still work, their deeper levels in plain arrays)
    const kernels = kernelsForModel(welcome.run.kernel, welcome.model, [leafChunkRows(welcome.run.leafSize)], treeBuffers(128, 1));
    this.computer = new LeafComputer(welcome.model, train, { leafSize: welcome.run.leafSize, seed: runSeeds(welcome.run.seed).dropout, kernels });
    this.paramCount = this.computer.paramCount;
    if (this.paramCount !== welcome.paramCount) {
      throw new DptrainError('E_WORKER', `the model has ${this.paramCount} parameters but the coordinator announced ${welcome.paramCount}`);
    }
  }

  /** The parameter version held, if any. */
  get version(): number | undefined {
    return this.held;
  }

  /**
   * Take parameter version `version`. The values are scanned for NaN/±Infinity here, in
   * the kernels' memory after the one copy made anyway (decode is told to leave that scan
   * to the receiver: `receiverScansParams`); a bad value throws E_NONFINITE, as decode
   * would, and leaves the worker holding no version.
   */
  setParams(version: number, data: Float32Array): void {
    this.setParamsWith(version, (dst) => {
      if (data.length !== dst.length) throw new ProtocolError('E_LENGTH', `params.data: expected ${dst.length} float32 values, got ${data.length}`, { field: 'params.data' });
      dst.set(data);
    });
  }

  /**
   * Take parameter version `version`, written by `fill` straight into the kernels' memory
   * (e.g. read from a shared-memory slot: no copy in between), then scanned as setParams
   * scans. If `fill` throws, the worker holds no version.
   */
  setParamsWith(version: number, fill: (dst: Float32Array) => void): void {
    this.held = undefined;
    const net = this.computer.net;
    fill(net.params);
    const bad = net.kernels.firstNonFinite(this.paramCount, net.params);
    if (bad >= 0) throw new ProtocolError('E_NONFINITE', `params.data[${bad}] is ${net.params[bad]}; payloads must be finite`, { field: `params.data[${bad}]` });
    this.held = version;
  }

  /**
   * Compute the canonical nodes of the task's leaf range, one result per node, in leaf
   * order. Throws E_STATE when the task needs a version this worker lacks, and
   * E_NONFINITE (a DptrainError naming the step, the node and the first bad value)
   * instead of yielding a node whose loss or gradient holds NaN or ±Infinity.
   *
   * Each result's gradient is a view of the kernels' memory, and its frame is made only on
   * demand, from that view: so a result must be sent (or its frame() taken) before the
   * generator is resumed, since computing the next node overwrites the view. The test
   * fault hook corrupts that view, before the non-finite check: whatever path the result
   * then takes, it carries the gradient that was checked.
   */
  *run(task: TaskMessage): Generator<NodeResult> {
    if (this.held !== task.version) {
      throw new DptrainError('E_STATE', `task for step ${task.step} needs parameter version ${task.version}, this worker holds ${this.held ?? 'none'}`);
    }
    const batch = { step: task.step, leafCount: task.leafCount, batchSize: task.batchSize, indices: task.indices, indexBase: task.leafLo };
    for (const node of alignedNodes(task.leafLo, task.leafHi, task.leafCount)) {
      const id = ++this.computed;
      const t0 = performance.now();
      const { stats: st, grad } = this.computer.computeNodeView(batch, node, { scan: true });
      const computed = performance.now() - t0;
      // test hook (slow:F): an F× slower host, the wait before the send and counted as compute
      const computeMs = computed + (this.fault?.slowDown(computed) ?? 0);
      // the view is the kernels' tree buffer, rewritten whole by the next node: corrupting it is safe
      const corrupted = this.fault?.corruptGradient(task.step, grad) ?? false;
      const bad = nonFinite(st.lossSum, grad, corrupted ? firstNonFinite(grad) : (st.firstNonFinite ?? firstNonFinite(grad)));
      if (bad !== undefined) throw new DptrainError('E_NONFINITE', `step ${task.step}, node (${node.lo}, ${node.size}): ${bad}`);
      const header = { step: task.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs };
      yield this.result(id, grad, header);
    }
  }

  /** The NodeResult of node number `id`, whose gradient is `view`. */
  private result(id: number, view: Float32Array, header: NodeResult['header']): NodeResult {
    const live = (what: string) => {
      if (this.computed !== id) throw new DptrainError('E_STATE', `${what} of node (${header.nodeLo}, ${header.nodeSize}) of step ${header.step} used after the next node was computed`);
    };
    let rf: ResultFrame | undefined;
    let frame: Uint8Array | undefined;
    let released = false;
    return {
      header,
      get grad() {
        live('the gradient view');
        return view;
      },
      nodeLo: header.nodeLo,
      nodeSize: header.nodeSize,
      samples: header.samples,
      computeMs: header.computeMs,
      frame: () => {
        if (released) throw new DptrainError('E_STATE', `result frame of node (${header.nodeLo}, ${header.nodeSize}) of step ${header.step} asked for after release()`);
        if (frame) return frame;
        live('the result frame');
        const into = this.pool.pop() ?? new ResultFrame(this.paramCount);
        into.grad.set(view);
        try {
          frame = into.finish(header);
        } catch (e) {
          if (this.pool.length < 4) this.pool.push(into);
          throw e;
        }
        rf = into;
        return frame;
      },
      release: () => {
        if (released) return;
        released = true;
        if (rf && this.pool.length < 4) this.pool.push(rf);
      },
    };
  }
}

/** What is not finite in a node's loss sum or gradient (`i`: its first non-finite index or -1; undefined if all is finite). */
function nonFinite(lossSum: number, grad: Float32Array, i: number): string | undefined {
  if (i >= 0) return `gradient[${i}] is ${grad[i]}`;
  if (!Number.isFinite(lossSum)) return `the loss sum is ${lossSum}`;
  return undefined;
}
