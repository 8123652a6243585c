import type { ModelSpec } from '@dptrain/core';
import { ProtocolError } from './errors.js';
import { fieldError, has, isObj, type Obj } from './fields.js';

/**
 * The coordinator's observer event stream (dashboard, logs). Events are plain JSON:
 * no typed arrays, no NaN/Infinity (a non-finite metric is sent as null).
 * `seq` counts events from 0 without gaps within a run; `t` is the coordinator's wall
 * clock in ms since the epoch.
 */
interface EventBase {
  seq: number;
  t: number;
}

/** Time spent in each phase of one synchronous step, ms. */
export interface StepPhases {
  /** Longest worker compute time of the step. */
  computeMs: number;
  /** Time waiting for results beyond the fastest worker. */
  waitMs: number;
  /** Completing the reduction tree. */
  reduceMs: number;
  /** Optimizer update. */
  updateMs: number;
  /** Serialising and sending parameters. */
  broadcastMs: number;
  /** Wall time of the whole step. */
  totalMs: number;
}

export type WorkerState = 'idle' | 'busy' | 'dead' | 'left' | 'loading';

export interface WorkerInfo {
  workerId: string;
  host: string;
  state: WorkerState;
  /** Leaves assigned in the current step. */
  leaves: number;
  /** Compute time of its last task, ms. */
  computeMs: number;
  samplesPerSec: number;
  /** Bytes exchanged with it by either path (socket frames and shared-memory payloads). */
  bytesIn: number;
  bytesOut: number;
  /** Wall clock (ms) of the last message received from it. */
  lastHeartbeat: number;
  /** How its payloads travel: through the shared-memory data plane or the socket (absent from older coordinators). */
  transport?: WorkerTransport;
}

export type WorkerTransport = 'shm' | 'socket';

export interface RunStartedEvent extends EventBase {
  kind: 'run_started';
  runId: string;
  /** The resolved run configuration (JSON). */
  config: Record<string, unknown>;
  model: ModelSpec;
  paramCount: number;
}
export interface StepEvent extends EventBase {
  kind: 'step';
  step: number;
  epoch: number;
  /** Mean training loss of the step (null if not finite). */
  loss: number | null;
  /** Training accuracy of the step in [0, 1] (null for regression). */
  accuracy: number | null;
  samples: number;
  samplesPerSec: number;
  lr: number;
  phases: StepPhases;
  /** Workers that took part in the step. */
  workers: number;
}
export interface EvalEvent extends EventBase {
  kind: 'eval';
  step: number;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
}
export interface WorkerJoinedEvent extends EventBase {
  kind: 'worker_joined';
  workerId: string;
  host: string;
}
export interface WorkerLeftEvent extends EventBase {
  kind: 'worker_left';
  workerId: string;
  reason: string;
}
export interface WorkerDeadEvent extends EventBase {
  kind: 'worker_dead';
  workerId: string;
  reason: string;
}
export interface ReassignedEvent extends EventBase {
  kind: 'reassigned';
  step: number;
  /** Worker that lost the leaves. */
  from: string;
  /** Worker that took them over. */
  to: string;
  /** The half-open leaf range [lo, hi) moved. */
  leaves: [number, number];
}
export interface StragglerEvent extends EventBase {
  kind: 'straggler';
  workerId: string;
  step: number;
  computeMs: number;
  /** Median compute time of the other workers in the step. */
  medianMs: number;
}
export interface WorkersEvent extends EventBase {
  kind: 'workers';
  step: number;
  list: WorkerInfo[];
}
export interface CheckpointEvent extends EventBase {
  kind: 'checkpoint';
  step: number;
  path: string;
  bytes: number;
}
export interface ErrorEvent extends EventBase {
  kind: 'error';
  code: string;
  message: string;
  workerId?: string;
}
export interface RunFinishedEvent extends EventBase {
  kind: 'run_finished';
  step: number;
  checkpoint?: string;
  testLoss?: number;
  testAccuracy?: number;
}

export type RunEvent =
  | RunStartedEvent
  | StepEvent
  | EvalEvent
  | WorkerJoinedEvent
  | WorkerLeftEvent
  | WorkerDeadEvent
  | ReassignedEvent
  | StragglerEvent
  | WorkersEvent
  | CheckpointEvent
  | ErrorEvent
  | RunFinishedEvent;

export type RunEventKind = RunEvent['kind'];
export type RunEventOf<K extends RunEventKind> = Extract<RunEvent, { kind: K }>;
/** An event as the coordinator builds it, before seq and t are stamped. */
export type RunEventInit = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 'seq' | 't'> : never) : never;

