export { Worker, WorkerError } from './worker.js';
export type { WorkerOptions, WorkerSummary } from './worker.js';
export { Backoff, RECONNECT_DEFAULTS, validateReconnect } from './backoff.js';
export type { ReconnectOptions } from './backoff.js';
export { TaskRunner } from './compute.js';
export type { NodeResult } from './compute.js';
export { DataCache, nodeFingerprint } from './data-cache.js';
export type { LoadedData } from './data-cache.js';
