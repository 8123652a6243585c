import type { DatasetSplit, RunConfig } from '@dptrain/core';
import type { RunEventInit } from '@dptrain/protocol';
import type { TaskInit } from './round.js';

/** A refusal: the transport sends an `error` with this code and closes with closeCode. */
export interface Refusal {
  code: string;
  message: string;
  closeCode: number;
}

/** The welcome body for a worker (the protocol `welcome` message without type/v). */
export interface WelcomeInit {
  workerId: string;
  runId: string;
  model: RunConfig['model'];
  data: string;
  fingerprint: string;
  run: { seed: number; leafSize: number; kernel: RunConfig['kernel']; dropout: boolean };
  paramCount: number;
}

/** The machine's outputs. Calls are synchronous; the transport must not keep `params` (copy or encode it). */
export interface MachineOutput {
  sendParams(workerIds: readonly string[], version: number, params: Float32Array): void;
  sendTask(workerId: string, task: TaskInit): void;
  /** Drop a worker (silent too long): send the error, close the socket. workerLeft is already done. */
  closeWorker(workerId: string, why: Refusal): void;
  event(e: RunEventInit): void;
  log(line: string): void;
  /** The last step is done and the final evaluation is ready: write the checkpoint, say bye. */
  runFinished(): void;
  /** A fatal error: the run cannot continue. */
  runFailed(err: Error): void;
}

export interface MachineOptions {
  config: RunConfig;
  data: DatasetSplit;
  /** Fingerprint of data.train (core's fingerprint()); workers must report the same. */
  fingerprint: string;
  runId: string;
  output: MachineOutput;
  /** Ready workers needed before a step starts (default 1). */
  minWorkers?: number;
  initParams?: Float32Array;
  /** A ready worker silent this long (ms, by the clock passed to touch/tick) is dead (default 10000). */
  deadAfterMs?: number;
  /** A worker still loading its data is dead after this long without a message (default 120000). */
  loadTimeoutMs?: number;
  /** A worker still owing nodes this long after the step's tasks went out, and 3× the median of the others, is a straggler (default 1000). */
  stragglerMinMs?: number;
  /** Monotonic clock for phase timings, ms (default performance.now). */
  clock?: () => number;
}

export type MachineState = 'idle' | 'waiting' | 'running' | 'finished' | 'failed';