type Check = 'num' | 'num?' | 'numOrNull' | 'str' | 'str?' | 'obj' | 'arr';
const KINDS: { [K in RunEventKind]: Record<string, Check> } = {
  run_started: { runId: 'str', config: 'obj', model: 'obj', paramCount: 'num' },
  step: { step: 'num', epoch: 'num', loss: 'numOrNull', accuracy: 'numOrNull', samples: 'num', samplesPerSec: 'num', lr: 'num', phases: 'obj', workers: 'num' },
  eval: { step: 'num', epoch: 'num', loss: 'numOrNull', accuracy: 'numOrNull' },
  worker_joined: { workerId: 'str', host: 'str' },
  worker_left: { workerId: 'str', reason: 'str' },
  worker_dead: { workerId: 'str', reason: 'str' },
  reassigned: { step: 'num', from: 'str', to: 'str', leaves: 'arr' },
  straggler: { workerId: 'str', step: 'num', computeMs: 'num', medianMs: 'num' },
  workers: { step: 'num', list: 'arr' },
  checkpoint: { step: 'num', path: 'str', bytes: 'num' },
  error: { code: 'str', message: 'str', workerId: 'str?' },
  run_finished: { step: 'num', checkpoint: 'str?', testLoss: 'num?', testAccuracy: 'num?' },
};
const PHASES: Record<string, Check> = { computeMs: 'num', waitMs: 'num', reduceMs: 'num', updateMs: 'num', broadcastMs: 'num', totalMs: 'num' };
const WORKER: Record<string, Check> = {
  workerId: 'str',
  host: 'str',
  state: 'str',
  leaves: 'num',
  computeMs: 'num',
  samplesPerSec: 'num',
  bytesIn: 'num',
  bytesOut: 'num',
  lastHeartbeat: 'num',
};
const WORKER_STATES: readonly string[] = ['idle', 'busy', 'dead', 'left', 'loading'];

/** Every event kind, in a stable order. */
export const RUN_EVENT_KINDS = Object.keys(KINDS) as RunEventKind[];

function checkFields(o: Obj, path: string, fields: Record<string, Check>): void {
  for (const [key, check] of Object.entries(fields)) {
    const v = o[key];
    const p = `${path}.${key}`;
    const finite = typeof v === 'number' && Number.isFinite(v);
    switch (check) {
      case 'num': if (!finite) throw fieldError(p, 'a finite number', v); break;
      case 'num?': if (v !== undefined && !finite) throw fieldError(p, 'a finite number or nothing', v); break;
      case 'numOrNull': if (v !== null && !finite) throw fieldError(p, 'a finite number or null', v); break;
      case 'str': if (typeof v !== 'string') throw fieldError(p, 'a string', v); break;
      case 'str?': if (v !== undefined && typeof v !== 'string') throw fieldError(p, 'a string or nothing', v); break;
      case 'obj': if (!isObj(v)) throw fieldError(p, 'an object', v); break;
      case 'arr': if (!Array.isArray(v)) throw fieldError(p, 'an array', v); break;
    }
  }
}

/**
 * A light check of one observer event (e.g. parsed from JSON): seq and t, a known kind,
 * and the presence and JSON type of each field of that kind (nested phases, worker
 * lists and leaf ranges included). Returns the same object typed; throws ProtocolError
 * E_TYPE for an unknown kind and E_FIELD otherwise.
 */
export function validateRunEvent(x: unknown): RunEvent {
  if (!isObj(x)) throw fieldError('event', 'an object', x);
  if (typeof x.seq !== 'number' || !Number.isInteger(x.seq) || x.seq < 0) throw fieldError('event.seq', 'an integer ≥ 0', x.seq);
  if (typeof x.t !== 'number' || !Number.isFinite(x.t)) throw fieldError('event.t', 'a finite number', x.t);
  const kind = x.kind;
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(KINDS, kind)) {
    throw new ProtocolError('E_TYPE', `unknown event kind ${typeof kind === 'string' ? JSON.stringify(kind.slice(0, 40)) : String(kind)}`);
  }
  const k = kind as RunEventKind;
  checkFields(x, k, KINDS[k]);
  if (k === 'step') checkFields(x.phases as Obj, 'step.phases', PHASES);
  if (k === 'reassigned') {
    const l = x.leaves as unknown[];
    if (l.length !== 2 || !l.every((n) => Number.isInteger(n) && (n as number) >= 0) || (l[0] as number) >= (l[1] as number)) {
      throw fieldError('reassigned.leaves', 'a leaf range [lo, hi) with 0 ≤ lo < hi', x.leaves);
    }
  }
  if (k === 'workers') {
    (x.list as unknown[]).forEach((w, i) => {
      const p = `workers.list[${i}]`;
      if (!isObj(w)) throw fieldError(p, 'an object', w);
      checkFields(w, p, WORKER);
      if (!WORKER_STATES.includes(w.state as string)) throw fieldError(`${p}.state`, `one of ${WORKER_STATES.join(', ')}`, w.state);
      if (has(w, 'transport') && w.transport !== 'shm' && w.transport !== 'socket') throw fieldError(`${p}.transport`, 'shm or socket', w.transport);
    });
  }
  return x as unknown as RunEvent;
}
