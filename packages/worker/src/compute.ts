import { type Dataset, DptrainError, LeafComputer, alignedNodes, firstNonFinite, kernelsForModel, runSeeds, treeBuffers } from '@dptrain/core';
import { ProtocolError, ResultFrame, type ResultMessage, type TaskMessage, type WelcomeMessage } from '@dptrain/protocol';
import type { FaultInjector } from './test-fault.js';

/** One encoded result frame, with what it reports (for logs and summaries). */
export interface NodeResult {
  frame: Uint8Array;
  /** The result's fields (what the frame's header says). */
  header: Omit<ResultMessage, 'type' | 'v' | 'grad'>;
  /** The gradient (the frame's payload, a view: valid until release()). */
  grad: Float32Array;
  nodeLo: number;
  nodeSize: number;
  samples: number;
  computeMs: number;
  /** Give the frame's memory back for reuse once the send has completed. */
  release(): void;
}

/**
 * The worker's compute state for one run: a LeafComputer built exactly as core's train()
 * builds it (same leaf size, dropout seed runSeeds(seed).dropout, kernel), the parameter
 * version it holds, and a pool of result frames so each gradient is written straight
 * into the bytes that go on the wire.
 */
export class TaskRunner {
  readonly computer: LeafComputer;
  readonly paramCount: number;
  private held: number | undefined;
  private readonly pool: ResultFrame[] = [];

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
    const kernels = kernelsForModel(welcome.run.kernel, welcome.model, [welcome.run.leafSize], treeBuffers(128, 1));
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
   * Compute the canonical nodes of the task's leaf range, one encoded result frame per
   * node, in leaf order. Throws E_STATE when the task needs a version this worker lacks,
   * and E_NONFINITE (a DptrainError naming the step, the node and the first bad value)
   * instead of yielding a node whose loss or gradient holds NaN or ±Infinity.
   */
  *run(task: TaskMessage): Generator<NodeResult> {
    if (this.held !== task.version) {
      throw new DptrainError('E_STATE', `task for step ${task.step} needs parameter version ${task.version}, this worker holds ${this.held ?? 'none'}`);
    }
    const batch = { step: task.step, leafCount: task.leafCount, batchSize: task.batchSize, indices: task.indices, indexBase: task.leafLo };
    for (const node of alignedNodes(task.leafLo, task.leafHi, task.leafCount)) {
      const rf = this.pool.pop() ?? new ResultFrame(this.paramCount);
      const t0 = performance.now();
      const st = this.computer.computeNode(batch, node, rf.grad, { scan: true });
      const computeMs = performance.now() - t0;
      const corrupted = this.fault?.corruptGradient(task.step, rf.grad) ?? false;
      const bad = nonFinite(st.lossSum, rf.grad, corrupted ? firstNonFinite(rf.grad) : (st.firstNonFinite ?? firstNonFinite(rf.grad)));
      if (bad !== undefined) {
        if (this.pool.length < 4) this.pool.push(rf);
        throw new DptrainError('E_NONFINITE', `step ${task.step}, node (${node.lo}, ${node.size}): ${bad}`);
      }
      const header = { step: task.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs };
      const frame = rf.finish(header);
      let released = false;
      const release = () => {
        if (!released && this.pool.length < 4) this.pool.push(rf);
        released = true;
      };
      yield { frame, header, grad: rf.grad, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, computeMs, release };
    }
  }
}

/** What is not finite in a node's loss sum or gradient (`i`: its first non-finite index or -1; undefined if all is finite). */
function nonFinite(lossSum: number, grad: Float32Array, i: number): string | undefined {
  if (i >= 0) return `gradient[${i}] is ${grad[i]}`;
  if (!Number.isFinite(lossSum)) return `the loss sum is ${lossSum}`;
  return undefined;
}
