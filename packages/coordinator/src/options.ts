import { randomUUID } from 'node:crypto';
import { ConfigError, type DatasetSplit, type RunConfig, validateRunConfig } from '@dptrain/core';
import { LIMITS } from '@dptrain/protocol';
import type { Balance, NonFinitePolicy } from './machine-io.js';

/** Options of a Coordinator. */
export interface CoordinatorOptions {
  /** The run (validated by validateRunConfig). */
  config: RunConfig;
  /** The data, already loaded (train + test). */
  data: DatasetSplit;
  /** Interface to listen on (default '127.0.0.1'). Anything but loopback needs `token` (or `allowInsecure`). */
  host?: string;
  /** Port (default 0: ephemeral). */
  port?: number;
  /** Ready workers needed before the first step starts (default 1); later steps need only one. */
  minWorkers?: number;
  /** Start from these parameters (e.g. a checkpoint's) instead of the seeded initialisation. */
  initParams?: Float32Array;
  /** Directory of final.safetensors, latest.safetensors and previous.safetensors (created if missing). */
  checkpointDir: string;
  /** Run id (default 'run-' + a random UUID); 1–128 bytes. */
  runId?: string;
  /** Heartbeat period, ms (default 2000); a worker silent for 5× that is dead. */
  heartbeatMs?: number;
  /** Log lines (default: none). */
  log?: (line: string) => void;
  /** Shared secret every worker's hello must carry (and every HTTP / event-stream request). */
  token?: string;
  /** Listen on a non-loopback host without a token (default false: start() refuses). */
  allowInsecure?: boolean;
  /** Serve https + wss with this certificate and key (PEM). */
  tls?: { cert: string; key: string };
  /** Write a resume checkpoint (latest.safetensors) every N steps (default 0: never). */
  checkpointEvery?: number;
  /** Write a resume checkpoint at the first step boundary at least this many seconds after the last one (default 0: never). */
  checkpointEverySec?: number;
  /** Continue the run of this checkpoint: a file, or a directory holding latest.safetensors (else previous.safetensors). */
  resumeFrom?: string;
  /** Bad results (NaN/Inf, wrong step, worker error reports): 'stop' the run (default) or 'skip' them and recompute. */
  nonFinitePolicy?: NonFinitePolicy;
  /** With 'skip': bad results one node may go through before the run stops anyway (default 3). */
  maxRetries?: number;
  /** Step deadline, ms (default: max(10 s, 5 × the median of the recent step times)). */
  stepTimeoutMs?: number;
  /** A worker connection sending more frames than this per second is closed (default 5000). */
  maxFramesPerSec?: number;
  /** Open worker connections accepted at once; more are refused with 503 (default 256). */
  maxConnections?: number;
  /** Serve the dashboard, /api/run, /metrics and /events on the same port (default true). */
  observer?: boolean;
  /** Built dashboard directory (default: apps/dashboard/dist of this repository). */
  dashboardDir?: string;
  /**
   * Offer workers connected over loopback the shared-memory data plane: params and gradients
   * through slot files in `shmDir` instead of the socket (default true; PROTOCOL.md §3.10).
   */
  sharedMemory?: boolean;
  /** Memory-backed directory for the slot files (default /dev/shm). */
  shmDir?: string;
  /** Split each step's leaves evenly ('even', default) or in proportion to the workers' measured speed ('speed', for unequal hosts). */
  balance?: Balance;
  /**
   * Evaluate the test split during the run, every `config.evalEvery` steps and at epoch ends
   * (default true). False evaluates only once, after the last step: what a benchmark wants,
   * whose timed steps then never share the CPU with an evaluation. The weights are the same.
   */
  periodicEvaluation?: boolean;
}

export interface ResolvedOptions {
  config: RunConfig;
  data: DatasetSplit;
  host: string;
  port: number;
  minWorkers: number;
  initParams?: Float32Array;
  checkpointDir: string;
  runId: string;
  heartbeatMs: number;
  log: (line: string) => void;
  token?: string;
  allowInsecure: boolean;
  tls?: { cert: string; key: string };
  checkpointEvery: number;
  checkpointEverySec: number;
  resumeFrom?: string;
  nonFinitePolicy: NonFinitePolicy;
  maxRetries: number;
  stepTimeoutMs?: number;
  maxFramesPerSec: number;
  maxConnections: number;
  observer: boolean;
  dashboardDir?: string;
  sharedMemory: boolean;
  shmDir: string;
  balance: Balance;
  periodicEvaluation: boolean;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  minWorkers: 1,
  heartbeatMs: 2000,
  checkpointEvery: 0,
  checkpointEverySec: 0,
  nonFinitePolicy: 'stop' as NonFinitePolicy,
  maxRetries: 3,
  maxFramesPerSec: 5000,
  maxConnections: 256,
};

