import { DptrainError, Rng } from '@dptrain/core';
import type { RunEventInit } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import { StepDeadline } from './deadline.js';
import { resumeStateFrom } from './resume.js';
import { FP, Harness, baseConfig, data, reference } from './testing/machine-harness.js';

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

  it('sends a step\'s tasks to the worker that finished the previous step last first; the weights do not change', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now });
    const a = h.add();
    const b = h.add();
    h.m.start();
    const firstTo = (step: number) => h.tasks().find((t) => t.task.step === step)!.to;
    expect(firstTo(0)).toBe(a); // no finish times yet: assignment order
    // each step: deliver the pending results one by one, a later clock each; choose who finishes last
    const finishLast = (who: string) => {
      const order = [...h.pending.keys()].sort((i, j) => Number(h.pending[i].from === who) - Number(h.pending[j].from === who));
      const froms = order.map((i) => h.pending[i].from);
      for (const from of froms) {
        now += 1;
        const i = h.pending.findIndex((p) => p.from === from);
        expect(h.deliver(i)).toBe('accepted');
      }
    };
    finishLast(b);
    expect(firstTo(1)).toBe(b);
    finishLast(a);
    expect(firstTo(2)).toBe(a);
    finishLast(a);
    expect(firstTo(3)).toBe(a);
    // (step 4 is an epoch's last batch: one leaf, one task)
    h.run(new Rng(9));
    same(h.m.params, ref.result.params);
  });

  it('keeps the optimizer state in the reduction kernels\' memory next to the params (its WebAssembly step works in place); adam matches train() bit for bit', () => {
    const adam = baseConfig({ optimizer: { name: 'adam', lr: 0.01 } });
    const h = new Harness(adam);
    h.add();
    h.add();
    const slots = Object.values(h.m.optState.slots);
    expect(slots).toHaveLength(2);
    for (const a of slots) expect(a.buffer).toBe(h.m.params.buffer);
    h.m.start();
    h.run(new Rng(4));
    const want = reference(adam).result;
    same(h.m.params, want.params);
    same(h.m.optState.slots.m, want.optimizer.state.slots.m);
    same(h.m.optState.slots.v, want.optimizer.state.slots.v);
  });

  it("evaluates a step's params while the next step runs: its tasks go out before the eval event; the last step's eval is the final one", () => {
    const h = new Harness(cfg);
    const order: string[] = [];
    const sendTask = h.sendTask.bind(h);
    const event = h.event.bind(h);
    h.sendTask = (id, task) => {
      order.push(`task ${task.step}`);
      sendTask(id, task);
    };
    h.event = (e) => {
      if (e.kind === 'step' || e.kind === 'eval') order.push(`${e.kind} ${e.step}`);
      event(e);
    };
    h.add();
    h.add();
    h.m.start();
    h.run(new Rng(3));
    expect(h.finished).toBe(true);
    same(h.m.params, ref.result.params);
    const evals = h.kinds('eval') as Array<{ step: number; loss: number; accuracy: number }>;
    const last = ref.result.steps;
    // evalEvery 3 and every epoch end (5 steps an epoch), each once
    expect(evals.map((e) => e.step)).toEqual([...new Set([3, 5, 6, 9, 10, 12].filter((s) => s <= last).concat(last))].sort((a, b) => a - b));
    for (const e of evals) {
      if (e.step === last) continue;
      // step e.step (1-based) is followed by the tasks of round e.step (0-based), sent before its eval
      expect(order.indexOf(`task ${e.step}`)).toBeGreaterThan(order.indexOf(`step ${e.step}`));
      expect(order.indexOf(`task ${e.step}`)).toBeLessThan(order.indexOf(`eval ${e.step}`));
      // evaluated on the params of its own step: what train() evaluates at that step
      const want = ref.evals.get(e.step);
      if (want) expect({ loss: e.loss, accuracy: e.accuracy }).toEqual(want);
    }
    expect([...ref.evals.keys()].filter((s) => s < last).every((s) => evals.some((e) => e.step === s))).toBe(true);
    // the last step: one eval event, the final evaluation's figures
    expect(evals.filter((e) => e.step === last)).toHaveLength(1);
    expect(evals.at(-1)).toMatchObject({ step: last, loss: h.m.finalEval!.loss, accuracy: h.m.finalEval!.accuracy });
  });

  it.each(['speed', 'even'] as const)('balance %s: a worker 3× faster gets more leaves (speed) or the same (even); the weights do not change', (balance) => {
    const h = new Harness(cfg, { balance });
    const fast = h.add();
    const slow = h.add();
    h.msPerSample.set(fast, 1);
    h.msPerSample.set(slow, 3);
    h.m.start();
    h.run(new Rng(7));
    expect(h.finished).toBe(true);
    same(h.m.params, ref.result.params);
    // full batches have 6 leaves: even 3 + 3; by speed (3:1) round(6·3/4) = 5 + 1 (predicted 5/3 against 3 for 3 + 3), from the second step on
    const full = h.tasks().filter((t) => t.task.leafCount === 6);
    const leaves = (id: string, step: number) => full.filter((t) => t.to === id && t.task.step === step).reduce((a, t) => a + t.task.leafHi - t.task.leafLo, 0);
    expect([leaves(fast, 0), leaves(slow, 0)]).toEqual([3, 3]);
    const later = [...new Set(full.map((t) => t.task.step))].filter((s) => s > 0);
    expect(later.length).toBeGreaterThan(3);
    for (const step of later) expect([leaves(fast, step), leaves(slow, step)]).toEqual(balance === 'speed' ? [5, 1] : [3, 3]);
  });

  it('refuses an unknown balance', () => {
    expect(() => new Harness(cfg, { balance: 'fair' as 'even' })).toThrow(/balance: expected "speed" or "even", got "fair"/);
  });

  it.each([1, 3])('sums owned results in place (no reduction buffer at all) and pools copied ones, bit-identically (%i workers)', (W) => {
    // an even split: the same nodes every step (a split that follows speeds may need more buffers when it changes)
    const owned = new Harness(cfg, { balance: 'even' });
    owned.handling = { owned: true, checked: true };
    const copied = new Harness(cfg, { balance: 'even' });
    for (const h of [owned, copied]) {
      for (let i = 0; i < W; i++) h.add();
      h.m.start();
    }
    let firstStepBuffers = -1;
    copied.run(new Rng(3), () => {
      if (copied.m.step === 1 && firstStepBuffers < 0) firstStepBuffers = copied.m.buffersAllocated;
    });
    owned.run(new Rng(3));
    same(owned.m.params, ref.result.params);
    same(copied.m.params, ref.result.params);
    expect(owned.m.buffersAllocated).toBe(0);
    // copies go into pooled buffers: after the first step no further allocation, whatever the order
    expect(firstStepBuffers).toBeGreaterThan(0);
    expect(copied.m.buffersAllocated).toBe(firstStepBuffers);
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
    const h = new Harness(cfg, { nonFinitePolicy: 'skip' });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    const first = h.pending[0];
    expect(h.deliver(0)).toBe('accepted');
    // duplicate of an accepted node
    expect(h.m.resultReceived(first.from, first.r).status).toBe('duplicate');
    // a node owned by the other worker
    const other = h.pending.find((p) => p.from === b)!;
    expect(h.m.resultReceived(a, other.r).status).toBe('unexpected');
    // a result for a step never assigned is a bad result (skip: dropped, counted, nothing to recompute)
    expect(h.m.resultReceived(b, { ...other.r, step: 5 }).status).toBe('invalid');
    expect(h.m.badResults).toBe(1);
    expect(h.kinds('reassigned')).toEqual([]);
    expect(h.m.staleDropped).toBe(0);
    expect(h.m.duplicatesDropped).toBe(2);
    // finish step 0, then replay an old result during step 1
    while (h.m.step === 0) expect(h.deliver(0)).toBe('accepted');
    expect(h.m.resultReceived(first.from, first.r).status).toBe('stale');
    expect(h.m.staleDropped).toBe(1);
    h.run(new Rng(5));
    same(h.m.params, ref.result.params);
  });

  it('refuses invalid results without touching state (skip: recomputed on the only worker)', () => {
    const h = new Harness(cfg, { nonFinitePolicy: 'skip' });
    h.m.start();
    const a = h.add();
    const [p] = h.pending.splice(0, 1);
    const bad = new Float32Array(p.r.grad);
    bad[3] = NaN;
    expect(h.m.resultReceived(p.from, { ...p.r, grad: bad }).status).toBe('invalid');
    // the node went back to the same worker (the only one); its new result is pending
    expect(h.kinds('reassigned')).toEqual([{ kind: 'reassigned', step: 0, from: a, to: a, leaves: [0, 6] }]);
    const [q] = h.pending.splice(0, 1);
    expect(h.m.resultReceived(q.from, { ...q.r, samples: q.r.samples - 1 }).status).toBe('invalid');
    expect(h.m.invalidResults).toBe(2);
    expect(h.m.badResults).toBe(2);
    expect(h.m.step).toBe(0);
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
    // an even split, so that each worker's part is the same two nodes every step
    const h = new Harness(cfg, { clock: () => (t += 1), balance: 'even' });
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

    // periodicEvaluation false: one evaluation, after the last step, and the same weights
    const quiet = new Harness(cfg, { clock: () => (t += 1), balance: 'even', periodicEvaluation: false });
    quiet.m.start();
    quiet.add();
    quiet.add();
    quiet.run();
    expect(quiet.kinds('step')).toHaveLength(10);
    expect(quiet.kinds('eval').map((e) => (e as { step: number }).step)).toEqual([10]);
    expect(quiet.m.finalEval?.accuracy).toBe(h.m.finalEval?.accuracy);
    same(quiet.m.params, h.m.params);
    expect(() => new Harness(cfg, { periodicEvaluation: 'no' as never })).toThrow(/periodicEvaluation: expected true or false, got "no"/);
  });

  it('computes the sampler state after n steps like a replayed sampler', () => {
    for (const steps of [0, 1, 4, 5, 6, 10, 11]) {
      const h = new Harness(baseConfig({ steps: Math.max(steps, 1) }));
      for (let i = 0; i < steps; i++) h.m.sampler.next();
      expect(samplerStateAfter(cfg, data.train.n, steps)).toEqual(h.m.sampler.state());
    }
  });
});

