import type { RunEvent, RunEventInit } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { EventLog, SNAPSHOT_KINDS } from './event-log.js';

const step = (n: number): RunEventInit => ({
  kind: 'step',
  step: n,
  epoch: 0,
  loss: 1 / n,
  accuracy: 0.5,
  samples: 8,
  samplesPerSec: 100,
  lr: 0.1,
  phases: { computeMs: 1, waitMs: 0, reduceMs: 0, updateMs: 0, broadcastMs: 0, totalMs: 1 },
  workers: 1,
});
const workers = (n: number): RunEventInit => ({ kind: 'workers', step: n, list: [] });

describe('EventLog', () => {
  it('stamps seq without gaps and gives every event to listeners, a throwing one reported', () => {
    const errors: unknown[] = [];
    const log = new EventLog(100, (e) => errors.push(e));
    const seen: number[] = [];
    log.on((e) => seen.push(e.seq));
    log.on(() => {
      throw new Error('boom');
    });
    for (let i = 1; i <= 5; i++) log.emit(step(i));
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(errors.length).toBe(5);
    expect(log.history.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps only the latest `workers` snapshots (N to 2N) and every other event, in seq order', () => {
    const keep = SNAPSHOT_KINDS.workers!;
    const log = new EventLog(100_000);
    const live: RunEvent[] = [];
    log.on((e) => live.push(e));
    const history = log.history;
    const steps = 10 * keep + 3;
    for (let i = 1; i <= steps; i++) {
      log.emit(step(i));
      log.emit(workers(i));
      const w = log.history.filter((e) => e.kind === 'workers').length;
      expect(w).toBeLessThan(2 * keep);
      expect(w).toBeGreaterThanOrEqual(Math.min(i, keep));
    }
    // listeners saw everything; the history dropped only superseded snapshots, in place
    expect(live.length).toBe(2 * steps);
    expect(log.history).toBe(history);
    expect(log.history.filter((e) => e.kind === 'step').map((e) => (e as { step: number }).step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    const kept = log.history.filter((e) => e.kind === 'workers').map((e) => (e as { step: number }).step);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => steps - kept.length + 1 + i));
    const seqs = log.history.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs.at(-1)).toBe(2 * steps - 1);
  });

  it('drops the oldest events beyond maxHistory, snapshot counts following', () => {
    const log = new EventLog(10, () => {}, { workers: 2 });
    for (let i = 1; i <= 20; i++) log.emit(step(i));
    expect(log.history.map((e) => (e as { step: number }).step)).toEqual(Array.from({ length: 10 }, (_, i) => 11 + i));
    for (let i = 1; i <= 3; i++) log.emit(workers(i));
    expect(log.history.length).toBe(10);
    expect(log.history.filter((e) => e.kind === 'workers').length).toBe(3);
    log.emit(workers(4)); // 4 = 2N: compacted to the latest 2
    expect(log.history.filter((e) => e.kind === 'workers').map((e) => (e as { step: number }).step)).toEqual([3, 4]);
    for (let i = 21; i <= 40; i++) log.emit(step(i));
    expect(log.history.some((e) => e.kind === 'workers')).toBe(false);
    log.emit(workers(5));
    log.emit(workers(6));
    log.emit(workers(7));
    expect(log.history.filter((e) => e.kind === 'workers').map((e) => (e as { step: number }).step)).toEqual([5, 6, 7]);
  });
});
