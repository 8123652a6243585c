import type { KernelName, ModelSpec } from '@dptrain/core';

/** The protocol version every message carries in `v`. Bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1;
export type ProtocolVersion = typeof PROTOCOL_VERSION;

/** Size limits enforced by encode and decode (strings are measured in UTF-8 bytes). */
export const LIMITS = {
  /** Bytes of msgpack header plus padding, i.e. payloadOffset - FRAME_PREFIX_BYTES. */
  maxHeaderBytes: 65536,
  /** Largest parameter count a welcome may announce (2^28 floats = 1 GiB). */
  maxParamCount: 268435456,
  /** Largest leaf size a welcome may announce. */
  maxLeafSize: 16777216,
  workerName: 64,
  host: 255,
  token: 1024,
  id: 128,
  dataRef: 1024,
  kernelName: 32,
  kernels: 16,
  errorCode: 64,
  errorMessage: 4096,
  byeReason: 1024,
} as const;

/** worker → coordinator: first message after connecting. */
export interface HelloMessage {
  type: 'hello';
  v: ProtocolVersion;
  /** Human-readable name, 1–64 bytes. */
  workerName: string;
  /** Host name, 0–255 bytes. */
  host: string;
  /** Process id (u32). */
  pid: number;
  /** Kernel names the worker can run, e.g. ['js', 'wasm'] (0–16 names of 1–32 bytes). */
  kernels: string[];
  /** Shared secret, if the coordinator requires one (≤ 1024 bytes). */
  token?: string;
  /** The workerId of a previous session this worker asks to resume (1–128 bytes). */
  resumeId?: string;
}

/** Run settings every worker must apply identically. */
export interface RunSettings {
  /** Run seed (u32); per-sample streams (dropout) are derived from it. */
  seed: number;
  /** Samples per leaf, 1–16777216. */
  leafSize: number;
  /** The kernel implementation every worker must use. */
  kernel: KernelName;
  /** Whether dropout is applied during training. */
  dropout: boolean;
}

/** coordinator → worker: accepts the hello and describes the run. */
export interface WelcomeMessage {
  type: 'welcome';
  v: ProtocolVersion;
  workerId: string;
  runId: string;
  model: ModelSpec;
  /** Dataset reference, e.g. 'mnist' (1–1024 bytes). */
  data: string;
  /** Lower-case hex SHA-256 (64 chars) of the training data, as core computes it. */
  fingerprint: string;
  run: RunSettings;
  /** Number of parameters; equals paramLayout(model).total. */
  paramCount: number;
  /**
   * Offer of the shared-memory data plane (see PROTOCOL.md §3.10), made only to workers
   * connected over loopback: the run's directory of slot files and the nonce written in
   * their headers. A worker that opens both its files and finds the nonce answers
   * `ready.shm: true`; then params and gradients travel through the files and only the
   * small `params_ref` / `result_ref` messages through the socket.
   */
  shm?: ShmOffer;
}

/** Where a worker on the coordinator's host finds the run's slot files. */
export interface ShmOffer {
  /** Absolute directory path (1–1024 bytes) holding `params` and `<workerId>.res`. */
  dir: string;
  /** 32 lower-case hex digits, also written in each file's header. */
  nonce: string;
  /** Slots in the worker's result file (1–64). */
  resultSlots: number;
}

/** worker → coordinator: data loaded and checked. */
export interface ReadyMessage {
  type: 'ready';
  v: ProtocolVersion;
  /** Fingerprint the worker computed from its own copy of the data. */
  fingerprint: string;
  /** Time spent loading the data, ms (finite, ≥ 0). */
  loadMs: number;
  /** True: the worker took the welcome's shm offer (opened both files, checked the nonce). */
  shm?: boolean;
}

/** coordinator → worker: the parameters of one version. Payload: paramCount float32. */
export interface ParamsMessage {
  type: 'params';
  v: ProtocolVersion;
  /** Parameter version (u32), bumped by every optimizer step. */
  version: number;
  data: Float32Array;
}

/**
 * coordinator → worker, shared-memory data plane: the parameters of `version` are in slot
 * `slot` of the params file, written with sequence number `seq`. No payload.
 */
export interface ParamsRefMessage {
  type: 'params_ref';
  v: ProtocolVersion;
  version: number;
  /** Slot index in the params file (0–63). */
  slot: number;
  /** Even sequence number the slot header must show before and after the read. */
  seq: number;
}

