import { encode, encodeResult, exampleMessages, maxFrameBytes, writeFrame } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { decodeWorkerFrame } from './intake.js';

const P = 23;
const LIMIT = maxFrameBytes(P, 0);
const header = { step: 4, nodeLo: 2, nodeSize: 2, samples: 16, lossSum: 3.5, correct: 9, computeMs: 1 };
const grad = (bad?: number) => {
  const g = new Float32Array(P).fill(0.25);
  if (bad !== undefined) g[bad] = bad % 2 ? Number.NEGATIVE_INFINITY : Number.NaN;
  return g;
};

describe('decodeWorkerFrame', () => {
  it('decodes a valid worker frame', () => {
    const got = decodeWorkerFrame(encodeResult(header, grad()), P, LIMIT);
    expect(got.ok && got.msg.type === 'result' && got.msg.step).toBe(4);
    expect('nonFinite' in got).toBe(false);
  });

  it('leaves the gradient scan to the round: a NaN/Inf gradient decodes as it was sent, unflagged', () => {
    for (const bad of [6, 5]) {
      const got = decodeWorkerFrame(encodeResult(header, grad(bad)), P, LIMIT);
      if (!got.ok || got.msg.type !== 'result') throw new Error('expected a decoded result');
      expect('nonFinite' in got).toBe(false);
      expect(Number.isFinite(got.msg.grad[bad])).toBe(false);
      expect(got.msg.grad[0]).toBe(0.25);
    }
  });

  it('still decodes a result with a NaN loss, flagged, so that its sender, step and node are known', () => {
    // written raw: encode itself refuses a non-finite lossSum
    const got = decodeWorkerFrame(writeFrame({ type: 'result', v: 1, ...header, lossSum: Number.NaN }, grad()), P, LIMIT);
    if (!got.ok || !('nonFinite' in got)) throw new Error('expected a flagged result');
    expect(got.nonFinite.code).toBe('E_NONFINITE');
    expect(got.nonFinite.message).toBe('result.lossSum is NaN; it must be finite');
    expect([got.msg.step, got.msg.nodeLo, got.msg.nodeSize, Number.isNaN(got.msg.lossSum)]).toEqual([4, 2, 2, true]);
    expect(got.msg.grad.length).toBe(P);
  });

  it('refuses coordinator-only types, wrong lengths and garbage, never throwing', () => {
    const params = decodeWorkerFrame(encode(exampleMessages().params), P, LIMIT);
    expect(!params.ok && params.error.code).toBe('E_TYPE');
    const short = decodeWorkerFrame(encodeResult(header, new Float32Array(P - 1)), P, LIMIT);
    expect(!short.ok && short.error.code).toBe('E_LENGTH');
    const junk = decodeWorkerFrame(Uint8Array.from([1, 2, 3]), P, LIMIT);
    expect(!junk.ok && junk.error.code).toBe('E_DECODE');
    const big = decodeWorkerFrame(new Uint8Array(LIMIT + 1), P, LIMIT);
    expect(!big.ok && big.error.code).toBe('E_TOO_LARGE');
    // a non-finite number elsewhere is a plain field error
    const beat = decodeWorkerFrame(writeFrame({ type: 'heartbeat', v: 1, t: Number.NaN }), P, LIMIT);
    expect(!beat.ok && [beat.error.code, beat.error.message]).toEqual(['E_FIELD', 'heartbeat.t: expected a finite number ≥ 0, got NaN']);
  });
});
