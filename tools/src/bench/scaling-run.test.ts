import { describe, expect, it } from 'vitest';
import { type ScalingRunResult, rawStepBytes, speedUp, summarizeRuns } from './scaling-run.js';

describe('rawStepBytes', () => {
  const P = 1000;
  it('is one params message plus one gradient per tree node, per worker', () => {
    // 1 worker: params + the root node
    expect(rawStepBytes(512, 32, 1, P)).toBe(2 * P * 4);
    // 16 leaves over 2 workers: 8 leaves each = one node each
    expect(rawStepBytes(512, 32, 2, P)).toBe(4 * P * 4);
    // 3 leaves over 2 workers: [0,1) is node (0,1); [1,3) is nodes (1,1) and (2,2)
    expect(rawStepBytes(96, 32, 2, P)).toBe((2 + 3) * P * 4);
    // 10 leaves (the 320-sample last batch of an MNIST epoch at 512) over 2 workers:
    // [0,5) = (0,4) (4,1); [5,10) = (5,1) (6,2) (8,8) (the last node padded past leaf 10)
    expect(rawStepBytes(320, 32, 2, P)).toBe((3 + 4) * P * 4);
  });

  it('counts only active workers when there are more workers than leaves', () => {
    expect(rawStepBytes(64, 32, 4, P)).toBe(rawStepBytes(64, 32, 2, P));
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
  traffic: traffic.map(([sent, received], i) => ({ id: `w${i}`, sent, received })),
  bytesPerStep: traffic.reduce((a, [s, r]) => a + s + r, 0),
  rawBytesPerStep: 80,
  overheadPct: over,
  coordinatorCpuMsPerStep: { user: 3, system: 1, total: 4 },
  incidents: 0,
});

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
