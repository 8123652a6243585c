import { DptrainError, KERNEL_NAMES, firstNonFinite, paramLayout, validateModelSpec, type KernelName, type ModelSpec } from '@dptrain/core';
import { ProtocolError } from './errors.js';
import { bool, fieldError, has, int, isObj, num, obj, oneOf, str, type Obj } from './fields.js';
import {
  isMessageType,
  LIMITS,
  PROTOCOL_VERSION,
  type ErrorMessage,
  type HeartbeatMessage,
  type HelloMessage,
  type Message,
  type MessageType,
  type ReadyMessage,
  type ResultMessage,
  type TaskMessage,
  type WelcomeMessage,
} from './messages.js';

/** What the receiver knows about the session; every field is optional and enables more checks. */
export interface DecodeContext {
  /** Expected length of params.data and result.grad (E_LENGTH otherwise). */
  paramCount?: number;
  /** Most task indices accepted (E_TOO_LARGE otherwise). */
  maxIndices?: number;
  /** Task indices must lie in [0, datasetSize). */
  datasetSize?: number;
  /** With it, task.leafCount and the number of indices are checked against batchSize. */
  leafSize?: number;
  /** Refuse larger frames with E_TOO_LARGE; defaults to maxFrameBytes(paramCount, maxIndices) when both are given. */
  maxFrameBytes?: number;
  /** Message types accepted from this peer (E_TYPE otherwise), e.g. WORKER_MESSAGE_TYPES. */
  accept?: readonly MessageType[];
  /** Copy payloads instead of returning views over the input bytes. */
  copyPayload?: boolean;
  /**
   * Leave the NaN/±Infinity scan of params.data to the receiver, which must do it before
   * it uses the values (the worker scans them in its kernels' memory, after the one copy
   * it makes anyway, and reports E_NONFINITE as decode would). Everything else is checked.
   */
  receiverScansParams?: boolean;
  /**
   * The same for result.grad: the coordinator scans each gradient after copying it into
   * its reduction buffers (kernel memory, SIMD), before it is summed.
   */
  receiverScansResults?: boolean;
}

