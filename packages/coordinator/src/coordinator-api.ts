import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Dataset, type EvalResult, fingerprintChunks } from '@dptrain/core';

/*
 * The Coordinator's public types (what done(), checkpointNow() and stats() give, the
 * handler shapes it accepts) and its dataset fingerprint.
 */

/**
 * WebSocket paths that reach the worker endpoint. An upgrade for another path is offered
 * to the handlers added with addUpgradeHandler (e.g. the dashboard's /events stream) in
 * order, and refused with 404 if none takes it.
 */
export const WORKER_PATHS: readonly string[] = ['/', '/worker'];

/** Takes an upgrade request (and its socket) and returns true, or returns false touching nothing. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** A plain HTTP request listener. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What done() resolves with. */
export interface RunSummary {
  runId: string;
  /** Updates applied. */
  steps: number;
  /** Full epochs completed. */
  epochs: number;
  /** Final evaluation on the test split (with confusion matrix). */
  test: EvalResult;
  /** Path of final.safetensors. */
  checkpointPath: string;
  /** Final parameters (a copy). */
  params: Float32Array;
  /** Wall time from the first task sent to the final checkpoint written, ms. */
  wallMs: number;
  /** Training samples per second over wallMs. */
  samplesPerSec: number;
}

/** A checkpoint written: the step it holds, where, and its size. */
export interface CheckpointInfo {
  step: number;
  path: string;
  bytes: number;
}

/** Counters returned by Coordinator.stats(). */
export interface CoordinatorStats {
  step: number;
  epoch: number;
  staleDropped: number;
  duplicatesDropped: number;
  /** Results refused by validation (wrong sample count, NaN/Inf...). */
  invalidResults: number;
  /** Bad results and worker error reports handled by the non-finite policy. */
  badResults: number;
  /** Nodes re-executed elsewhere because their worker was past the step deadline. */
  reexecuted: number;
  /** Frames refused, by error code (E_DECODE, E_FIELD, E_VERSION, E_TOO_LARGE, E_STATE, E_TYPE, E_AUTH, E_RATE, ...). */
  badFrames: Record<string, number>;
  /** Frames received from workers (and would-be workers). */
  framesIn: number;
  /** Frames that passed validation and were handled. */
  framesOk: number;
  /** Frames that arrived on a connection already being closed (not looked at). */
  framesIgnored: number;
  /** Resume checkpoints written (latest.safetensors). */
  checkpoints: number;
  /** Socket bytes (frames), all workers. */
  bytesIn: number;
  bytesOut: number;
  /** Payload bytes moved through the shared-memory data plane, all workers. */
  shmBytesIn: number;
  shmBytesOut: number;
  /** Parameter payloads sent (params frames and params_refs, one per worker and version) and gradients received (result and result_ref messages that passed validation). */
  payloads: { paramsOut: number; resultsIn: number };
  /** Gradient buffers of the reduction pool allocated so far (reused from step to step: a step's worth at most). */
  reductionBuffers: number;
  workers: Array<{ id: string; host: string; state: string; computeMs: number; bytesIn: number; bytesOut: number; shmBytesIn: number; shmBytesOut: number; shm: boolean }>;
}

/** SHA-256 of a dataset as core's fingerprint() computes it, with node:crypto (much faster). */
export function fingerprintFast(ds: Dataset): string {
  const h = createHash('sha256');
  for (const c of fingerprintChunks(ds)) h.update(c);
  return h.digest('hex');
}
