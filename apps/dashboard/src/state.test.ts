import type { RunEvent, RunEventInit, WorkerInfo } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { applyEvent, applyEvents, beginConnection, createState, isStraggling, LOG_LIMIT, progress, totalSteps, workerCounts } from './state.js';

const phases = (computeMs: number) => ({ computeMs, waitMs: 2, reduceMs: 1, updateMs: 1, broadcastMs: 1, totalMs: computeMs + 5 });
const stepInit = (step: number, epoch = 0, loss: number | null = 1 / step): RunEventInit => ({ kind: 'step', step, epoch, loss, accuracy: 0.5, samples: 32, samplesPerSec: 1000 + step, lr: 0.1, phases: phases(10), workers: 2 });
const info = (workerId: string, state: WorkerInfo['state'] = 'busy'): WorkerInfo => ({ workerId, host: `h-${workerId}`, state, leaves: 2, computeMs: 11, samplesPerSec: 900, bytesIn: 1000, bytesOut: 2000, lastHeartbeat: 5 });

/** Stamp seq (from `first`) and t onto inits, like the coordinator's event log. */
function stamp(inits: RunEventInit[], t0 = 1_000, first = 0): RunEvent[] {
  return inits.map((e, i) => ({ ...e, seq: first + i, t: t0 + i }) as RunEvent);
}
const started = (runId = 'r1'): RunEventInit => ({ kind: 'run_started', runId, config: { steps: 10, epochs: 1, batchSize: 32 }, model: { inputSize: 2, layers: [{ units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' }, paramCount: 9 });

describe('dashboard state', () => {
  it('builds aligned per-step series with test points placed at their steps', () => {
    const s = createState();
    const n = applyEvents(s, stamp([started(), stepInit(1), stepInit(2), { kind: 'eval', step: 2, epoch: 0, loss: 0.7, accuracy: 0.6 }, stepInit(3), { kind: 'eval', step: 0, epoch: 0, loss: 2, accuracy: 0.1 }]));
    expect(n).toBe(6);
    expect(s.series.step).toEqual([0, 1, 2, 3]);
    expect(s.series.trainLoss).toEqual([null, 1, 0.5, 1 / 3]);
    expect(s.series.testLoss).toEqual([2, null, 0.7, null]);
    expect(s.series.testAcc).toEqual([0.1, null, 0.6, null]);
    expect(s.series.computeMs).toEqual([null, 10, 10, 10]);
    expect(s.series.samplesPerSec).toEqual([null, 1001, 1002, 1003]);
    for (const arr of Object.values(s.series)) expect(arr.length).toBe(4);
    expect(s.step).toBe(3);
    expect(s.samples).toBe(96);
    expect(s.status).toBe('running');
    expect(progress(s)).toBeCloseTo(0.3, 12);
  });

  it('ignores duplicates when a reconnection replays the same history, and counts nothing twice', () => {
    const s = createState();
    const events = stamp([started(), { kind: 'worker_joined', workerId: 'a', host: 'x' }, stepInit(1), { kind: 'checkpoint', step: 1, path: 'p', bytes: 10 }, { kind: 'error', code: 'E_X', message: 'boom' }]);
    applyEvents(s, events.slice(0, 3));
    beginConnection(s);
    expect(applyEvents(s, events)).toBe(2);
    expect(s.series.step).toEqual([1]);
    expect(s.checkpoints.count).toBe(1);
    expect(s.errors).toBe(1);
    expect(s.log.map((l) => l.kind)).toEqual(['run_started', 'worker_joined', 'checkpoint', 'error']);
    const v = s.version;
    expect(applyEvent(s, events[2])).toBe(false);
    expect(s.version).toBe(v);
  });

  it('starts over when the stream comes from a restarted coordinator (seq 0 differs) or a new run', () => {
    const s = createState();
    applyEvents(s, stamp([started('r1'), stepInit(1), stepInit(2), stepInit(3)], 1_000));
    beginConnection(s);
    applyEvents(s, stamp([started('r1'), stepInit(1)], 9_000)); // same run id, new process
    expect(s.series.step).toEqual([1]);
    expect(s.startedAt).toBe(9_000);
    expect(s.lastSeq).toBe(1);
    applyEvents(s, stamp([started('r2')], 20_000, 2)); // a second run in the same stream
    expect(s.runId).toBe('r2');
    expect(s.series.step).toEqual([]);
  });

  it('tracks workers: joins, figures, stragglers, deaths and leaves', () => {
    const s = createState();
    applyEvents(
      s,
      stamp([
        started(),
        { kind: 'worker_joined', workerId: 'a', host: 'ha' },
        { kind: 'worker_joined', workerId: 'b', host: 'hb' },
        { kind: 'worker_joined', workerId: 'c', host: 'hc' },
        stepInit(1),
        { kind: 'workers', step: 1, list: [{ ...info('a'), transport: 'shm' }, { ...info('b'), transport: 'socket' }, info('c')] },
        { kind: 'straggler', workerId: 'b', step: 1, computeMs: 50, medianMs: 10 },
        { kind: 'worker_dead', workerId: 'c', reason: 'heartbeat timeout' },
        { kind: 'reassigned', step: 2, from: 'c', to: 'a', leaves: [4, 6] },
        { kind: 'worker_left', workerId: 'a', reason: 'bye' },
      ]),
    );
    expect([...s.workers.keys()]).toEqual(['a', 'b', 'c']);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => s.workers.get(id)!);
    expect([a.state, b.state, c.state]).toEqual(['left', 'busy', 'dead']);
    expect(c.reason).toBe('heartbeat timeout');
    expect(b.computeMs).toBe(11);
    expect(b.bytesOut).toBe(2000);
    // the transport as the coordinator reports it (absent from older coordinators: unknown)
    expect([a.transport, b.transport, c.transport]).toEqual(['shm', 'socket', null]);
    expect(isStraggling(s, b)).toBe(true);
    expect(workerCounts(s)).toEqual({ live: 1, dead: 1, left: 1 });
    expect(s.reassignments).toBe(1);
    const moved = s.log.find((l) => l.kind === 'reassigned');
    expect(moved?.text).toBe('step 2: leaves [4, 6) reassigned from c to a');
    expect(moved?.level).toBe('warn');
    expect(s.log.find((l) => l.kind === 'worker_dead')?.level).toBe('error');
    // the straggler flag fades after a few steps
    applyEvents(s, stamp([stepInit(2), stepInit(10)], 5_000, 10));
    expect(isStraggling(s, b)).toBe(false);
  });

  it('keeps the final state, estimates the total from epochs, and bounds the log', () => {
    const s = createState();
    const inits: RunEventInit[] = [{ ...started(), config: { epochs: 3 } } as RunEventInit];
    for (let i = 1; i <= 5; i++) inits.push(stepInit(i, i <= 4 ? 0 : 1));
    applyEvents(s, stamp(inits));
    expect(totalSteps(s)).toBe(12);
    expect(progress(s)).toBeCloseTo(5 / 12, 12);
    const noise: RunEventInit[] = Array.from({ length: LOG_LIMIT + 20 }, (_, i) => ({ kind: 'error', code: 'E_N', message: `n${i}` }));
    noise.push({ kind: 'run_finished', step: 12, checkpoint: 'final.safetensors', testLoss: 0.1, testAccuracy: 0.97 });
    applyEvents(s, stamp(noise, 9_000, 6));
    expect(s.log.length).toBe(LOG_LIMIT);
    expect(s.log[s.log.length - 1].kind).toBe('run_finished');
    expect(s.errors).toBe(LOG_LIMIT + 20);
    expect(s.status).toBe('finished');
    expect(progress(s)).toBe(1);
    expect(s.step).toBe(12);
  });

  it('skips malformed and unknown events without failing', () => {
    const s = createState();
    const n = applyEvents(s, [null, 3, { kind: 'step' }, { seq: -1, t: 0, kind: 'step' }, { seq: 0, t: 1, kind: 'from_the_future', x: 1 }, ...stamp([started()], 5, 1)]);
    expect(n).toBe(1);
    expect(s.runId).toBe('r1');
    expect(s.lastSeq).toBe(1);
  });

  it('records null loss as a gap', () => {
    const s = createState();
    applyEvents(s, stamp([started(), stepInit(1, 0, null), stepInit(2, 0, 0.25)]));
    expect(s.series.trainLoss).toEqual([null, 0.25]);
  });
});
