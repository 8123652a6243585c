import { randomUUID } from 'node:crypto';
import { ConfigError, type DatasetSplit, type RunConfig, validateRunConfig } from '@dptrain/core';
import { LIMITS } from '@dptrain/protocol';

/** Options of a Coordinator. */
export interface CoordinatorOptions {
  /** The run (validated by validateRunConfig). */
  config: RunConfig;
  /** The data, already loaded (train + test). */
  data: DatasetSplit;
  /** Interface to listen on (default '127.0.0.1'). */
  host?: string;
  /** Port (default 0: ephemeral). */
  port?: number;
  /** Ready workers needed before a step starts (default 1). */
  minWorkers?: number;
  /** Start from these parameters (e.g. a checkpoint's) instead of the seeded initialisation. */
  initParams?: Float32Array;
  /** Directory of final.safetensors (created if missing). */
  checkpointDir: string;
  /** Run id (default 'run-' + a random UUID); 1–128 bytes. */
  runId?: string;
  /** Heartbeat period, ms (default 2000); a worker silent for 5× that is dead. */
  heartbeatMs?: number;
  /** Log lines (default: none). */
  log?: (line: string) => void;
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
}

const DEFAULTS = { host: '127.0.0.1', port: 0, minWorkers: 1, heartbeatMs: 2000 };

function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(field, `expected an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return v;
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
  const out: ResolvedOptions = { config, data: o.data, host, port, minWorkers, checkpointDir: o.checkpointDir, runId, heartbeatMs, log: o.log ?? (() => {}) };
  if (o.initParams) out.initParams = o.initParams;
  return out;
}
