import { Rng } from '@dptrain/core';
import type { RunEventInit, WorkerInfo } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { Harness, baseConfig, reference } from './testing/machine-harness.js';

/** What the observer sees live: worker figures after every step, the final evaluation, deadlines on their own timer. */

type WorkersInit = Extract<RunEventInit, { kind: 'workers' }>;
type StepInit = Extract<RunEventInit, { kind: 'step' }>;
type EvalInit = Extract<RunEventInit, { kind: 'eval' }>;

const same = (a: Float32Array, b: Float32Array) => expect(Array.from(a)).toEqual(Array.from(b));

describe('RoundMachine: live figures for observers', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);

  it('emits a workers event after every step: busy/idle, leaves of the step in progress, last compute ms and samples/s, last message time', () => {
    const h = new Harness(cfg);
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    let wall = 1_700_000_000_000;
    h.run(new Rng(21), () => {
      wall += 7;
      h.m.touch(a, wall);
      h.m.touch(b, wall - 5);
    });
    same(h.m.params, ref.result.params);
    const steps = h.kinds('step') as StepInit[];
    expect(steps.length).toBe(10);
    // one workers event per step, after that step's step (and eval) event and before the next step's
    for (const s of steps) {
      const at = h.events.indexOf(s);
      const next = h.events.findIndex((e, i) => i > at && e.kind === 'step');
      const between = h.events.slice(at + 1, next < 0 ? undefined : next).filter((e): e is WorkersInit => e.kind === 'workers');
      expect(between.map((e) => e.step)).toEqual([s.step]);
      const list = between[0].list;
      expect(list.map((w) => w.workerId)).toEqual([a, b]);
      for (const w of list) {
        // each node reports computeMs 1: a worker's compute ms is its node count, its samples/s samples × 1000 / that
        expect(w.computeMs).toBeGreaterThan(0);
        expect(w.samplesPerSec).toBeGreaterThan(0);
        expect(Number.isInteger(w.computeMs)).toBe(true);
        if (s.step < 10) {
          expect(w.state).toBe(w.leaves > 0 ? 'busy' : 'idle');
        } else {
          expect([w.state, w.leaves]).toEqual(['idle', 0]); // the run is over
        }
      }
      // the leaves of the step now in progress (6 per batch, 1 for the last batch of an epoch)
      if (s.step < 10) expect(list.reduce((n, w) => n + w.leaves, 0)).toBe(s.step % 5 === 4 ? 1 : 6);
    }
    // the last message time is what the transport reported (touch), per worker; the last
    // workers event went out during the last delivery, before the hook's final touches
    const last = (h.kinds('workers') as WorkersInit[]).at(-1)!.list;
    const byId = new Map<string, WorkerInfo>(last.map((w) => [w.workerId, w]));
    expect(byId.get(a)!.lastHeartbeat).toBe(wall - 7);
    expect(byId.get(b)!.lastHeartbeat).toBe(wall - 12);
    // figures of the first step: worker a got leaves [0, 3) = nodes (0, 2), (2, 1): 2 ms for 24 samples
    const first = (h.kinds('workers') as WorkersInit[]).find((e) => e.step === 1)!.list.find((w) => w.workerId === a)!;
    expect([first.computeMs, first.samplesPerSec]).toEqual([2, 12_000]);
  });

  it('emits a workers event when a worker dies or goes past the step deadline', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stepTimeoutMs: 100, stragglerMinMs: 1_000_000, deadAfterMs: 1000 });
    const [a, b, c] = [h.add(), h.add(), h.add()];
    h.m.start();
    h.pending = h.pending.filter((p) => p.from === a);
    now = 50;
    while (h.pending.length > 0) expect(h.deliver(0)).toBe('accepted');
    const count = () => h.kinds('workers').length;
    let n = count();
    now = 150;
    h.m.checkDeadlines();
    expect(h.kinds('straggler').map((e) => (e as { workerId: string }).workerId)).toEqual([b, c]);
    expect(count()).toBe(n + 1);
    n = count();
    h.m.touch(a, 1500);
    h.m.touch(b, 1500);
    h.m.tick(1500); // c silent since 0: dead
    expect(h.kinds('worker_dead').map((e) => (e as { workerId: string }).workerId)).toEqual([c]);
    expect(count()).toBe(n + 1);
    expect((h.kinds('workers').at(-1) as WorkersInit).list.find((w) => w.workerId === c)!.state).toBe('dead');
  });

  it('emits an eval event for the final evaluation, once, at the final step', () => {
    // steps 7, evalEvery 3: periodic evals at 3, 6 and the epoch end 5; the final one at 7
    const h = new Harness(baseConfig({ steps: 7 }));
    h.add();
    h.add();
    h.m.start();
    h.run(new Rng(5));
    const evals = h.kinds('eval') as EvalInit[];
    expect(evals.map((e) => e.step)).toEqual([3, 5, 6, 7]);
    const fin = h.m.finalEval!;
    expect(evals.at(-1)).toEqual({ kind: 'eval', step: 7, epoch: 1, loss: fin.loss, accuracy: fin.accuracy });
    expect((h.kinds('step') as StepInit[]).at(-1)!.epoch).toBe(1);
    // already evaluated at the last step (an epoch end): no second eval event for it
    const h2 = new Harness(baseConfig({ steps: 10 }));
    h2.add();
    h2.m.start();
    h2.run();
    expect(h2.kinds('eval').map((e) => (e as EvalInit).step)).toEqual([3, 5, 6, 9, 10]);
  });
});

describe('RoundMachine: step deadline on its own timer', () => {
  const cfg = baseConfig();
  const ref = reference(cfg);

  it('says how long until the earliest deadline; checkDeadlines() enforces it without a heartbeat tick', () => {
    let now = 0;
    const h = new Harness(cfg, { clock: () => now, stepTimeoutMs: 1000, stragglerMinMs: 1_000_000 });
    expect(h.m.msToDeadline()).toBeUndefined(); // no step in progress
    const [a, b] = [h.add(), h.add()];
    h.m.start();
    expect(h.m.msToDeadline()).toBe(1000);
    // b hangs; a delivers in time
    h.pending = h.pending.filter((p) => p.from !== b);
    now = 200;
    while (h.pending.length > 0) expect(h.deliver(0)).toBe('accepted');
    now = 600;
    expect(h.m.msToDeadline()).toBe(400); // only b is due
    h.m.checkDeadlines();
    expect(h.kinds('reassigned')).toEqual([]);
    now = 1000;
    h.m.checkDeadlines();
    expect(h.kinds('reassigned')).toEqual([]); // not past it yet
    expect(h.m.msToDeadline()).toBe(0);
    now = 1001;
    h.m.checkDeadlines();
    expect(h.kinds('straggler')).toEqual([{ kind: 'straggler', workerId: b, step: 0, computeMs: 1001, medianMs: 0 }]);
    expect(h.kinds('reassigned').map((e) => (e as { from: string; to: string }).to)).toEqual([a, a]);
    // b is past its deadline (not counted again); a's re-executed nodes are due 1000 ms after they went out
    now = 1500;
    expect(h.m.msToDeadline()).toBe(501);
    while (h.m.step === 0) expect(h.deliver(0)).toBe('accepted');
    // the next step's deadline counts from its tasks
    expect(h.m.msToDeadline()).toBe(1000);
    h.run(new Rng(3));
    same(h.m.params, ref.result.params);
    expect(h.m.msToDeadline()).toBeUndefined(); // finished
  });
});
