import type { DatasetSplit, RunConfig } from '@dptrain/core';
import type { RunEventInit } from '@dptrain/protocol';
import type { ResumeState } from './resume.js';
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
  /**
   * A step's update is applied and its events are out; the next step has not started yet
   * (a checkpoint taken now is exactly the state after `step` updates). Optional.
   */
  stepDone?(step: number): void;
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
  /** Ready workers needed before the first step starts (default 1); later steps need only one. */
  minWorkers?: number;
  initParams?: Float32Array;
  /** A ready worker silent this long (ms, by the clock passed to touch/tick) is dead (default 10000). */
  deadAfterMs?: number;
  /** A worker still loading its data is dead after this long without a message (default 120000). */
  loadTimeoutMs?: number;
  /** A worker still owing nodes this long after the step's tasks went out, and 3× the median of the others, is a straggler (default 1000). */
  stragglerMinMs?: number;
  /** Monotonic clock for phase timings and the step deadline, ms (default performance.now). */
  clock?: () => number;
  /**
   * What to do with a bad result (NaN/Inf gradient or loss, wrong sample count, a step never
   * assigned) or an error message from a ready worker: 'stop' (default) fails the run with
   * E_NONFINITE / E_WORKER naming the worker and the step; 'skip' drops it, counts it and
   * recomputes the node elsewhere (on the same worker if it is the only one).
   */
  nonFinitePolicy?: NonFinitePolicy;
  /** With 'skip': how many bad results one node may go through before the run stops anyway (default 3). */
  maxRetries?: number;
  /** Step deadline, ms after the tasks went out (default: max(stepTimeoutMinMs, 5 × median recent step time)). */
  stepTimeoutMs?: number;
  /** Floor of the automatic step deadline, ms (default 10000). */
  stepTimeoutMinMs?: number;
  /** Continue a run from this state (see resumeStateFrom) instead of step 0; excludes initParams. */
  resume?: ResumeState;
  /**
   * How a step's leaves are split over its workers: 'even' (default) in equal blocks;
   * 'speed' in proportion to each worker's measured compute speed (samples per ms, smoothed
   * over steps; the split moves off the current one only for a predicted gain of 15 %, see
   * chooseSplit), so workers on unequal hosts finish together. The weights do not depend on
   * the split (see assignLeaves).
   */
  balance?: Balance;
  /** Evaluate every config.evalEvery steps and at epoch ends (default true), or only after the last step (false). */
  periodicEvaluation?: boolean;
}

/** See MachineOptions.balance. */
export type Balance = 'speed' | 'even';

/** See MachineOptions.nonFinitePolicy. */
export type NonFinitePolicy = 'stop' | 'skip';

/** 'stopped': stop() was called (a checkpoint can still be taken; no further steps). */
export type MachineState = 'idle' | 'waiting' | 'running' | 'finished' | 'failed' | 'stopped';
