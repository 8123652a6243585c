import { describe, expect, it } from 'vitest';
import { runSeeds, train } from './train.js';
import { EpochSampler, blobs, spirals, splitDataset, xorDataset } from './data/index.js';
import { initParams } from './init.js';
import { getKernels, wasmSupported } from './kernels/index.js';
import { LeafComputer } from './leaf.js';
import { createOptimizerState, validateOptimizerConfig } from './optim/index.js';
import type { ModelSpec } from './spec.js';
import { leafCount, nextPow2 } from './tree.js';
import { applyUpdate } from './update.js';

describe('train (single process)', () => {
  it('learns XOR to 100 % accuracy', () => {
    const xor = xorDataset();
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 4, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }], loss: 'bce' };
    const r = train({ spec, data: { train: xor, test: xor }, optimizer: { name: 'adam', lr: 0.05 }, batchSize: 4, leafSize: 2, steps: 400, seed: 1 });
    expect(r.test.accuracy).toBe(1);
    expect(r.test.loss).toBeLessThan(0.1);
  });

  it('learns two spirals with dropout, and the same seed gives the same bits', () => {
    const data = splitDataset(spirals(600, { seed: 3 }), { testFraction: 0.2, seed: 0, shuffle: true });
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 32, activation: 'relu', dropout: 0.1 }, { units: 32, activation: 'relu' }, { units: 2, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const opts = { spec, data, optimizer: { name: 'adam' as const, lr: 0.01 }, batchSize: 32, leafSize: 8, epochs: 60, seed: 5 };
    const a = train(opts);
    expect(a.test.accuracy).toBeGreaterThan(0.9);
    const b = train(opts);
    expect(Array.from(b.params)).toEqual(Array.from(a.params));
    const c = train({ ...opts, seed: 6 });
    expect(Array.from(c.params)).not.toEqual(Array.from(a.params));
  });

  it('the leaf size is part of the numbers: another leaf size gives other low bits', () => {
    const data = splitDataset(blobs(256, { seed: 1, centers: 3 }), { testFraction: 0.25, shuffle: true, seed: 1 });
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const base = { spec, data, optimizer: { name: 'sgd' as const, lr: 0.1 }, batchSize: 64, steps: 20, seed: 2 };
    const a = train({ ...base, leafSize: 4 });
    const b = train({ ...base, leafSize: 16 });
    expect(Array.from(a.params)).not.toEqual(Array.from(b.params));
    for (let i = 0; i < a.params.length; i++) expect(a.params[i]).toBeCloseTo(b.params[i], 4);
  });

  it('the wasm kernels train to the same accuracy, are deterministic, and differ from js only in low bits', () => {
    const data = splitDataset(blobs(256, { seed: 1, centers: 3 }), { testFraction: 0.25, shuffle: true, seed: 1 });
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 16, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const base = { spec, data, optimizer: { name: 'sgd' as const, lr: 0.1 }, batchSize: 64, leafSize: 16, steps: 30, seed: 2 };
    const w1 = train({ ...base, kernel: 'wasm' });
    const w2 = train({ ...base, kernel: 'wasm' });
    const j = train({ ...base, kernel: 'js' });
    expect(Array.from(w2.params)).toEqual(Array.from(w1.params));
    for (let i = 0; i < j.params.length; i++) expect(w1.params[i]).toBeCloseTo(j.params[i], 4);
    expect(Math.abs(w1.test.accuracy - j.test.accuracy)).toBeLessThan(0.05);
  });

  it.runIf(wasmSupported())('keeps params and Adam\'s state in the kernels\' memory: the bits of the same steps on plain arrays, returned as plain copies', () => {
    const data = splitDataset(blobs(300, { seed: 2, centers: 3 }), { testFraction: 0.2, shuffle: true, seed: 1 });
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 12, activation: 'tanh' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const optimizer = { name: 'adam' as const, lr: 0.01 };
    const r = train({ spec, data, optimizer, batchSize: 48, leafSize: 8, steps: 25, seed: 4, kernel: 'wasm' });
    // the same run by hand, as train() stepped before: params, gradient and state in plain arrays
    const seeds = runSeeds(4);
    const K = getKernels('wasm');
    const computer = new LeafComputer(spec, data.train, { leafSize: 8, seed: seeds.dropout, kernels: K });
    const params = initParams(spec, seeds.init);
    const state = createOptimizerState({ name: 'adam' }, params.length);
    const grad = new Float32Array(params.length);
    const sampler = new EpochSampler({ n: data.train.n, batchSize: 48, seed: seeds.sampler, shuffle: true });
    for (let step = 0; step < 25; step++) {
      const b = sampler.next();
      const L = leafCount(b.indices.length, 8);
      computer.setParams(params);
      computer.computeNode({ step, leafCount: L, batchSize: b.indices.length, indices: b.indices, indexBase: 0 }, { lo: 0, size: nextPow2(L) }, grad);
      applyUpdate(params, grad, b.indices.length, validateOptimizerConfig(optimizer), state, step, K);
    }
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    expect(bits(r.params)).toEqual(bits(params));
    expect(r.optimizer.state.t).toBe(25);
    for (const slot of ['m', 'v']) expect(bits(r.optimizer.state.slots[slot]), slot).toEqual(bits(state.slots[slot]));
    // plain arrays of their own, not views of the kernels' memory
    for (const a of [r.params, r.optimizer.state.slots.m, r.optimizer.state.slots.v]) expect(a.buffer.byteLength).toBe(a.byteLength);
  });

  it('early stopping stops and restores the best weights', () => {
    const data = splitDataset(blobs(200, { seed: 4, centers: 2, spread: 0.3 }), { testFraction: 0.25, shuffle: true, seed: 1 });
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 2, activation: 'softmax' }], loss: 'softmax_cross_entropy' };
    const epochs: number[] = [];
    const r = train({
      spec, data, optimizer: { name: 'sgd', lr: 2 }, batchSize: 30, leafSize: 10, epochs: 200, seed: 1,
      earlyStopping: { monitor: 'loss', patience: 2, minDelta: 1e-3 },
      onEpoch: (e) => epochs.push(e.epoch),
    });
    expect(r.stoppedEarly).toBe(true);
    expect(epochs.length).toBeLessThan(200);
  });

  it('rejects bad options naming the field', () => {
    const xor = xorDataset();
    const spec: ModelSpec = { inputSize: 2, layers: [{ units: 1, activation: 'sigmoid' }], loss: 'bce' };
    const base = { spec, data: { train: xor, test: xor }, optimizer: { name: 'sgd' as const, lr: 0.1 } };
    expect(() => train({ ...base, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => train({ ...base, batchSize: 4, leafSize: 8 })).toThrow(/leafSize: must be at most batchSize/);
    expect(() => train({ ...base, batchSize: 8 })).toThrow(/batchSize: must be at most the training set size \(4\)/);
    expect(() => train({ ...base, batchSize: 4, optimizer: { name: 'sgd', lr: -1 } })).toThrow(/optimizer.lr/);
    expect(() => train({ ...base, batchSize: 4, spec: { ...spec, inputSize: 3 } })).toThrow(/3 inputs|inputs/);
  });
});
