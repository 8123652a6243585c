import { describe, expect, it } from 'vitest';
import { Network, Rng, type ModelSpec, initParams } from '@dptrain/core';
import { NaiveMlp } from './compare.js';

const spec: ModelSpec = {
  inputSize: 5,
  layers: [
    { units: 4, activation: 'relu' },
    { units: 6, activation: 'relu' },
    { units: 3, activation: 'softmax' },
  ],
  loss: 'softmax_cross_entropy',
};

describe('NaiveMlp', () => {
  it('takes the same SGD step as core (loss, then parameters)', () => {
    const rows = 7;
    const lr = 0.1;
    const rng = new Rng(11);
    const x = Float32Array.from({ length: rows * 5 }, () => rng.nextFloat() * 2 - 1);
    const y = new Float32Array(rows * 3);
    for (let i = 0; i < rows; i++) y[i * 3 + rng.nextInt(3)] = 1;
    const p0 = initParams(spec, 5);

    const net = new Network(spec, { maxRows: rows });
    net.setParams(p0);
    net.input.set(x);
    net.target.set(y);
    const st = net.lossAndGrad(rows);
    const expected = p0.map((w, i) => w - (lr * net.grad[i]) / rows);

    const naive = new NaiveMlp([5, 4, 6, 3], Float32Array.from(p0), rows);
    const loss = naive.step(x, y, rows, lr);
    expect(loss).toBeCloseTo(st.lossSum / rows, 5);
    let maxDiff = 0;
    for (let i = 0; i < p0.length; i++) maxDiff = Math.max(maxDiff, Math.abs(naive.params[i] - expected[i]));
    expect(maxDiff).toBeLessThan(1e-6);
    expect(naive.params).not.toEqual(p0);
  });

  it('refuses parameters of the wrong length', () => {
    expect(() => new NaiveMlp([5, 4, 3], new Float32Array(10), 2)).toThrow(/5-4-3 need 39/);
  });
});