describe('RoundMachine: bad results (nonFinitePolicy)', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);
  const nan = (g: Float32Array, i = 3) => {
    const b = Float32Array.from(g);
    b[i] = NaN;
    return b;
  };

  it('stop (default): a NaN gradient fails the run naming the worker and the step; nothing is applied', () => {
    const h = new Harness(cfg);
    const [, b] = [h.add(), h.add()];
    h.m.start();
    while (h.m.step < 2) expect(h.deliver(0)).toBe('accepted');
    const before = Float32Array.from(h.m.params);
    const ckBefore = h.m.checkpointBytes();
    const i = h.pending.findIndex((p) => p.from === b);
    const [p] = h.pending.splice(i, 1);
    expect(h.m.resultReceived(b, { ...p.r, grad: nan(p.r.grad) }).status).toBe('invalid');
    expect(h.failed).toBeInstanceOf(DptrainError);
    expect((h.failed as DptrainError).code).toBe('E_NONFINITE');
    expect(h.failed!.message).toMatch(new RegExp(`^worker ${b} at step 2: node \\(\\d+, \\d+\\) of step 2: gradient element 3 is NaN$`));
    expect(h.m.state).toBe('failed');
    same(h.m.params, before);
    // the checkpoint is the state after step 2 (the batch of step 2 is not counted as drawn)
    expect(Buffer.from(h.m.checkpointBytes()).equals(Buffer.from(ckBefore))).toBe(true);
    expect(resumeStateFrom(h.m.checkpointBytes(), cfg, data.train.n).step).toBe(2);
    expect(h.kinds('error')).toEqual([{ kind: 'error', code: 'E_NONFINITE', message: h.failed!.message }]);
    // later results are dropped
    expect(h.deliver(0)).toBe('stale');
  });

  it('stop: an error report or a result for a step never assigned fails the run with E_WORKER', () => {
    const h = new Harness(cfg);
    const a = h.add();
    h.m.start();
    h.deliver(0);
    h.m.workerError(a, 'E_COMPUTE', 'out of memory');
    expect((h.failed as DptrainError).code).toBe('E_WORKER');
    expect(h.failed!.message).toBe(`worker ${a} at step 1: reported E_COMPUTE: out of memory`);

    const h2 = new Harness(cfg);
    const c = h2.add();
    h2.m.start();
    const [p] = h2.pending;
    expect(h2.m.resultReceived(c, { ...p.r, step: 4 }).status).toBe('invalid');
    expect((h2.failed as DptrainError).code).toBe('E_WORKER');
    expect(h2.failed!.message).toBe(`worker ${c} at step 0: result for step 4, which was never assigned (step 0 is in progress)`);
  });

  it('skip: a bad result is dropped, counted and its node recomputed on another worker; the run still matches train()', () => {
    const h = new Harness(cfg, { nonFinitePolicy: 'skip' });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    const rng = new Rng(77);
    let poisoned = 0;
    const done = new Set<number>();
    h.run(rng, () => {
      // in steps 2, 3 and 7, one of b's results is replaced by a bad one (NaN gradient / infinite loss / wrong sample count)
      if ([2, 3, 7].includes(h.m.step) && !done.has(h.m.step)) {
        const i = h.pending.findIndex((p) => p.from === b);
        if (i < 0) return;
        done.add(h.m.step);
        const [p] = h.pending.splice(i, 1);
        const bad = [{ ...p.r, grad: nan(p.r.grad, 0) }, { ...p.r, lossSum: Infinity }, { ...p.r, samples: p.r.samples + 1 }][poisoned % 3];
        expect(h.m.resultReceived(b, bad).status).toBe('invalid');
        poisoned++;
      }
    });
    expect(poisoned).toBe(3);
    expect(h.m.badResults).toBe(3);
    expect(h.m.invalidResults).toBe(3);
    const re = h.kinds('reassigned') as Array<{ from: string; to: string; step: number }>;
    expect(re.map((e) => [e.from, e.to])).toEqual([[b, a], [b, a], [b, a]]);
    expect(h.kinds('error').map((e) => (e as { code: string }).code)).toEqual(['E_NONFINITE', 'E_NONFINITE', 'E_WORKER']);
    same(h.m.params, ref.result.params);
  });

  it('skip: an error report moves all of the worker\'s nodes elsewhere', () => {
    const h = new Harness(cfg, { nonFinitePolicy: 'skip' });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    h.pending = h.pending.filter((p) => p.from !== b);
    h.m.workerError(b, 'E_WORKER', 'kernel crashed');
    expect(h.kinds('reassigned').map((e) => (e as { to: string }).to)).toEqual([a, a]); // b had (3, 1) and (4, 4)
    h.run(new Rng(6));
    same(h.m.params, ref.result.params);
  });

  it('skip: with a single worker the node is retried on it, at most maxRetries times', () => {
    const h = new Harness(cfg, { nonFinitePolicy: 'skip', maxRetries: 2 });
    const a = h.add();
    h.m.start();
    for (let k = 0; k < 3; k++) {
      const [p] = h.pending.splice(0, 1);
      expect(h.m.resultReceived(a, { ...p.r, grad: nan(p.r.grad) }).status).toBe('invalid');
    }
    expect(h.kinds('reassigned').map((e) => (e as { to: string }).to)).toEqual([a, a]);
    expect((h.failed as DptrainError).code).toBe('E_NONFINITE');
    expect(h.failed!.message).toMatch(new RegExp(`^worker ${a} at step 0: .*; node \\(0, 8\\) of step 0 failed 3 times, more than maxRetries 2$`));
  });
});