/** coordinator → worker: compute leaves [leafLo, leafHi) of a step. Payload: int32 sample indices. */
export interface TaskMessage {
  type: 'task';
  v: ProtocolVersion;
  step: number;
  /** Parameter version to use; the worker must hold it. */
  version: number;
  epoch: number;
  leafLo: number;
  leafHi: number;
  /** L, the number of leaves in the step: ceil(batchSize / leafSize). */
  leafCount: number;
  /** B, the global batch size of the step. */
  batchSize: number;
  /** Sample indices of batch rows leafLo·leafSize … min(leafHi·leafSize, B) − 1, in order. */
  indices: Int32Array;
  /**
   * Shared-memory data plane only: the params of `version` are in this slot of the params
   * file (as a params_ref would say); the worker reads them before computing. Saves a
   * separate params_ref message (and a wake-up of the worker) per step.
   */
  paramsRef?: { slot: number; seq: number };
  /**
   * Shared-memory data plane only: the highest result_ref seq of this worker's session the
   * coordinator has dealt with (read, or dropped unread); slots written with a seq up to it
   * may be rewritten. A worker never rewrites a slot not yet dealt with (it sends a frame).
   */
  resultsRead?: number;
}

/** worker → coordinator: the reduced gradient of one canonical tree node. Payload: paramCount float32. */
export interface ResultMessage {
  type: 'result';
  v: ProtocolVersion;
  step: number;
  /** First leaf of the node (a multiple of nodeSize). */
  nodeLo: number;
  /** Leaves in the node (a power of two). */
  nodeSize: number;
  /** Samples in the node (≥ 1). */
  samples: number;
  /** Sum of the per-sample losses (float64, finite). */
  lossSum: number;
  /** Correctly classified samples (≤ samples). */
  correct: number;
  /** Compute time for the node, ms. */
  computeMs: number;
  /** Gradient sum over the node's samples (not divided). */
  grad: Float32Array;
}

/**
 * worker → coordinator, shared-memory data plane: a result whose gradient is in slot
 * `slot` of the worker's result file, written with sequence number `seq`. No payload.
 */
export interface ResultRefMessage extends Omit<ResultMessage, 'type' | 'grad'> {
  type: 'result_ref';
  /** Slot index in the worker's result file (below welcome.shm.resultSlots). */
  slot: number;
  /** Even sequence number the slot header must show before and after the read. */
  seq: number;
}

/** Either direction: liveness. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  v: ProtocolVersion;
  /** Sender's wall clock, ms since the epoch (finite, ≥ 0). */
  t: number;
  /** Step the sender is on, if any. */
  step?: number;
}

/** Either direction: a failure, with a stable code. */
export interface ErrorMessage {
  type: 'error';
  v: ProtocolVersion;
  /** An error code such as E_DATA_MISMATCH (pattern [A-Z][A-Z0-9_]*, ≤ 64 bytes). */
  code: string;
  /** Human-readable text, ≤ 4096 bytes. */
  message: string;
  /** True if the sender is about to close the connection. */
  fatal: boolean;
  /** Step the error relates to, if any. */
  step?: number;
}

/** Either direction: orderly goodbye before closing. */
export interface ByeMessage {
  type: 'bye';
  v: ProtocolVersion;
  /** Why (≤ 1024 bytes), e.g. 'run finished', 'shutdown'. */
  reason: string;
}

export type Message =
  | HelloMessage
  | WelcomeMessage
  | ReadyMessage
  | ParamsMessage
  | ParamsRefMessage
  | TaskMessage
  | ResultMessage
  | ResultRefMessage
  | HeartbeatMessage
  | ErrorMessage
  | ByeMessage;

export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** A message as a sender builds it: `v` may be left out (encode fills it in). */
export type MessageInit = Message extends infer M ? (M extends Message ? Omit<M, 'v'> & { v?: ProtocolVersion } : never) : never;

export const MESSAGE_TYPES: readonly MessageType[] = ['hello', 'welcome', 'ready', 'params', 'params_ref', 'task', 'result', 'result_ref', 'heartbeat', 'error', 'bye'];
/** Types a coordinator accepts from a worker. */
export const WORKER_MESSAGE_TYPES: readonly MessageType[] = ['hello', 'ready', 'result', 'result_ref', 'heartbeat', 'error', 'bye'];
/** Types a worker accepts from a coordinator. */
export const COORDINATOR_MESSAGE_TYPES: readonly MessageType[] = ['welcome', 'params', 'params_ref', 'task', 'heartbeat', 'error', 'bye'];

/** The binary payload a message type carries, if any. */
export const PAYLOADS = {
  params: { field: 'data', kind: 'f32' },
  result: { field: 'grad', kind: 'f32' },
  task: { field: 'indices', kind: 'i32' },
} as const;
export type PayloadType = keyof typeof PAYLOADS;

/** Whether `type` names a message type of this protocol version. */
export function isMessageType(type: unknown): type is MessageType {
  return typeof type === 'string' && (MESSAGE_TYPES as readonly string[]).includes(type);
}