export interface ValidateOptions {
  /** Scan float payloads for NaN/±Infinity (default true; encode skips it for speed). */
  checkFinite?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;
/** Most slots a slot file may have (params and result files alike). */
export const MAX_SHM_SLOTS = 64;
const CODE = /^[A-Z][A-Z0-9_]*$/;
const KERNELS: readonly KernelName[] = KERNEL_NAMES;
const isPow2 = (n: number) => n >= 1 && n <= 2 ** 31 && (n & (n - 1)) === 0;

/** Index of the first NaN or ±Infinity in `a`, or -1 (core's scan, re-exported for the codec's users). */
export const findNonFinite: (a: Float32Array) => number = firstNonFinite;

/** Check `v`, then the type, then every field; return a fresh message holding only known fields. */
export function validateMessage(raw: unknown, ctx: DecodeContext = {}, opts: ValidateOptions = {}): Message {
  if (!isObj(raw)) throw new ProtocolError('E_DECODE', 'a message must be a map');
  const v = raw.v;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw fieldError('message.v', `the protocol version ${PROTOCOL_VERSION}`, v);
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError('E_VERSION', `protocol version mismatch: the peer speaks v${v}, this side speaks v${PROTOCOL_VERSION}`);
  }
  const type = raw.type;
  if (!isMessageType(type)) throw new ProtocolError('E_TYPE', `unknown message type ${typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : String(type)}`);
  if (ctx.accept && !ctx.accept.includes(type)) throw new ProtocolError('E_TYPE', `message type '${type}' is not accepted from this peer`);
  const p = type;
  const base = { type, v: PROTOCOL_VERSION } as const;
  switch (type) {
    case 'hello': {
      const kernels = raw.kernels;
      if (!Array.isArray(kernels)) throw fieldError('hello.kernels', 'an array of kernel names', kernels);
      if (kernels.length > LIMITS.kernels) throw new ProtocolError('E_TOO_LARGE', `hello.kernels: at most ${LIMITS.kernels} names, got ${kernels.length}`, { field: 'hello.kernels' });
      const ks = kernels.map((_, i) => str({ [`[${i}]`]: kernels[i] }, 'hello.kernels', `[${i}]`, 1, LIMITS.kernelName));
      const m: HelloMessage = {
        ...base,
        type,
        workerName: str(raw, p, 'workerName', 1, LIMITS.workerName),
        host: str(raw, p, 'host', 0, LIMITS.host),
        pid: int(raw, p, 'pid'),
        kernels: ks,
      };
      if (has(raw, 'token')) m.token = str(raw, p, 'token', 0, LIMITS.token);
      if (has(raw, 'resumeId')) m.resumeId = str(raw, p, 'resumeId', 1, LIMITS.id);
      return m;
    }
    case 'welcome': {
      const run = obj(raw, p, 'run');
      const model = checkModel(raw.model);
      const paramCount = int(raw, p, 'paramCount', 1, LIMITS.maxParamCount);
      const expected = paramLayout(model).total;
      if (paramCount !== expected) throw fieldError('welcome.paramCount', `${expected} (the parameter count of welcome.model)`, paramCount);
      const m: WelcomeMessage = {
        ...base,
        type,
        workerId: str(raw, p, 'workerId', 1, LIMITS.id),
        runId: str(raw, p, 'runId', 1, LIMITS.id),
        model,
        data: str(raw, p, 'data', 1, LIMITS.dataRef),
        fingerprint: str(raw, p, 'fingerprint', 64, 64, HEX64, '64 lower-case hex digits'),
        run: {
          seed: int(run, 'welcome.run', 'seed'),
          leafSize: int(run, 'welcome.run', 'leafSize', 1, LIMITS.maxLeafSize),
          kernel: oneOf(run, 'welcome.run', 'kernel', KERNELS),
          dropout: bool(run, 'welcome.run', 'dropout'),
        },
        paramCount,
      };
      if (has(raw, 'shm')) {
        const shm = obj(raw, p, 'shm');
        const dir = str(shm, 'welcome.shm', 'dir', 1, LIMITS.dataRef);
        if (!dir.startsWith('/') || dir.split('/').includes('..')) throw fieldError('welcome.shm.dir', 'an absolute directory path without ".." segments', dir);
        m.shm = {
          dir,
          nonce: str(shm, 'welcome.shm', 'nonce', 32, 32, HEX32, '32 lower-case hex digits'),
          resultSlots: int(shm, 'welcome.shm', 'resultSlots', 1, MAX_SHM_SLOTS),
        };
      }
      return m;
    }
    case 'ready': {
      const m: ReadyMessage = {
        ...base,
        type,
        fingerprint: str(raw, p, 'fingerprint', 64, 64, HEX64, '64 lower-case hex digits'),
        loadMs: num(raw, p, 'loadMs', 0),
      };
      if (has(raw, 'shm')) m.shm = bool(raw, p, 'shm');
      return m;
    }
    case 'params_ref':
      return { ...base, type, version: int(raw, p, 'version'), slot: int(raw, p, 'slot', 0, MAX_SHM_SLOTS - 1), seq: evenSeq(raw, p) };
    case 'params': {
      const version = int(raw, p, 'version');
      return { ...base, type, version, data: checkFloats(raw.data, 'params.data', ctx, ctx.receiverScansParams ? { ...opts, checkFinite: false } : opts) };
    }
    case 'result':
      return { ...base, type, ...resultFields(raw, p), grad: checkFloats(raw.grad, 'result.grad', ctx, ctx.receiverScansResults ? { ...opts, checkFinite: false } : opts) };
    case 'result_ref':
      return { ...base, type, ...resultFields(raw, p), slot: int(raw, p, 'slot', 0, MAX_SHM_SLOTS - 1), seq: evenSeq(raw, p) };
    case 'task':
      return checkTask(raw, ctx);
    case 'heartbeat': {
      const m: HeartbeatMessage = { ...base, type, t: num(raw, p, 't', 0) };
      if (has(raw, 'step')) m.step = int(raw, p, 'step');
      return m;
    }
    case 'error': {
      const m: ErrorMessage = {
        ...base,
        type,
        code: str(raw, p, 'code', 1, LIMITS.errorCode, CODE, 'like E_NAME'),
        message: str(raw, p, 'message', 0, LIMITS.errorMessage),
        fatal: bool(raw, p, 'fatal'),
      };
      if (has(raw, 'step')) m.step = int(raw, p, 'step');
      return m;
    }
    case 'bye':
      return { ...base, type, reason: str(raw, p, 'reason', 0, LIMITS.byeReason) };
  }
}

/** The fields a result and a result_ref share. */
function resultFields(raw: Obj, p: string): Omit<ResultMessage, 'type' | 'v' | 'grad'> {
  const nodeLo = int(raw, p, 'nodeLo');
  const nodeSize = int(raw, p, 'nodeSize', 1, 2 ** 31);
  if (!isPow2(nodeSize)) throw fieldError(`${p}.nodeSize`, 'a power of two in [1, 2147483648]', nodeSize);
  if (nodeLo % nodeSize !== 0) throw fieldError(`${p}.nodeLo`, `a multiple of nodeSize ${nodeSize}`, nodeLo);
  const samples = int(raw, p, 'samples', 1);
  return {
    step: int(raw, p, 'step'),
    nodeLo,
    nodeSize,
    samples,
    lossSum: num(raw, p, 'lossSum'),
    correct: int(raw, p, 'correct', 0, samples),
    computeMs: num(raw, p, 'computeMs', 0),
  };
}