describe('RoundMachine: step deadline', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);

  it('re-executes the nodes of a worker past the deadline elsewhere; the late result is dropped and counted', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stepTimeoutMs: 100, stragglerMinMs: 1_000_000 });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    expect(h.m.stepDeadlineMs).toBe(100);
    // b hangs: its results are held back
    const held = h.pending.filter((p) => p.from === b);
    h.pending = h.pending.filter((p) => p.from !== b);
    while (h.pending.length > 0) expect(h.deliver(0)).toBe('accepted');
    now = 99;
    h.m.tick(0);
    expect(h.kinds('reassigned')).toEqual([]);
    now = 101;
    h.m.tick(0);
    h.m.tick(0); // once per step
    expect(h.kinds('straggler')).toEqual([{ kind: 'straggler', workerId: b, step: 0, computeMs: 101, medianMs: 0 }]);
    expect(h.kinds('reassigned')).toEqual([
      { kind: 'reassigned', step: 0, from: b, to: a, leaves: [3, 4] },
      { kind: 'reassigned', step: 0, from: b, to: a, leaves: [4, 6] },
    ]);
    expect(h.m.reexecuted).toBe(2);
    // first valid result wins: b's late (3, 1) comes first, a's copy is then a duplicate
    expect(h.m.resultReceived(b, held[0].r).status).toBe('accepted');
    expect(h.deliver(0)).toBe('duplicate');
    expect(h.deliver(0)).toBe('accepted'); // a's (4, 4) completes step 0
    expect(h.m.step).toBe(1);
    expect(h.m.duplicatesDropped).toBe(1);
    // b delivered (it is alive again), so step 1 is shared; b's remaining late result is stale
    expect(h.m.resultReceived(b, held[1].r).status).toBe('stale');
    expect(h.m.staleDropped).toBe(1);
    expect(new Set(h.tasks().filter((t) => t.task.step === 1).map((t) => t.to))).toEqual(new Set([a, b]));
    h.run(new Rng(12));
    same(h.m.params, ref.result.params);
  });

  it('leaves a worker that missed the deadline out of the next steps until it delivers', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stepTimeoutMs: 50, stragglerMinMs: 1_000_000 });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    const held = h.pending.filter((p) => p.from === b);
    h.pending = h.pending.filter((p) => p.from !== b);
    while (h.pending.length > 0) expect(h.deliver(0)).toBe('accepted'); // a is done in time
    now = 60;
    h.m.tick(0);
    expect(h.kinds('straggler').map((e) => (e as { workerId: string }).workerId)).toEqual([b]);
    while (h.m.step === 0) expect(h.deliver(0)).toBe('accepted');
    expect(h.tasks().filter((t) => t.task.step === 1).map((t) => t.to)).toEqual([a]);
    while (h.m.step === 1) expect(h.deliver(0)).toBe('accepted');
    expect(h.tasks().filter((t) => t.task.step === 2).map((t) => t.to)).toEqual([a]);
    expect(h.m.resultReceived(b, held[0].r).status).toBe('stale'); // a sign of life
    while (h.m.step === 2) expect(h.deliver(0)).toBe('accepted');
    expect(h.tasks().filter((t) => t.task.step === 3).map((t) => t.to)).toEqual([a, b]);
    h.run(new Rng(13));
    same(h.m.params, ref.result.params);
  });

  it('a lagging worker that reports it skipped a stale task (workerCaughtUp) gets leaves again from the next step', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stepTimeoutMs: 50, stragglerMinMs: 1_000_000 });
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    h.pending = h.pending.filter((p) => p.from !== b); // b never answers step 0
    while (h.pending.length > 0) expect(h.deliver(0)).toBe('accepted');
    now = 60;
    h.m.tick(0);
    while (h.m.step === 0) expect(h.deliver(0)).toBe('accepted');
    expect(h.tasks().filter((t) => t.task.step === 1).map((t) => t.to)).toEqual([a]);
    h.m.workerCaughtUp(b, 0);
    while (h.m.step === 1) expect(h.deliver(0)).toBe('accepted');
    expect(h.tasks().filter((t) => t.task.step === 2).map((t) => t.to)).toEqual([a, b]);
    h.run(new Rng(14));
    same(h.m.params, ref.result.params);
  });

  it('wantsResult: only a node of the step in progress that the worker owes', () => {
    const h = new Harness(cfg, { balance: 'even' });
    const [a, b] = [h.add(), h.add()];
    expect(h.m.wantsResult(a, 0, 0, 4)).toBe(false); // not started
    h.m.start();
    const mine = h.pending.find((p) => p.from === a)!.r;
    expect(h.m.wantsResult(a, 0, mine.nodeLo, mine.nodeSize)).toBe(true);
    expect(h.m.wantsResult(b, 0, mine.nodeLo, mine.nodeSize)).toBe(false); // not b's
    expect(h.m.wantsResult(a, 1, mine.nodeLo, mine.nodeSize)).toBe(false); // another step
    expect(h.m.resultReceived(a, mine).status).toBe('accepted');
    expect(h.m.wantsResult(a, 0, mine.nodeLo, mine.nodeSize)).toBe(false); // already in
  });

  it('sizes the automatic deadline from the recent step times', () => {
    const d = new StepDeadline(undefined, 1000);
    expect(d.ms).toBe(1000);
    for (const ms of [100, 300, 200]) d.record(ms);
    expect(d.medianMs).toBe(200);
    expect(d.ms).toBe(1000);
    for (let i = 0; i < 20; i++) d.record(400);
    expect(d.medianMs).toBe(400); // only the last 16 count
    expect(d.ms).toBe(2000);
    expect(new StepDeadline(250).ms).toBe(250);
  });
});

