/**
 * Throughput of the protocol codec on parameter-sized messages, side by side with a
 * plain memory copy of the same bytes: encode / decode of a `params` message and of a
 * `result` message (plus the worker's zero-copy ResultFrame.finish), against
 * Float32Array.set and Buffer.copy. GB/s = 1e9 bytes per second of frame bytes.
 */
import { Rng } from '@dptrain/core';
import { ResultFrame, decode, encode } from '@dptrain/protocol';
import { type Summary, median, secondsPerCall, summarize, timeMs } from './util.js';

/** What was timed, GB/s per sample. */
export interface CodecThroughput {
  paramCount: number;
  /** Frame sizes, bytes (payload 4 × paramCount plus prefix, header and padding). */
  frameBytes: { params: number; result: number };
  gbPerSec: {
    paramsEncode: Summary;
    paramsDecode: Summary;
    /** One encode plus one decode. */
    paramsRoundTrip: Summary;
    resultEncode: Summary;
    /** The worker's path: gradient computed into the frame, header written in front. */
    resultFrameFinish: Summary;
    resultDecode: Summary;
    resultRoundTrip: Summary;
    /** ResultFrame.finish plus decode: the result's path in a run. */
    resultFrameRoundTrip: Summary;
    float32ArraySet: Summary;
    bufferCopy: Summary;
  };
}

const RESULT_HEADER = { step: 1, nodeLo: 0, nodeSize: 1, samples: 32, lossSum: 73.5, correct: 12, computeMs: 3.25 };

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Time the codec on `paramCount` float32 values (`runs` samples each, every sample at
 * least ~20 ms). Checks first that both messages round-trip bit-exactly (throws if not).
 */
export function codecThroughput(paramCount = 1_000_000, runs = 11): CodecThroughput {
  const rng = new Rng(1);
  const data = new Float32Array(paramCount);
  for (let i = 0; i < paramCount; i++) data[i] = rng.nextNormal();
  const params = encode({ type: 'params', version: 7, data });
  const result = encode({ type: 'result', ...RESULT_HEADER, grad: data });
  const ctx = { paramCount, maxIndices: 0 };
  const p = decode(params, ctx);
  const r = decode(result, ctx);
  if (p.type !== 'params' || !sameBits(p.data, data) || r.type !== 'result' || !sameBits(r.grad, data)) {
    throw new Error('codec round trip changed the payload');
  }
  const rf = new ResultFrame(paramCount);
  rf.grad.set(data);
  const finished = rf.finish(RESULT_HEADER);
  const f = decode(finished, ctx);
  if (f.type !== 'result' || !sameBits(f.grad, data)) throw new Error('ResultFrame round trip changed the payload');

  const dst = new Float32Array(paramCount);
  const srcBuf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const dstBuf = Buffer.alloc(data.byteLength);
  let sink = 0;
  // every operation is sampled once per round, rounds interleaved (machine noise hits them all)
  const ops: Array<() => void> = [
    () => (sink ^= encode({ type: 'params', version: 7, data }).length),
    () => (sink ^= decode(params, ctx).type.length),
    () => (sink ^= encode({ type: 'result', ...RESULT_HEADER, grad: data }).length),
    () => (sink ^= rf.finish(RESULT_HEADER).length),
    () => (sink ^= decode(result, ctx).type.length),
    () => dst.set(data),
    () => (sink ^= srcBuf.copy(dstBuf)),
  ];
  const inner = ops.map((op) => {
    const perCall = median(secondsPerCall(op, 3, 10, 60));
    return Math.max(1, Math.ceil(0.02 / perCall));
  });
  const secs = ops.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    ops.forEach((op, i) => secs[i].push(timeMs(() => { for (let q = 0; q < inner[i]; q++) op(); }) / inner[i] / 1000));
  }
  if (sink === 0.5) console.error(sink); // keep the results alive
  const [pe, pd, re, rff, rd, fs, bc] = secs;
  const gb = (bytes: number, s: number[]) => s.map((x) => bytes / x / 1e9);
  const pair = (a: number[], b: number[]) => a.map((x, i) => x + b[i]);
  return {
    paramCount,
    frameBytes: { params: params.length, result: result.length },
    gbPerSec: {
      paramsEncode: summarize(gb(params.length, pe)),
      paramsDecode: summarize(gb(params.length, pd)),
      paramsRoundTrip: summarize(gb(params.length, pair(pe, pd))),
      resultEncode: summarize(gb(result.length, re)),
      resultFrameFinish: summarize(gb(finished.length, rff)),
      resultDecode: summarize(gb(result.length, rd)),
      resultRoundTrip: summarize(gb(result.length, pair(re, rd))),
      resultFrameRoundTrip: summarize(gb(finished.length, pair(rff, rd))),
      float32ArraySet: summarize(gb(data.byteLength, fs)),
      bufferCopy: summarize(gb(data.byteLength, bc)),
    },
  };
}
