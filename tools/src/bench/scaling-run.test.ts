import { describe, expect, it } from 'vitest';
import { type ScalingRunResult, speedUp, summarizeRuns } from './scaling-run.js';

describe('summarizeRuns', () => {
  it('gives the median and range of each per-run figure; traffic is per worker', () => {
    const s = summarizeRuns([run(2, 100, 50, [[10, 30], [20, 40]]), run(2, 300, 40, [[30, 50], [30, 50]], 0.2), run(2, 200, 60, [[20, 40], [20, 40]], 0.1)]);
    expect(s).toMatchObject({ workers: 2, batchSize: 512, runs: 3, rawBytesPerStep: 80, incidents: 0 });
    expect(s.samplesPerSec).toEqual({ median: 200, min: 100, max: 300, n: 3 });
    expect(s.phases.totalMs).toEqual({ median: 50, min: 40, max: 60, n: 3 });
    expect(s.phases.computeMs.median).toBe(25);
    expect(s.sentPerWorker).toEqual({ median: 20, min: 15, max: 30, n: 3 });
    expect(s.receivedPerWorker).toEqual({ median: 40, min: 35, max: 50, n: 3 });
    expect(s.overheadPct.median).toBe(0.1);
    expect(s.coordinatorCpuMsPerStep.median).toBe(4);
  });

  it('refuses no runs', () => {
    expect(() => summarizeRuns([])).toThrow(RangeError);
  });
});

describe('speedUp', () => {
  it('is the ratio of the medians, with the range of the ratios of paired runs', () => {
    const one = [run(1, 100, 1, []), run(1, 200, 1, []), run(1, 150, 1, [])];
    const two = [run(2, 180, 1, []), run(2, 260, 1, []), run(2, 330, 1, [])];
    expect(speedUp(one, two)).toEqual({ ratio: 260 / 150, min: 1.3, max: 2.2 });
  });
});

const run = (workers: number, sps: number, total: number, traffic: Array<[number, number]>, over = 0.05): ScalingRunResult => ({
  workers,
  batchSize: 512,
  leafSize: 32,
  kernel: 'wasm',
  paramCount: 10,
  timedSteps: 10,
  samples: 5120,
  wallMs: 5120_000 / sps,
  samplesPerSec: sps,
  participants: { min: workers, max: workers },
  phases: { computeMs: total / 2, waitMs: 1, reduceMs: 2, updateMs: 3, broadcastMs: 4, totalMs: total },
  traffic: traffic.map(([sent, received], i) => ({ id: `w${i}`, sent, received, shmSent: 0, shmReceived: 0 })),
  bytesPerStep: traffic.reduce((a, [s, r]) => a + s + r, 0),
  rawBytesPerStep: 80,
  overheadPct: over,
  coordinatorCpuMsPerStep: { user: 3, system: 1, total: 4 },
  incidents: 0,
});