describe('RoundMachine: resume', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);

  it.each([
    [3, 0],
    [5, 0],
    [7, 2],
  ])('a machine rebuilt from the checkpoint after %i steps (+%i results of the next) ends bit-identical to an uninterrupted run', (k, extra) => {
    const h = new Harness(cfg);
    h.add();
    h.add();
    h.m.start();
    while (h.m.step < k) expect(h.deliver(0)).toBe('accepted');
    for (let i = 0; i < extra; i++) h.deliver(0);
    expect(h.m.step).toBe(k);
    const bytes = h.m.checkpointBytes();
    h.m.stop('test');
    expect(h.m.state).toBe('stopped');
    expect(h.deliver(0)).toBe('stale');
    const state = resumeStateFrom(bytes, cfg, data.train.n);
    expect(state.step).toBe(k);
    const h2 = new Harness(cfg, { resume: state });
    expect(h2.m.step).toBe(k);
    h2.add();
    h2.add();
    h2.add();
    h2.m.start();
    expect(h2.logs[0]).toMatch(new RegExp(`^resuming at step ${k} of 10`));
    h2.run(new Rng(k));
    expect(h2.m.step).toBe(10);
    same(h2.m.params, ref.result.params);
    expect(h2.kinds('step').map((e) => (e as { step: number }).step)).toEqual(Array.from({ length: 10 - k }, (_, i) => k + i + 1));
    const fromTrain = encodeFinalCheckpoint({
      config: cfg,
      params: ref.result.params,
      optimizer: ref.result.optimizer.state,
      step: ref.result.steps,
      epoch: ref.result.epochs,
      sampler: samplerStateAfter(cfg, data.train.n, ref.result.steps),
    });
    expect(Buffer.from(h2.m.checkpointBytes()).equals(Buffer.from(fromTrain))).toBe(true);
    expect(h2.m.finalEval).toEqual(ref.result.test);
  });

  it('refuses workers once stopped, with 1001 so that they come back later', () => {
    const h = new Harness(cfg);
    h.m.start();
    h.m.stop('maintenance');
    expect(h.logs.at(-1)).toBe('stopping at step 0 of 10: maintenance');
    expect(h.m.workerJoined('x', { workerName: 'x', host: 'h', pid: 1, kernels: [] }, 0)).toEqual({ refused: { code: 'E_STATE', message: 'coordinator stopping (run r1)', closeCode: 1001 } });
  });
});
