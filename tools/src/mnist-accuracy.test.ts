import { type ModelSpec, train } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { loadDataset } from './data/index.js';

describe('the built-in MNIST split', () => {
  it('a 784-128-10 ReLU/softmax net with Adam reaches at least 95 % test accuracy within 6 epochs', async () => {
    const { split } = await loadDataset('mnist');
    expect([split.train.n, split.test.n]).toEqual([8000, 2000]);
    const spec: ModelSpec = { inputSize: 784, layers: [{ units: 128, activation: 'relu' }, { units: 10, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const perEpoch: number[] = [];
    const r = train({
      spec, data: split, optimizer: { name: 'adam', lr: 0.003 }, batchSize: 128, leafSize: 32, epochs: 6, seed: 0, kernel: 'wasm',
      onEpoch: (e) => { if (e.test) perEpoch.push(e.test.accuracy); },
    });
    expect(perEpoch).toHaveLength(6);
    expect(perEpoch[0]).toBeLessThan(r.test.accuracy + 0.05);
    expect(r.test.accuracy).toBeGreaterThanOrEqual(0.95);
    // the confusion matrix covers every test sample and agrees with the accuracy
    const c = r.test.confusion!;
    const total = c.flat().reduce((a, b) => a + b, 0);
    const diag = c.reduce((a, row, i) => a + row[i], 0);
    expect(total).toBe(2000);
    expect(diag / total).toBeCloseTo(r.test.accuracy, 10);
  }, 120_000);
});
