import { describe, expect, it } from 'vitest';
import { decode } from './codec.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import { EXAMPLE_PARAM_COUNT, exampleMessages } from './examples.js';
import { writeFrame } from './frame.js';
import { COORDINATOR_MESSAGE_TYPES, PAYLOADS, WORKER_MESSAGE_TYPES, type MessageType } from './messages.js';
import type { DecodeContext } from './validate.js';

const ctx: DecodeContext = { paramCount: EXAMPLE_PARAM_COUNT };

/** A frame of the example message of `type` with header fields replaced (undefined deletes). */
function frame(type: MessageType, patch: Record<string, unknown> = {}, payload?: ArrayBufferView): Uint8Array {
  const m = { ...(exampleMessages()[type] as unknown as Record<string, unknown>) };
  const spec = (PAYLOADS as Record<string, { field: string }>)[type];
  let body = payload;
  if (spec) {
    body ??= m[spec.field] as ArrayBufferView;
    delete m[spec.field];
  }
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete m[k];
    else m[k] = v;
  }
  return writeFrame(m, body);
}

function fails(bytes: Uint8Array, code: ProtocolErrorCode, text?: string, c: DecodeContext = ctx): ProtocolError {
  let err: unknown;
  try {
    decode(bytes, c);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProtocolError);
  const pe = err as ProtocolError;
  expect(pe.code, pe.message).toBe(code);
  if (text) expect(pe.message).toContain(text);
  return pe;
}

// Every required field of every type: a wrong-typed value and a missing value → E_FIELD naming it.
const REQUIRED: Record<MessageType, [string, unknown][]> = {
  hello: [['workerName', 7], ['host', false], ['pid', -1], ['kernels', 'js']],
  welcome: [['workerId', 1], ['runId', []], ['model', 'mlp'], ['data', null], ['fingerprint', 'A'.repeat(64)], ['run', 3], ['paramCount', 0]],
  ready: [['fingerprint', 'abc'], ['loadMs', 'fast']],
  params: [['version', 1.5]],
  task: [['step', -2], ['version', 'x'], ['epoch', 2 ** 32], ['leafLo', 4], ['leafHi', 0], ['leafCount', 12], ['batchSize', 0]],
  result: [['step', true], ['nodeLo', 1], ['nodeSize', 3], ['samples', 0], ['lossSum', 'NaN'], ['correct', 5], ['computeMs', -1]],
  params_ref: [['version', -1], ['slot', 64], ['seq', 3]],
  result_ref: [['step', true], ['nodeLo', 1], ['nodeSize', 3], ['samples', 0], ['lossSum', 'NaN'], ['correct', 5], ['computeMs', -1], ['slot', 1.5], ['seq', 0]],
  heartbeat: [['t', -5]],
  error: [['code', 'lower case'], ['message', 5], ['fatal', 'yes']],
  bye: [['reason', 0]],
};

describe('field validation', () => {
  for (const [type, fields] of Object.entries(REQUIRED) as [MessageType, [string, unknown][]][]) {
    for (const [field, bad] of fields) {
      it(`${type}.${field}: wrong value ${JSON.stringify(bad)} and missing → E_FIELD naming the field`, () => {
        const e = fails(frame(type, { [field]: bad }), 'E_FIELD', `${type}.${field}`);
        expect(e.field).toBe(`${type}.${field}`);
        fails(frame(type, { [field]: undefined }), 'E_FIELD', `${type}.${field}`);
      });
    }
  }

  it('nested fields name their path', () => {
    const run = exampleMessages().welcome.run;
    fails(frame('welcome', { run: { ...run, kernel: 'cuda' } }), 'E_FIELD', 'welcome.run.kernel: expected one of js, wasm');
    fails(frame('welcome', { run: { ...run, leafSize: 0 } }), 'E_FIELD', 'welcome.run.leafSize');
    fails(frame('welcome', { run: { ...run, seed: 2 ** 32 } }), 'E_FIELD', 'welcome.run.seed');
    fails(frame('hello', { kernels: ['js', 3] }), 'E_FIELD', 'hello.kernels[1]');
  });

  it('the model is checked by core and errors name the model field', () => {
    const model = { ...exampleMessages().welcome.model, inputSize: 0 };
    fails(frame('welcome', { model }), 'E_FIELD', 'welcome.model.inputSize');
  });

  it('welcome.paramCount must match the model', () => {
    fails(frame('welcome', { paramCount: 24 }), 'E_FIELD', 'welcome.paramCount: expected 23');
  });

  it('ranges between fields: leafLo < leafHi ≤ leafCount ≤ batchSize, nodeLo aligned, correct ≤ samples', () => {
    fails(frame('task', { leafLo: 4, leafHi: 4 }), 'E_FIELD', 'task.leafLo');
    fails(frame('task', { leafHi: 5 }), 'E_FIELD', 'task.leafHi');
    fails(frame('task', { leafCount: 12 }), 'E_FIELD', 'task.leafCount');
    fails(frame('result', { nodeLo: 6, nodeSize: 4 }), 'E_FIELD', 'result.nodeLo: expected a multiple of nodeSize 4');
    fails(frame('result', { nodeSize: 2 ** 32 }), 'E_FIELD', 'result.nodeSize');
    fails(frame('result', { correct: 5, samples: 4 }), 'E_FIELD', 'result.correct');
    fails(frame('result', { lossSum: Infinity }), 'E_FIELD', 'result.lossSum');
  });

  it('optional fields are type-checked when present', () => {
    fails(frame('hello', { token: 5 }), 'E_FIELD', 'hello.token');
    fails(frame('hello', { resumeId: '' }), 'E_FIELD', 'hello.resumeId');
    fails(frame('heartbeat', { step: 'now' }), 'E_FIELD', 'heartbeat.step');
    fails(frame('error', { step: -1 }), 'E_FIELD', 'error.step');
  });

  it('string limits are in UTF-8 bytes and give E_TOO_LARGE', () => {
    expect(decode(frame('hello', { workerName: 'é'.repeat(32) }))).toMatchObject({ workerName: 'é'.repeat(32) });
    fails(frame('hello', { workerName: 'é'.repeat(33) }), 'E_TOO_LARGE', 'hello.workerName: expected at most 64 bytes, got 66');
    fails(frame('error', { message: 'x'.repeat(4097) }), 'E_TOO_LARGE', 'error.message');
    fails(frame('hello', { kernels: new Array(17).fill('js') }), 'E_TOO_LARGE', 'hello.kernels');
  });
});

