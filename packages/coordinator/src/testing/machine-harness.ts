import {
  type DatasetSplit,
  LeafComputer,
  type RunConfig,
  type TrainResult,
  alignedNodes,
  blobs,
  fingerprint,
  getKernels,
  runSeeds,
  splitDataset,
  train,
  validateRunConfig,
} from '@dptrain/core';
import type { RunEventInit } from '@dptrain/protocol';
import type { Rng } from '@dptrain/core';
import { type MachineOptions, type MachineOutput, type Refusal, RoundMachine } from '../machine/machine.js';
import type { ResultHandling, ResultInit, TaskInit } from '../round.js';

/*
 * A RoundMachine driven by in-process fake workers, for the machine tests. Not part of the
 * package API.
 */

/** The training/test data of the machine tests (blobs, 200 train / 50 test). */
export const data: DatasetSplit = splitDataset(blobs(250, { seed: 7, centers: 3 }), { testCount: 50 });
export const FP = fingerprint(data.train);

/** A small run config: 2-8-3 tanh (dropout) net, batches of 48, leaves of 8, 2 epochs of 5 steps, eval every 3. */
export const baseConfig = (over: Partial<RunConfig> = {}): RunConfig =>
  validateRunConfig({
    model: { inputSize: 2, layers: [{ units: 8, activation: 'tanh', dropout: 0.2 }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
    data: 'blobs:250',
    optimizer: { name: 'momentum', lr: 0.1 },
    batchSize: 48,
    leafSize: 8,
    epochs: 2,
    seed: 11,
    shuffle: true,
    evalEvery: 3,
    ...over,
  });

/** core's train() on the same config: the result and the per-step losses. */
export function reference(c: RunConfig): { result: TrainResult; losses: number[]; evals: Map<number, { loss: number; accuracy: number }> } {
  const losses: number[] = [];
  const evals = new Map<number, { loss: number; accuracy: number }>();
  const result = train({
    spec: c.model,
    data,
    optimizer: c.optimizer,
    batchSize: c.batchSize,
    leafSize: c.leafSize,
    epochs: c.epochs,
    steps: c.steps,
    seed: c.seed,
    shuffle: c.shuffle,
    kernel: c.kernel,
    evalEvery: c.evalEvery,
    onStep: (s) => losses.push(s.loss),
    onEval: (step, r) => evals.set(step, { loss: r.loss, accuracy: r.accuracy }),
  });
  return { result, losses, evals };
}

export type Sent = { kind: 'params'; to: string; version: number } | { kind: 'task'; to: string; task: TaskInit };

/** In-process fake workers driving a RoundMachine: commands are queued, results delivered in a chosen order. */
export class Harness implements MachineOutput {
  readonly events: RunEventInit[] = [];
  readonly logs: string[] = [];
  readonly sent: Sent[] = [];
  readonly closed: Array<{ id: string; why: Refusal }> = [];
  readonly computers = new Map<string, LeafComputer>();
  readonly versions = new Map<string, { version: number; params: Float32Array }>();
  /** Per fake worker: the compute time it reports per sample, ms (absent: 1 ms per node). */
  readonly msPerSample = new Map<string, number>();
  /** Results computed, not yet delivered. */
  pending: Array<{ from: string; r: ResultInit }> = [];
  finished = false;
  failed: Error | undefined;
  /** How results are handed to the machine (each result's grad is a fresh array, so `owned` is safe). */
  handling: ResultHandling | undefined;
  m: RoundMachine;
  private nextId = 0;

  constructor(readonly config: RunConfig, opts: Partial<MachineOptions> = {}) {
    this.m = new RoundMachine({ config, data, fingerprint: FP, runId: 'r1', output: this, clock: () => 0, ...opts });
  }

  sendParams(ids: readonly string[], version: number, params: Float32Array): void {
    for (const id of ids) {
      this.versions.set(id, { version, params: Float32Array.from(params) });
      this.sent.push({ kind: 'params', to: id, version });
    }
  }
  sendTask(id: string, task: TaskInit): void {
    this.sent.push({ kind: 'task', to: id, task });
    const held = this.versions.get(id);
    if (!held || held.version !== task.version) throw new Error(`${id} got a task for version ${task.version} without those params`);
    const comp = this.computers.get(id)!;
    comp.setParams(held.params);
    for (const node of alignedNodes(task.leafLo, task.leafHi, task.leafCount)) {
      const grad = new Float32Array(comp.paramCount);
      const batch = { step: task.step, leafCount: task.leafCount, batchSize: task.batchSize, indices: task.indices, indexBase: task.leafLo };
      const st = comp.computeNode(batch, node, grad);
      this.pending.push({ from: id, r: { step: task.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs: this.msPerSample.has(id) ? st.samples * this.msPerSample.get(id)! : 1, grad } });
    }
  }
  closeWorker(id: string, why: Refusal): void {
    this.closed.push({ id, why });
  }
  event(e: RunEventInit): void {
    this.events.push(e);
  }
  log(line: string): void {
    this.logs.push(line);
  }
  runFinished(): void {
    this.finished = true;
  }
  runFailed(err: Error): void {
    this.failed = err;
  }

  /** Join and ready a new fake worker; returns its id. */
  add(): string {
    const id = `w${this.nextId++}`;
    const j = this.m.workerJoined(id, { workerName: id, host: 'test', pid: 1, kernels: ['js'] }, 0);
    if ('refused' in j) throw new Error(j.refused.message);
    this.computers.set(id, new LeafComputer(this.config.model, data.train, { leafSize: this.config.leafSize, seed: runSeeds(this.config.seed).dropout, kernels: getKernels('js') }));
    const refused = this.m.workerReady(id, FP, 0);
    if (refused) throw new Error(`ready refused: ${refused.message}`);
    return id;
  }

  /** Deliver one pending result (index i); returns the verdict status. */
  deliver(i = 0): string {
    const [p] = this.pending.splice(i, 1);
    return this.m.resultReceived(p.from, p.r, undefined, this.handling).status;
  }

  /** Deliver pending results in a seeded random order until the run ends (bounded). */
  run(rng?: Rng, hook?: (delivered: number) => void): void {
    for (let n = 0; n < 100_000 && !this.finished && !this.failed && this.pending.length > 0; n++) {
      const i = rng ? rng.nextInt(this.pending.length) : 0;
      const v = this.deliver(i);
      if (v !== 'accepted') throw new Error(`result ${n} was ${v}, expected accepted`);
      hook?.(n + 1);
    }
    if (this.failed) throw this.failed;
    if (!this.finished) throw new Error('the run did not finish');
  }

  tasks(): Array<{ to: string; task: TaskInit }> {
    return this.sent.filter((s): s is Extract<Sent, { kind: 'task' }> => s.kind === 'task');
  }
  kinds(kind: string): RunEventInit[] {
    return this.events.filter((e) => e.kind === kind);
  }
}

