import { describe, expect, it } from 'vitest';
import { train } from '@dptrain/core';
import { createCoreTrainer, mergeCoreResults, type CoreBenchResult } from './core.js';
import { W_BATCH, W_LR, W_SPEC, syntheticClassification } from './util.js';

describe('createCoreTrainer', () => {
  it('takes exactly the steps of train() (bit-identical parameters)', () => {
    const data = syntheticClassification(W_BATCH * 3, 784, 10, 2);
    const test = syntheticClassification(4, 784, 10, 3);
    const t = createCoreTrainer({ kernel: 'js', leafSize: 32, data, seed: 9 });
    const losses = [t.step(), t.step()];
    const ref = train({ spec: W_SPEC, data: { train: data, test }, optimizer: { name: 'sgd', lr: W_LR }, batchSize: W_BATCH, leafSize: 32, steps: 2, seed: 9, kernel: 'js' });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(t.params).toEqual(ref.params);
  });
});

describe('mergeCoreResults', () => {
  it('pools the runs of every process and recomputes the summaries', () => {
    const part = (runs: number[], g: number[]): CoreBenchResult =>
      ({
        machine: {} as CoreBenchResult['machine'],
        workload: { spec: W_SPEC, batchSize: 128, lr: W_LR, flopsPerSample: 1 },
        options: { runs: runs.length, steps: 1, warmup: 0, processes: 1 },
        training: [{ kernel: 'js', leafSize: 128, runs, samplesPerSec: { median: 0, min: 0, max: 0, n: 0 }, finalLoss: 1 }],
        gemm: [{ kernel: 'js', label: 'x', layer: 0, op: 'gemmABt', m: 128, n: 1, k: 1, inStep: true, samples: g, gflops: { median: 0, min: 0, max: 0, n: 0 } }],
      }) as CoreBenchResult;
    const m = mergeCoreResults([part([1, 2, 3], [4]), part([10, 20], [6])]);
    expect(m.options.processes).toBe(2);
    expect(m.training[0].samplesPerSec).toEqual({ median: 3, min: 1, max: 20, n: 5 });
    expect(m.gemm[0].gflops).toEqual({ median: 5, min: 4, max: 6, n: 2 });
    expect(m.training[0].gemmMsPerStep).toBeCloseTo(((2 * 128) / 5e9) * 1000, 12);
  });
});
