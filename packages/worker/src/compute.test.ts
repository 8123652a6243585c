import { describe, expect, it } from 'vitest';
import { LeafComputer, blobs, initParams, paramLayout, runSeeds, validateModelSpec, wasmSupported, type KernelName } from '@dptrain/core';
import { ProtocolError, decode } from '@dptrain/protocol';
import { TaskRunner } from './compute.js';
import { FaultInjector } from './test-fault.js';

const spec = validateModelSpec({ inputSize: 3, layers: [{ units: 8, activation: 'tanh' }, { units: 4, activation: 'softmax' }], loss: 'softmax_cross_entropy' });
const P = paramLayout(spec).total;
const data = blobs(64, { seed: 5, centers: 4, dims: 3 });
const kernels: KernelName[] = wasmSupported() ? ['js', 'wasm'] : ['js'];
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const frameGrad = (frame: Uint8Array) => (decode(frame, { paramCount: P, copyPayload: true }) as { grad: Float32Array }).grad;

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
    const m = decode(r.frame(), { paramCount: P });
    expect(m.type).toBe('result');
    const direct = new LeafComputer(spec, data, { leafSize: 8, seed: runSeeds(3).dropout, kernels: runner.computer.net.kernels });
    direct.setParams(params);
    const want = new Float32Array(P);
    direct.computeNode({ step: 4, leafCount: 4, batchSize: 32, indices: task.indices, indexBase: 0 }, { lo: 0, size: 4 }, want);
    expect(Array.from((m as { grad: Float32Array }).grad)).toEqual(Array.from(want));
  });
  /** Leaves [1, 4) of a batch of 4: nodes (1, 1) and (2, 2). */
  const split = (step: number) => ({ ...task, step, leafLo: 1, leafHi: 4, indices: task.indices.slice(8) });
  /** The nodes of split(step) as LeafComputer computes them. */
  function reference(runner: TaskRunner, params: Float32Array, step: number): Float32Array[] {
    const direct = new LeafComputer(spec, data, { leafSize: 8, seed: runSeeds(3).dropout, kernels: runner.computer.net.kernels });
    direct.setParams(params);
    return [{ lo: 1, size: 1 }, { lo: 2, size: 2 }].map((node) => {
      const g = new Float32Array(P);
      direct.computeNode({ step, leafCount: 4, batchSize: 32, indices: task.indices.slice(8), indexBase: 1 }, node, g);
      return g;
    });
  }

  it('yields the gradient as a view, makes the frame only when asked, and refuses both once the next node is computed', () => {
    const runner = new TaskRunner(welcome, data);
    const params = initParams(spec, 1);
    runner.setParams(2, params);
    const want = reference(runner, params, 4);
    const gen = runner.run(split(4));
    const first = gen.next().value!;
    expect(bits(first.grad)).toEqual(bits(want[0]));
    const view = first.grad;
    const frame = first.frame();
    expect(frame.buffer).not.toBe(view.buffer);
    expect(first.frame()).toBe(frame);
    expect(bits(frameGrad(frame))).toEqual(bits(want[0]));
    const second = gen.next().value!;
    expect(second).toMatchObject({ nodeLo: 2, nodeSize: 2, samples: 16 });
    // no copy: every node is handed out in the same buffer, the one the kernels summed it in
    expect(second.grad).toBe(view);
    expect(bits(view)).toEqual(bits(want[1]));
    // the first view now holds the second node: reading it, or making its frame now, is refused
    expect(() => first.grad).toThrow(/the gradient view of node \(1, 1\) of step 4 used after the next node was computed/);
    const late = runner.run(split(4));
    const third = late.next().value!;
    expect(() => second.frame()).toThrow(/the result frame of node \(2, 2\) of step 4 used after the next node was computed/);
    // a frame made in time keeps its bits after the next node is computed, until release()
    expect(bits(frameGrad(frame))).toEqual(bits(want[0]));
    first.release();
    expect(() => first.frame()).toThrow(/asked for after release\(\)/);
    expect(bits(third.grad)).toEqual(bits(want[0]));
  });

  it('reuses released frames from a pool of at most 4', () => {
    const runner = new TaskRunner(welcome, data);
    runner.setParams(2, initParams(spec, 1));
    const frames = (n: number) => {
      const out: Array<{ frame: Uint8Array; release: () => void }> = [];
      while (out.length < n) for (const r of runner.run(split(4))) if (out.length < n) out.push({ frame: r.frame(), release: r.release });
      return out;
    };
    const held = frames(6);
    expect(new Set(held.map((h) => h.frame.buffer)).size).toBe(6);
    for (const h of held) h.release();
    const again = frames(6);
    const reused = again.filter((h) => held.some((o) => o.frame.buffer === h.frame.buffer));
    expect(reused).toHaveLength(4);
    // a result sent without a frame gives nothing back and takes nothing from the pool
    for (const r of runner.run(split(4))) r.release();
    for (const h of again) h.release();
    expect(frames(5).filter((h) => again.some((o) => o.frame.buffer === h.frame.buffer))).toHaveLength(4);
  });

  it('the fault hook corrupts the gradient that would be sent: E_NONFINITE, and the next node is computed clean', () => {
    const runner = new TaskRunner(welcome, data, new FaultInjector({ kind: 'nan-at-step', step: 4 }, 'w'));
    const params = initParams(spec, 1);
    runner.setParams(2, params);
    expect(() => [...runner.run(split(4))]).toThrow(expect.objectContaining({ code: 'E_NONFINITE', message: 'step 4, node (1, 1): gradient[0] is NaN' }));
    // fired once: the same nodes again, through the view and through the frame
    const want = reference(runner, params, 4);
    let i = 0;
    for (const r of runner.run(split(4))) {
      expect(bits(r.grad)).toEqual(bits(want[i]));
      expect(bits(frameGrad(r.frame()))).toEqual(bits(want[i]));
      i++;
    }
    expect(i).toBe(2);
  });
});
