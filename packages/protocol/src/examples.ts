import type { ModelSpec } from '@dptrain/core';
import { PROTOCOL_VERSION, type Message, type MessageOf, type MessageType } from './messages.js';

/** A small model (4-3-2, softmax) whose parameter count is EXAMPLE_PARAM_COUNT. */
export const EXAMPLE_MODEL: ModelSpec = {
  inputSize: 4,
  layers: [
    { units: 3, activation: 'relu' },
    { units: 2, activation: 'softmax' },
  ],
  loss: 'softmax_cross_entropy',
};
export const EXAMPLE_PARAM_COUNT = 23;

/**
 * One valid message of every type, for tests, fuzzing, benchmarks and documentation.
 * Payloads have EXAMPLE_PARAM_COUNT floats (including -0 and subnormals) and 5 indices
 * (leaves [2, 4) of a batch of 11 with leafSize 3: rows 6..10).
 */
export function exampleMessages(): { [T in MessageType]: MessageOf<T> } {
  const v = PROTOCOL_VERSION;
  const floats = (k: number) => {
    const a = new Float32Array(EXAMPLE_PARAM_COUNT);
    for (let i = 0; i < a.length; i++) a[i] = Math.fround(Math.sin(i * k + 1) * 0.5);
    a[1] = -0;
    a[2] = 1e-40;
    a[3] = -3.4e38;
    return a;
  };
  return {
    hello: { type: 'hello', v, workerName: 'w-1', host: 'node-a', pid: 4242, kernels: ['js', 'wasm'], token: 's3cret', resumeId: 'wk-7' },
    welcome: {
      type: 'welcome',
      v,
      workerId: 'wk-7',
      runId: 'run-20240101',
      model: EXAMPLE_MODEL,
      data: 'mnist',
      fingerprint: 'a'.repeat(32) + '0123456789abcdef'.repeat(2),
      run: { seed: 1234, leafSize: 3, kernel: 'js', dropout: false },
      paramCount: EXAMPLE_PARAM_COUNT,
    },
    ready: { type: 'ready', v, fingerprint: 'a'.repeat(32) + '0123456789abcdef'.repeat(2), loadMs: 12.5 },
    params: { type: 'params', v, version: 9, data: floats(1) },
    params_ref: { type: 'params_ref', v, version: 9, slot: 1, seq: 18 },
    task: { type: 'task', v, step: 8, version: 9, epoch: 0, leafLo: 2, leafHi: 4, leafCount: 4, batchSize: 11, indices: Int32Array.from([17, 3, 99, 0, 42]) },
    result: { type: 'result', v, step: 8, nodeLo: 2, nodeSize: 2, samples: 4, lossSum: 2.7725887222397811, correct: 3, computeMs: 0.75, grad: floats(2) },
    result_ref: { type: 'result_ref', v, step: 8, nodeLo: 2, nodeSize: 2, samples: 4, lossSum: 2.7725887222397811, correct: 3, computeMs: 0.75, slot: 0, seq: 6 },
    heartbeat: { type: 'heartbeat', v, t: 1700000000123, step: 8 },
    error: { type: 'error', v, code: 'E_WORKER', message: 'out of memory while computing leaf 3', fatal: false, step: 8 },
    bye: { type: 'bye', v, reason: 'shutdown' },
  };
}

/** The examples as a list. */
export function exampleMessageList(): Message[] {
  return Object.values(exampleMessages());
}
