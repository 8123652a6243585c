import { describe, expect, it } from 'vitest';
import { LeafComputer, blobs, initParams, paramLayout, runSeeds, validateModelSpec, wasmSupported, type KernelName } from '@dptrain/core';
import { ProtocolError, decode } from '@dptrain/protocol';
import { TaskRunner } from './compute.js';

const spec = validateModelSpec({ inputSize: 3, layers: [{ units: 8, activation: 'tanh' }, { units: 4, activation: 'softmax' }], loss: 'softmax_cross_entropy' });
const P = paramLayout(spec).total;
const data = blobs(64, { seed: 5, centers: 4, dims: 3 });
const kernels: KernelName[] = wasmSupported() ? ['js', 'wasm'] : ['js'];

describe.each(kernels)('TaskRunner (%s kernels)', (kernel) => {
  const welcome = { model: spec, paramCount: P, run: { seed: 3, leafSize: 8, kernel, dropout: false } };
  const task = { type: 'task' as const, v: 1 as const, step: 4, version: 2, epoch: 0, leafLo: 0, leafHi: 4, leafCount: 4, batchSize: 32, indices: Int32Array.from({ length: 32 }, (_, i) => i) };

  it('refuses parameters holding NaN or ±Infinity with E_NONFINITE naming the first, and then holds no version', () => {
    const runner = new TaskRunner(welcome, data);
    const good = initParams(spec, 1);
    runner.setParams(1, good);
    expect(runner.version).toBe(1);
    for (const [i, v] of [[0, Number.NaN], [P >> 1, Number.POSITIVE_INFINITY], [P - 1, Number.NEGATIVE_INFINITY]] as const) {
      const bad = Float32Array.from(good);
      bad[i] = v;
      bad[P - 1] = i === P - 1 ? v : Number.NaN; // a later bad value does not hide the first
      let err: unknown;
      try {
        runner.setParams(2, bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe('E_NONFINITE');
      expect((err as ProtocolError).field).toBe(`params.data[${i}]`);
      expect(runner.version).toBeUndefined();
      expect(() => [...runner.run(task)]).toThrow(/needs parameter version 2, this worker holds none/);
    }
  });

  it('computes with parameters that pass the scan: the result frame holds the node LeafComputer computes', () => {
    const runner = new TaskRunner(welcome, data);
    const params = initParams(spec, 1);
    runner.setParams(2, params);
    const [r] = [...runner.run(task)];
    const m = decode(r.frame, { paramCount: P });
    expect(m.type).toBe('result');
    const direct = new LeafComputer(spec, data, { leafSize: 8, seed: runSeeds(3).dropout, kernels: runner.computer.net.kernels });
    direct.setParams(params);
    const want = new Float32Array(P);
    direct.computeNode({ step: 4, leafCount: 4, batchSize: 32, indices: task.indices, indexBase: 0 }, { lo: 0, size: 4 }, want);
    expect(Array.from((m as { grad: Float32Array }).grad)).toEqual(Array.from(want));
  });
});