function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(field, `expected an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return v;
}

function pem(field: string, v: unknown, kind: string): string {
  if (typeof v !== 'string' || !v.includes(`-----BEGIN ${kind}`)) throw new ConfigError(field, `expected PEM text (-----BEGIN ${kind}...), got ${typeof v === 'string' ? `${v.length} characters without a PEM header` : JSON.stringify(v)}`);
  return v;
}

/** Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Merge over the defaults and validate once; errors name the field and the allowed range. */
export function resolveOptions(o: CoordinatorOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new ConfigError('options', 'expected an object { config, data, checkpointDir, ... }');
  const config = validateRunConfig(o.config);
  if (Buffer.byteLength(config.data) > LIMITS.dataRef) throw new ConfigError('data', `a dataset reference travels in the welcome message: at most ${LIMITS.dataRef} bytes, got ${Buffer.byteLength(config.data)}`);
  if (!o.data || typeof o.data !== 'object' || !o.data.train || !o.data.test) throw new ConfigError('data', 'expected a loaded DatasetSplit { train, test }');
  const host = o.host ?? DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) throw new ConfigError('host', `expected a host name or address, got ${JSON.stringify(host)}`);
  const port = int('port', o.port ?? DEFAULTS.port, 0, 65535);
  const minWorkers = int('minWorkers', o.minWorkers ?? DEFAULTS.minWorkers, 1, 1 << 20);
  const heartbeatMs = int('heartbeatMs', o.heartbeatMs ?? DEFAULTS.heartbeatMs, 10, 3_600_000);
  if (typeof o.checkpointDir !== 'string' || o.checkpointDir.length === 0) throw new ConfigError('checkpointDir', 'expected a directory path');
  const runId = o.runId ?? `run-${randomUUID()}`;
  if (typeof runId !== 'string' || runId.length < 1 || Buffer.byteLength(runId) > 128) throw new ConfigError('runId', `expected a string of 1–128 bytes, got ${JSON.stringify(runId)}`);
  if (o.initParams !== undefined && !(o.initParams instanceof Float32Array)) throw new ConfigError('initParams', 'expected a Float32Array');
  if (o.log !== undefined && typeof o.log !== 'function') throw new ConfigError('log', 'expected a function (line: string) => void');
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length === 0 || Buffer.byteLength(o.token) > LIMITS.token)) {
    throw new ConfigError('token', `expected a non-empty string of at most ${LIMITS.token} bytes, got ${typeof o.token === 'string' ? `${Buffer.byteLength(o.token)} bytes` : JSON.stringify(o.token)}`);
  }
  if (o.allowInsecure !== undefined && typeof o.allowInsecure !== 'boolean') throw new ConfigError('allowInsecure', `expected true or false, got ${JSON.stringify(o.allowInsecure)}`);
  let tls: ResolvedOptions['tls'];
  if (o.tls !== undefined) {
    if (typeof o.tls !== 'object' || o.tls === null) throw new ConfigError('tls', 'expected { cert, key } (PEM text)');
    tls = { cert: pem('tls.cert', o.tls.cert, 'CERTIFICATE'), key: pem('tls.key', o.tls.key, '') };
  }
  const checkpointEvery = int('checkpointEvery', o.checkpointEvery ?? DEFAULTS.checkpointEvery, 0, 1 << 30);
  const checkpointEverySec = o.checkpointEverySec ?? DEFAULTS.checkpointEverySec;
  if (typeof checkpointEverySec !== 'number' || !Number.isFinite(checkpointEverySec) || checkpointEverySec < 0) {
    throw new ConfigError('checkpointEverySec', `expected a number of seconds >= 0 (0: off), got ${JSON.stringify(o.checkpointEverySec)}`);
  }
  if (o.resumeFrom !== undefined && (typeof o.resumeFrom !== 'string' || o.resumeFrom.length === 0)) throw new ConfigError('resumeFrom', `expected a checkpoint file or directory path, got ${JSON.stringify(o.resumeFrom)}`);
  if (o.resumeFrom !== undefined && o.initParams !== undefined) throw new ConfigError('resumeFrom', 'cannot be combined with initParams: a resumed run continues from the checkpoint');
  const nonFinitePolicy = o.nonFinitePolicy ?? DEFAULTS.nonFinitePolicy;
  if (nonFinitePolicy !== 'stop' && nonFinitePolicy !== 'skip') throw new ConfigError('nonFinitePolicy', `expected "stop" or "skip", got ${JSON.stringify(nonFinitePolicy)}`);
  const maxRetries = int('maxRetries', o.maxRetries ?? DEFAULTS.maxRetries, 0, 1000);
  const stepTimeoutMs = o.stepTimeoutMs === undefined ? undefined : int('stepTimeoutMs', o.stepTimeoutMs, 1, 86_400_000);
  const maxFramesPerSec = int('maxFramesPerSec', o.maxFramesPerSec ?? DEFAULTS.maxFramesPerSec, 1, 1 << 30);
  const maxConnections = int('maxConnections', o.maxConnections ?? DEFAULTS.maxConnections, 1, 1 << 20);
  if (o.observer !== undefined && typeof o.observer !== 'boolean') throw new ConfigError('observer', `expected true or false, got ${JSON.stringify(o.observer)}`);
  if (o.dashboardDir !== undefined && (typeof o.dashboardDir !== 'string' || o.dashboardDir.length === 0)) throw new ConfigError('dashboardDir', 'expected a directory path');
  if (o.balance !== undefined && o.balance !== 'speed' && o.balance !== 'even') throw new ConfigError('balance', `expected "speed" or "even", got ${JSON.stringify(o.balance)}`);
  if (o.sharedMemory !== undefined && typeof o.sharedMemory !== 'boolean') throw new ConfigError('sharedMemory', `expected true or false, got ${JSON.stringify(o.sharedMemory)}`);
  if (o.periodicEvaluation !== undefined && typeof o.periodicEvaluation !== 'boolean') throw new ConfigError('periodicEvaluation', `expected true or false, got ${JSON.stringify(o.periodicEvaluation)}`);
  if (o.shmDir !== undefined && (typeof o.shmDir !== 'string' || !o.shmDir.startsWith('/') || o.shmDir.split('/').includes('..'))) {
    throw new ConfigError('shmDir', `expected an absolute directory path without ".." segments, got ${JSON.stringify(o.shmDir)}`);
  }
  const out: ResolvedOptions = {
    config,
    data: o.data,
    host,
    port,
    minWorkers,
    checkpointDir: o.checkpointDir,
    runId,
    heartbeatMs,
    log: o.log ?? (() => {}),
    allowInsecure: o.allowInsecure ?? false,
    checkpointEvery,
    checkpointEverySec,
    nonFinitePolicy,
    maxRetries,
    maxFramesPerSec,
    maxConnections,
    observer: o.observer ?? true,
    sharedMemory: o.sharedMemory ?? true,
    shmDir: o.shmDir ?? '/dev/shm',
    balance: o.balance ?? 'even',
    periodicEvaluation: o.periodicEvaluation ?? true,
  };
  if (o.initParams) out.initParams = o.initParams;
  if (o.token !== undefined) out.token = o.token;
  if (tls) out.tls = tls;
  if (o.resumeFrom !== undefined) out.resumeFrom = o.resumeFrom;
  if (stepTimeoutMs !== undefined) out.stepTimeoutMs = stepTimeoutMs;
  if (o.dashboardDir !== undefined) out.dashboardDir = o.dashboardDir;
  return out;
}

/**
 * The check start() makes before listening: a coordinator on a non-loopback interface
 * needs a token unless allowInsecure is set.
 */
export function checkExposure(o: ResolvedOptions): void {
  if (o.token === undefined && !o.allowInsecure && !isLoopback(o.host)) {
    throw new ConfigError('token', `required when host is not loopback (got ${o.host}); pass --token or set DPTRAIN_TOKEN`);
  }
}
