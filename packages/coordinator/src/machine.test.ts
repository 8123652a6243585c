import {
  type DatasetSplit,
  LeafComputer,
  type RunConfig,
  Rng,
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
import { describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import { type MachineOptions, type MachineOutput, type Refusal, RoundMachine } from './machine.js';
import type { ResultInit, TaskInit } from './round.js';

const data: DatasetSplit = splitDataset(blobs(250, { seed: 7, centers: 3 }), { testCount: 50 });
const FP = fingerprint(data.train);

const baseConfig = (over: Partial<RunConfig> = {}): RunConfig =>
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

function reference(c: RunConfig): { result: TrainResult; losses: number[] } {
  const losses: number[] = [];
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
  });
  return { result, losses };
}

type Sent = { kind: 'params'; to: string; version: number } | { kind: 'task'; to: string; task: TaskInit };

/** In-process fake workers driving a RoundMachine: commands are queued, results delivered in a chosen order. */
class Harness implements MachineOutput {
  readonly events: RunEventInit[] = [];
  readonly logs: string[] = [];
  readonly sent: Sent[] = [];
  readonly closed: Array<{ id: string; why: Refusal }> = [];
  readonly computers = new Map<string, LeafComputer>();
  readonly versions = new Map<string, { version: number; params: Float32Array }>();
  /** Results computed, not yet delivered. */
  pending: Array<{ from: string; r: ResultInit }> = [];
  finished = false;
  failed: Error | undefined;
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
      this.pending.push({ from: id, r: { step: task.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs: 1, grad } });
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
    expect(this.m.workerReady(id, FP, 0)).toBeUndefined();
    return id;
  }

  /** Deliver one pending result (index i); returns the verdict status. */
  deliver(i = 0): string {
    const [p] = this.pending.splice(i, 1);
    return this.m.resultReceived(p.from, p.r).status;
  }

  /** Deliver pending results in a seeded random order until the run ends (bounded). */
  run(rng?: Rng, hook?: (delivered: number) => void): void {
    for (let n = 0; n < 100_000 && !this.finished && !this.failed && this.pending.length > 0; n++) {
      const i = rng ? rng.nextInt(this.pending.length) : 0;
      expect(this.deliver(i)).toBe('accepted');
      hook?.(n + 1);
    }
    expect(this.failed).toBeUndefined();
    expect(this.finished).toBe(true);
  }

  tasks(): Array<{ to: string; task: TaskInit }> {
    return this.sent.filter((s): s is Extract<Sent, { kind: 'task' }> => s.kind === 'task');
  }
  kinds(kind: string): RunEventInit[] {
    return this.events.filter((e) => e.kind === kind);
  }
}

const same = (a: Float32Array, b: Float32Array) => expect(Array.from(a)).toEqual(Array.from(b));

