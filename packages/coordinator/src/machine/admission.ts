/**
 * Admission: the hello/ready refusal ladder of RoundMachine, as pure functions.
 * Owns: which refusal (code, message, close code) a hello or ready gets, in ladder order.
 * Must not touch: membership, rounds, events or output — it reads a snapshot and returns a
 * Refusal or undefined; the machine applies any side effect (adding/removing the worker).
 */
import type { RunConfig } from '@dptrain/core';
import { CLOSE_CODES } from '@dptrain/protocol';
import type { MachineState, Refusal } from '../machine-io.js';
import type { WorkerHello } from '../membership.js';

/** What the hello ladder reads from the machine. */
export interface HelloSnapshot {
  state: MachineState;
  runId: string;
  kernel: RunConfig['kernel'];
  live: number;
  maxWorkers: number;
  batchSize: number;
  leafSize: number;
}

/** The refusal for a hello, or undefined if the worker may join. */
export function helloRefusal(s: HelloSnapshot, hello: WorkerHello): Refusal | undefined {
  if (s.state === 'stopped') return { code: 'E_STATE', message: `coordinator stopping (run ${s.runId})`, closeCode: CLOSE_CODES.GOING_AWAY };
  if (s.state === 'finished' || s.state === 'failed') {
    return { code: 'E_STATE', message: `run ${s.runId} is over (${s.state})`, closeCode: CLOSE_CODES.RUN_FINISHED };
  }
  const k = s.kernel;
  if (hello.kernels.length > 0 && !hello.kernels.includes(k)) {
    return { code: 'E_STATE', message: `the run uses kernel ${k}; worker ${hello.workerName} offers ${hello.kernels.join(', ')}`, closeCode: CLOSE_CODES.NOT_NEEDED };
  }
  if (s.live >= s.maxWorkers) {
    return {
      code: 'E_STATE',
      message: `batch of ${s.batchSize} samples has only ${s.maxWorkers} leaves of leafSize ${s.leafSize}; ${s.live} workers already assigned`,
      closeCode: CLOSE_CODES.NOT_NEEDED,
    };
  }
  return undefined;
}

/** The refusal for a ready from a worker in `workerState` (undefined: unknown worker), or undefined. */
export function readyStateRefusal(id: string, workerState: string | undefined): Refusal | undefined {
  if (workerState !== 'loading') {
    return { code: 'E_STATE', message: `ready from ${id} in state ${workerState ?? 'unknown'}; expected after welcome, once`, closeCode: CLOSE_CODES.PROTOCOL_ERROR };
  }
  return undefined;
}

/** The refusal for a ready whose data fingerprint differs from the coordinator's, or undefined. */
export function fingerprintRefusal(data: RunConfig['data'], got: string, expected: string): Refusal | undefined {
  if (got === expected) return undefined;
  return {
    code: 'E_DATA_MISMATCH',
    message: `dataset ${data}: the worker's training data has fingerprint ${got}, the coordinator's is ${expected}`,
    closeCode: CLOSE_CODES.DATA_MISMATCH,
  };
}