describe('version and type', () => {
  it('a version mismatch names both versions, even for a type this version does not know', () => {
    const e = fails(writeFrame({ type: 'gradient_fp16', v: 2 }), 'E_VERSION', 'v2');
    expect(e.message).toContain('v1');
    expect(e.closeCode).toBe(4001);
    fails(frame('hello', { v: 0 }), 'E_VERSION');
  });

  it('a missing or non-integer v is E_FIELD', () => {
    fails(frame('bye', { v: undefined }), 'E_FIELD', 'message.v');
    fails(frame('bye', { v: '1' }), 'E_FIELD', 'message.v');
  });

  it('unknown types are E_TYPE', () => {
    fails(writeFrame({ type: 'gradient', v: 1 }), 'E_TYPE', '"gradient"');
    fails(writeFrame({ type: 7, v: 1 }), 'E_TYPE');
    fails(writeFrame({ type: '__proto__', v: 1 }), 'E_TYPE');
  });

  it('ctx.accept refuses types the peer must not send', () => {
    fails(frame('welcome'), 'E_TYPE', "'welcome' is not accepted", { accept: WORKER_MESSAGE_TYPES });
    fails(frame('result'), 'E_TYPE', "'result' is not accepted", { ...ctx, accept: COORDINATOR_MESSAGE_TYPES });
    expect(decode(frame('result'), { ...ctx, accept: WORKER_MESSAGE_TYPES }).type).toBe('result');
  });
});

describe('payload lengths and contents', () => {
  it('params and result lengths are checked against ctx.paramCount, naming expected and actual', () => {
    const short = new Float32Array(EXAMPLE_PARAM_COUNT - 1);
    const e = fails(frame('params', {}, short), 'E_LENGTH', `expected ${EXAMPLE_PARAM_COUNT} float32 values, got ${EXAMPLE_PARAM_COUNT - 1}`);
    expect(e.field).toBe('params.data');
    fails(frame('result', {}, new Float32Array(EXAMPLE_PARAM_COUNT + 1)), 'E_LENGTH', 'result.grad');
    fails(frame('params', {}, new Float32Array(0)), 'E_LENGTH', 'params.data', {});
  });

  it('a message without payload must not carry one', () => {
    fails(frame('bye', {}, new Float32Array(1)), 'E_LENGTH', 'bye: this message carries no payload, got 4 bytes');
  });

  it('task indices: non-negative, below datasetSize, at most maxIndices, consistent with leafSize', () => {
    const good = Int32Array.from([17, 3, 99, 0, 42]);
    expect(decode(frame('task'), { datasetSize: 100, leafSize: 3, maxIndices: 5 }).type).toBe('task');
    fails(frame('task', {}, Int32Array.from([17, 3, -1, 0, 42])), 'E_FIELD', 'task.indices[2]', {});
    fails(frame('task'), 'E_FIELD', 'task.indices[2]: expected a sample index in [0, 99), got 99', { datasetSize: 99 });
    fails(frame('task'), 'E_TOO_LARGE', 'at most 4 indices', { maxIndices: 4 });
    fails(frame('task', {}, good.subarray(0, 4)), 'E_LENGTH', 'expected 5 indices for leaves [2, 4), got 4', { leafSize: 3 });
    fails(frame('task'), 'E_FIELD', 'task.leafCount', { leafSize: 2 });
    fails(frame('task', {}, new Int32Array(12)), 'E_LENGTH', 'task.indices', {});
    fails(frame('task', {}, new Float32Array(1)), 'E_LENGTH', 'task.indices', {});
  });
});