describe('RoundMachine', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);

  it.each([1, 2, 3, 4])('matches core train() bit for bit with %i workers and results in any order', (W) => {
    const h = new Harness(cfg);
    for (let i = 0; i < W; i++) h.add();
    h.m.start();
    h.run(new Rng(100 + W));
    expect(h.failed).toBeUndefined();
    expect(h.finished).toBe(true);
    expect(h.m.step).toBe(ref.result.steps);
    expect(h.m.epochsDone).toBe(ref.result.epochs);
    same(h.m.params, ref.result.params);
    // the per-step losses follow the same tree as train()
    expect(h.kinds('step').map((e) => (e as { loss: number }).loss)).toEqual(ref.losses);
    expect(h.m.finalEval).toEqual(ref.result.test);
    // the final checkpoint is the same bytes as the one built from train()'s result
    const fromTrain = encodeFinalCheckpoint({
      config: cfg,
      params: ref.result.params,
      optimizer: ref.result.optimizer.state,
      step: ref.result.steps,
      epoch: ref.result.epochs,
      sampler: samplerStateAfter(cfg, data.train.n, ref.result.steps),
    });
    expect(Buffer.from(h.m.checkpointBytes()).equals(Buffer.from(fromTrain))).toBe(true);
    // every step used min(W, L) workers (the last batch of an epoch has 8 samples: 1 leaf)
    const ws = h.kinds('step').map((e) => (e as { workers: number }).workers);
    expect(ws).toEqual(ws.map((_, i) => ((i + 1) % 5 === 0 ? 1 : Math.min(W, 6))));
  });

  it('gives each worker a contiguous, aligned block of leaves and the params once per version', () => {
    const h = new Harness(cfg);
    const ids = [h.add(), h.add(), h.add(), h.add()];
    h.m.start();
    // first step: B = 48, L = 6 → [0,1) [1,3) [3,4) [4,6)
    const first = h.tasks().map((t) => [t.to, t.task.leafLo, t.task.leafHi]);
    expect(first).toEqual([[ids[0], 0, 1], [ids[1], 1, 3], [ids[2], 3, 4], [ids[3], 4, 6]]);
    expect(h.tasks()[1].task.indices.length).toBe(16);
    expect(h.sent.filter((s) => s.kind === 'params').map((s) => [s.to, (s as { version: number }).version])).toEqual(ids.map((id) => [id, 0]));
    // the results are the canonical nodes of each block; [4, 6) is node (4, 4) whose padded half is empty
    expect(h.pending.map((p) => [p.r.nodeLo, p.r.nodeSize])).toEqual([[0, 1], [1, 1], [2, 1], [3, 1], [4, 4]]);
  });

  it('drops stale, duplicate and unexpected results, counts them, and still matches train()', () => {
    const h = new Harness(cfg);
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    const first = h.pending[0];
    expect(h.deliver(0)).toBe('accepted');
    // duplicate of an accepted node
    expect(h.m.resultReceived(first.from, first.r).status).toBe('duplicate');
    // a node owned by the other worker
    const other = h.pending.find((p) => p.from === b)!;
    expect(h.m.resultReceived(a, other.r).status).toBe('unexpected');
    // a node for another step
    expect(h.m.resultReceived(b, { ...other.r, step: 5 }).status).toBe('stale');
    expect(h.m.staleDropped).toBe(1);
    expect(h.m.duplicatesDropped).toBe(2);
    // finish step 0, then replay an old result during step 1
    while (h.m.step === 0) expect(h.deliver(0)).toBe('accepted');
    expect(h.m.resultReceived(first.from, first.r).status).toBe('stale');
    expect(h.m.staleDropped).toBe(2);
    h.run(new Rng(5));
    same(h.m.params, ref.result.params);
  });

  it('refuses invalid results without touching state', () => {
    const h = new Harness(cfg);
    h.m.start();
    h.add();
    const p = h.pending[0];
    const bad = new Float32Array(p.r.grad);
    bad[3] = NaN;
    expect(h.m.resultReceived(p.from, { ...p.r, grad: bad }).status).toBe('invalid');
    expect(h.m.resultReceived(p.from, { ...p.r, samples: p.r.samples - 1 }).status).toBe('invalid');
    expect(h.m.invalidResults).toBe(2);
    h.run();
    same(h.m.params, ref.result.params);
  });

  it('reassigns the nodes of a worker that leaves mid-step, node by node, and still matches train()', () => {
    const h = new Harness(cfg);
    const [, b, c] = [h.add(), h.add(), h.add()];
    h.m.start();
    // step 0: L = 6 → a [0,2) b [2,4) c [4,6): b's node (2,2) is pending; drop b's results and make b leave
    h.pending = h.pending.filter((p) => p.from !== b);
    h.m.workerLeft(b, 'test');
    const re = h.kinds('reassigned');
    expect(re).toEqual([{ kind: 'reassigned', step: 0, from: b, to: expect.any(String), leaves: [2, 4] }]);
    const last = h.tasks().at(-1)!;
    expect([last.task.leafLo, last.task.leafHi, last.task.step]).toEqual([2, 4, 0]);
    // c dies in step 3 after delivering nothing; its nodes go round-robin to the live workers
    h.run(new Rng(9), () => {
      if (h.m.step === 3 && h.m.workerInfos().find((w) => w.workerId === c)?.state === 'busy') {
        h.pending = h.pending.filter((p) => p.from !== c);
        h.m.workerLeft(c, 'gone', true);
      }
    });
    expect(h.kinds('worker_dead')).toEqual([{ kind: 'worker_dead', workerId: c, reason: 'gone' }]);
    expect(h.finished).toBe(true);
    same(h.m.params, ref.result.params);
  });

  it('keeps the nodes of a step when every worker dies, and gives them to the next ready worker', () => {
    const h = new Harness(cfg);
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    expect(h.deliver(0)).toBe('accepted'); // a's node (0, 2); a still owes (2, 1), b owes (3, 1) and (4, 4)
    h.m.workerLeft(a, 'x', true); // (2, 1) goes to b
    h.m.workerLeft(b, 'y', true); // nobody left: three nodes wait
    h.pending = [];
    expect(h.logs.at(-1)).toBe('step 0: 3 node(s) wait for a worker (no live worker)');
    const c = h.add();
    expect(h.tasks().filter((t) => t.to === c).every((t) => t.task.step === 0)).toBe(true);
    h.run(new Rng(3));
    same(h.m.params, ref.result.params);
  });

  it('lets membership change only at step boundaries', () => {
    const h = new Harness(cfg);
    h.m.start();
    const a = h.add();
    h.deliver(0); // step 0 has one node for a: L = 6 → node (0, 8)
    expect(h.m.step).toBe(1);
    const before = h.tasks().length;
    const b = h.add(); // joins during step 1
    expect(h.tasks().length).toBe(before);
    h.deliver(0);
    expect(h.m.step).toBe(2);
    expect(h.tasks().slice(before).map((t) => [t.to, t.task.step, t.task.leafLo, t.task.leafHi])).toEqual([[a, 2, 0, 3], [b, 2, 3, 6]]);
    // a worker that leaves with nothing outstanding causes no reassignment and is not used again
    while (h.pending.some((p) => p.from === b)) expect(h.deliver(h.pending.findIndex((p) => p.from === b))).toBe('accepted');
    h.m.workerLeft(b, 'bye');
    expect(h.kinds('reassigned')).toEqual([]);
    h.run(new Rng(1));
    expect(h.tasks().filter((t) => t.to === b && t.task.step > 2)).toEqual([]);
    same(h.m.params, ref.result.params);
  });

  it('waits for minWorkers and says so', () => {
    const h = new Harness(cfg, { minWorkers: 2 });
    h.m.start();
    h.add();
    expect(h.tasks()).toEqual([]);
    expect(h.m.state).toBe('waiting');
    expect(h.logs.at(-1)).toBe('waiting for 1 more worker(s): 1 ready, minWorkers 2');
    h.add();
    expect(h.tasks().length).toBe(2);
    h.run(new Rng(2));
    same(h.m.params, ref.result.params);
  });

  it('refuses a worker beyond the leaves of a full batch, and a worker with other data', () => {
    const h = new Harness(baseConfig({ batchSize: 16, leafSize: 8, steps: 2 }));
    h.m.start();
    h.add();
    h.add();
    const j = h.m.workerJoined('extra', { workerName: 'extra', host: 'h', pid: 2, kernels: ['js'] }, 0);
    expect(j).toEqual({ refused: { code: 'E_STATE', closeCode: 4005, message: 'batch of 16 samples has only 2 leaves of leafSize 8; 2 workers already assigned' } });
    const h2 = new Harness(cfg);
    h2.m.start();
    h2.m.workerJoined('w', { workerName: 'w', host: 'h', pid: 2, kernels: ['js'] }, 0);
    const bad = 'ab'.repeat(32);
    const r = h2.m.workerReady('w', bad, 0);
    expect(r?.code).toBe('E_DATA_MISMATCH');
    expect(r?.closeCode).toBe(4002);
    expect(r?.message).toContain(bad);
    expect(r?.message).toContain(FP);
    expect(r?.message).toContain('blobs:250');
    expect(h2.m.workerInfos()[0].state).toBe('left');
  });

  it('declares a silent worker dead on tick and reassigns its nodes', () => {
    const h = new Harness(cfg, { deadAfterMs: 1000 });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    h.pending = h.pending.filter((p) => p.from !== b);
    h.m.touch(a, 900);
    h.m.tick(1500);
    expect(h.closed.map((c) => [c.id, c.why.code])).toEqual([[b, 'E_TIMEOUT']]);
    expect(h.kinds('worker_dead').map((e) => (e as { workerId: string }).workerId)).toEqual([b]);
    expect(h.tasks().at(-1)!.to).toBe(a);
    h.run(new Rng(4));
    same(h.m.params, ref.result.params);
  });

  it('flags a straggler once per step and drops a worker stuck loading its data', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stragglerMinMs: 100, loadTimeoutMs: 5000 });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    now = 10;
    expect(h.deliver(h.pending.findIndex((p) => p.from === a))).toBe('accepted');
    while (h.pending.some((p) => p.from === a)) h.deliver(h.pending.findIndex((p) => p.from === a));
    h.m.tick(0);
    expect(h.kinds('straggler')).toEqual([]); // 10 ms < max(3 × 10, 100)
    now = 200;
    h.m.tick(0);
    h.m.tick(0);
    expect(h.kinds('straggler')).toEqual([{ kind: 'straggler', workerId: b, step: 0, computeMs: 200, medianMs: 10 }]);
    // a worker that joined but never became ready is dropped after loadTimeoutMs
    h.m.workerJoined('slow', { workerName: 'slow', host: 'h', pid: 3, kernels: [] }, 0);
    h.m.touch(a, 6000);
    h.m.touch(b, 6000);
    h.m.tick(6000);
    expect(h.closed.map((c) => c.id)).toEqual(['slow']);
    expect(h.closed[0].why.message).toMatch(/while loading data/);
    h.run(new Rng(8));
    same(h.m.params, ref.result.params);
  });

  it('reports step phases and evaluates every evalEvery steps and at epoch ends', () => {
    let t = 0;
    const h = new Harness(cfg, { clock: () => (t += 1) });
    h.m.start();
    h.add();
    h.add();
    h.run();
    const steps = h.kinds('step') as Array<Extract<RunEventInit, { kind: 'step' }>>;
    expect(steps.length).toBe(10);
    for (const s of steps) {
      for (const v of Object.values(s.phases)) expect(v).toBeGreaterThanOrEqual(0);
      expect(s.phases.totalMs).toBeGreaterThan(s.phases.updateMs);
      expect(s.phases.computeMs).toBe(s.workers === 1 ? 1 : 2); // max over workers of their summed node computeMs
    }
    // evalEvery 3 → steps 3, 6, 9; epoch ends → 5, 10
    expect(h.kinds('eval').map((e) => (e as { step: number }).step)).toEqual([3, 5, 6, 9, 10]);
  });

  it('computes the sampler state after n steps like a replayed sampler', () => {
    for (const steps of [0, 1, 4, 5, 6, 10, 11]) {
      const h = new Harness(baseConfig({ steps: Math.max(steps, 1) }));
      for (let i = 0; i < steps; i++) h.m.sampler.next();
      expect(samplerStateAfter(cfg, data.train.n, steps)).toEqual(h.m.sampler.state());
    }
  });
});
