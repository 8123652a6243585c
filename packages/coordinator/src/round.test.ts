import { type SamplerBatch, createWasmKernels, wasmSupported } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { Round } from './round.js';

const P = 37;
const batch: SamplerBatch = { indices: Int32Array.from({ length: 16 }, (_, i) => i), epoch: 0, batchInEpoch: 0, batchesPerEpoch: 1 };

function round(opts: { scan?: (n: number, x: Float32Array) => number } = {}) {
  const taken: Float32Array[] = [];
  const released: Float32Array[] = [];
  const scanned: Float32Array[] = [];
  const r = new Round({
    step: 1,
    version: 1,
    batch,
    leafSize: 8,
    paramCount: P,
    takeBuffer: () => {
      const b = new Float32Array(P);
      taken.push(b);
      return b;
    },
    releaseBuffer: (b) => released.push(b),
    scan: (n, x) => {
      scanned.push(x);
      return (opts.scan ?? ((_n: number, y: Float32Array) => y.findIndex((v) => !Number.isFinite(v))))(n, x);
    },
  });
  r.assign(['a', 'b']);
  return { r, taken, released, scanned };
}

const result = (nodeLo: number, grad: Float32Array) => ({ step: 1, nodeLo, nodeSize: 1, samples: 8, lossSum: 1, correct: 2, computeMs: 1, grad });

describe('Round.accept', () => {
  it('copies a result it does not own into a pooled buffer and scans the copy, not the frame', () => {
    const { r, taken, scanned } = round();
    const g = new Float32Array(P).fill(0.5);
    expect(r.accept('a', result(0, g)).status).toBe('accepted');
    expect(taken).toHaveLength(1);
    expect(scanned).toEqual([taken[0]]);
    expect(scanned[0] === g).toBe(false);
    g.fill(7); // the frame can be reused: the round holds its own copy
    expect(r.accept('b', result(1, new Float32Array(P).fill(0.25))).status).toBe('accepted');
    expect(r.complete).toBe(true);
    expect(Array.from(r.gradSum())).toEqual(new Array(P).fill(0.75));
  });

  it('refuses a non-finite gradient naming the element, gives its buffer back and leaves the round as it was', () => {
    const { r, taken, released } = round();
    const g = new Float32Array(P).fill(1);
    g[11] = Number.NEGATIVE_INFINITY;
    const v = r.accept('a', result(0, g));
    expect(v).toMatchObject({ status: 'invalid', code: 'E_NONFINITE' });
    expect((v as { reason: string }).reason).toMatch(/gradient element 11 is -Infinity/);
    expect(released).toEqual([taken[0]]);
    // the node is still owed: a good result for it is accepted
    expect(r.accept('a', result(0, new Float32Array(P).fill(1))).status).toBe('accepted');
  });

  it.runIf(wasmSupported())('works with a kernels scan in WebAssembly memory (the coordinator reduction kernels)', () => {
    const K = createWasmKernels({ memoryMiB: 1 });
    const { r } = round({ scan: K.firstNonFinite });
    const g = new Float32Array(P).fill(1);
    g[P - 1] = Number.NaN;
    expect((r.accept('a', result(0, g)) as { reason: string }).reason).toMatch(new RegExp(`gradient element ${P - 1} is NaN`));
  });
});
