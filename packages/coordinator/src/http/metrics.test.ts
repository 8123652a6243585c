import type { RunEvent } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry, metricsFromEvent } from './metrics.js';

const w = (workerId: string, bytesIn: number, bytesOut: number, state: 'busy' | 'dead' = 'busy') => ({ workerId, host: 'h', state, leaves: 2, computeMs: 10, samplesPerSec: 100, bytesIn, bytesOut, lastHeartbeat: 0 });
async function value(reg: ReturnType<typeof createMetricsRegistry>, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = reg.registry.getSingleMetric(name);
  const data = await metric?.get();
  return data?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('metricsFromEvent', () => {
  it('turns cumulative worker byte totals into counter increments, surviving a session reset', async () => {
    const reg = createMetricsRegistry({ processMetrics: false });
    const feed = (seq: number, list: ReturnType<typeof w>[]) => metricsFromEvent(reg, { kind: 'workers', seq, t: 1000, step: seq, list } as RunEvent);
    feed(0, [w('a', 100, 10)]);
    feed(1, [w('a', 250, 30)]);
    expect(await value(reg, 'dptrain_worker_bytes_total', { worker: 'a', direction: 'in' })).toBe(250);
    feed(2, [w('a', 40, 5)]); // the worker reconnected: its totals restarted
    expect(await value(reg, 'dptrain_worker_bytes_total', { worker: 'a', direction: 'in' })).toBe(290);
    expect(await value(reg, 'dptrain_worker_bytes_total', { worker: 'a', direction: 'out' })).toBe(35);
    expect(await value(reg, 'dptrain_worker_compute_seconds', { worker: 'a' })).toBeCloseTo(0.01, 12);
    feed(3, [w('a', 40, 5, 'dead')]);
    expect(await value(reg, 'dptrain_worker_compute_seconds', { worker: 'a' })).toBeUndefined();
    expect(await value(reg, 'dptrain_workers', { state: 'dead' })).toBe(1);
    expect(await value(reg, 'dptrain_workers', { state: 'busy' })).toBe(0);
  });

  it('keeps the last finite loss when a step reports null, and converts phases to seconds', async () => {
    const reg = createMetricsRegistry({ processMetrics: false });
    const phases = { computeMs: 20, waitMs: 5, reduceMs: 1, updateMs: 2, broadcastMs: 3, totalMs: 31 };
    const step = (seq: number, loss: number | null) => ({ kind: 'step', seq, t: 2000, step: seq + 1, epoch: 0, loss, accuracy: null, samples: 64, samplesPerSec: 2000, lr: 0.1, phases, workers: 2 }) as RunEvent;
    metricsFromEvent(reg, step(0, 0.5));
    metricsFromEvent(reg, step(1, null));
    expect(await value(reg, 'dptrain_train_loss')).toBe(0.5);
    expect(await value(reg, 'dptrain_steps_total')).toBe(2);
    expect(await value(reg, 'dptrain_samples_total')).toBe(128);
    expect(await value(reg, 'dptrain_step_phase_seconds', { phase: 'wait' })).toBeCloseTo(0.005, 12);
    expect(await value(reg, 'dptrain_step_phase_seconds_total', { phase: 'compute' })).toBeCloseTo(0.04, 12);
    expect(await value(reg, 'dptrain_last_event_timestamp_seconds')).toBe(2);
  });

  it('uses a private registry: two coordinators in one process do not share counts', async () => {
    const a = createMetricsRegistry({ processMetrics: false });
    const b = createMetricsRegistry({ processMetrics: false });
    metricsFromEvent(a, { kind: 'checkpoint', seq: 0, t: 0, step: 5, path: 'p', bytes: 99 });
    expect(await value(a, 'dptrain_checkpoints_total')).toBe(1);
    expect(await value(b, 'dptrain_checkpoints_total')).toBe(0);
    expect(await value(a, 'dptrain_checkpoint_bytes')).toBe(99);
  });
});