/** A slot sequence number: even (an odd one marks a write in progress), ≥ 2. */
function evenSeq(raw: Obj, p: string): number {
  const seq = int(raw, p, 'seq', 2);
  if (seq % 2 !== 0) throw fieldError(`${p}.seq`, 'an even integer in [2, 4294967295] (odd marks a write in progress)', seq);
  return seq;
}

function checkModel(model: unknown): ModelSpec {
  try {
    return validateModelSpec(model);
  } catch (e) {
    if (e instanceof DptrainError) {
      const field = 'field' in e && typeof e.field === 'string' ? `welcome.${e.field}` : 'welcome.model';
      throw new ProtocolError('E_FIELD', `welcome.${e.message}`, { field, cause: e });
    }
    throw new ProtocolError('E_FIELD', `welcome.model: ${String(e)}`, { field: 'welcome.model', cause: e });
  }
}

function checkFloats(a: unknown, path: string, ctx: DecodeContext, opts: ValidateOptions): Float32Array {
  if (!(a instanceof Float32Array)) throw fieldError(path, 'a Float32Array', a);
  if (ctx.paramCount !== undefined && a.length !== ctx.paramCount) {
    throw new ProtocolError('E_LENGTH', `${path}: expected ${ctx.paramCount} float32 values, got ${a.length}`, { field: path });
  }
  if (a.length < 1) throw new ProtocolError('E_LENGTH', `${path}: expected at least 1 float32 value, got 0`, { field: path });
  if (opts.checkFinite !== false) {
    const bad = findNonFinite(a);
    if (bad >= 0) throw new ProtocolError('E_NONFINITE', `${path}[${bad}] is ${a[bad]}; payloads must be finite`, { field: `${path}[${bad}]` });
  }
  return a;
}

function checkTask(raw: Obj, ctx: DecodeContext): TaskMessage {
  const p = 'task';
  const batchSize = int(raw, p, 'batchSize', 1);
  const leafCount = int(raw, p, 'leafCount', 1, batchSize);
  const leafHi = int(raw, p, 'leafHi', 1, leafCount);
  const leafLo = int(raw, p, 'leafLo', 0, leafHi - 1);
  const indices = raw.indices;
  if (!(indices instanceof Int32Array)) throw fieldError('task.indices', 'an Int32Array', indices);
  const n = indices.length;
  if (ctx.maxIndices !== undefined && n > ctx.maxIndices) {
    throw new ProtocolError('E_TOO_LARGE', `task.indices: at most ${ctx.maxIndices} indices accepted, got ${n}`, { field: 'task.indices' });
  }
  if (ctx.leafSize !== undefined) {
    const ls = ctx.leafSize;
    const L = Math.ceil(batchSize / ls);
    if (leafCount !== L) throw fieldError('task.leafCount', `ceil(batchSize ${batchSize} / leafSize ${ls}) = ${L}`, leafCount);
    const want = Math.min(leafHi * ls, batchSize) - leafLo * ls;
    if (n !== want) throw new ProtocolError('E_LENGTH', `task.indices: expected ${want} indices for leaves [${leafLo}, ${leafHi}), got ${n}`, { field: 'task.indices' });
  } else if (n < leafHi - leafLo || n > batchSize) {
    throw new ProtocolError('E_LENGTH', `task.indices: expected between ${leafHi - leafLo} and ${batchSize} indices, got ${n}`, { field: 'task.indices' });
  }
  const hi = ctx.datasetSize ?? 2 ** 31;
  for (let i = 0; i < n; i++) {
    const x = indices[i];
    if (x < 0 || x >= hi) throw fieldError(`task.indices[${i}]`, `a sample index in [0, ${hi})`, x);
  }
  const m: TaskMessage = {
    type: 'task',
    v: PROTOCOL_VERSION,
    step: int(raw, p, 'step'),
    version: int(raw, p, 'version'),
    epoch: int(raw, p, 'epoch'),
    leafLo,
    leafHi,
    leafCount,
    batchSize,
    indices,
  };
  if (has(raw, 'resultsRead')) m.resultsRead = int(raw, p, 'resultsRead');
  if (has(raw, 'paramsRef')) {
    const ref = obj(raw, p, 'paramsRef');
    m.paramsRef = { slot: int(ref, 'task.paramsRef', 'slot', 0, MAX_SHM_SLOTS - 1), seq: evenSeq(ref, 'task.paramsRef') };
  }
  return m;
}
