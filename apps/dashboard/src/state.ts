import type { ModelSpec } from '@dptrain/core';
import type { CheckpointEvent, EvalEvent, RunEvent, RunFinishedEvent, StepEvent, WorkerInfo } from '@dptrain/protocol';

/**
 * The dashboard's model of a run, reduced from the coordinator's event stream. Pure: no
 * DOM, no I/O, no clock (times come from the events), so it is unit-tested in Node.
 */

/** Most recent log entries kept. */
export const LOG_LIMIT = 500;
/** A worker flagged as a straggler within this many steps of the current one is shown as such. */
export const STRAGGLER_RECENT_STEPS = 5;

/** Per-step series, aligned on `step` (uPlot's AlignedData layout); null where a series has no point. */
export interface Series {
  step: number[];
  trainLoss: (number | null)[];
  trainAcc: (number | null)[];
  testLoss: (number | null)[];
  testAcc: (number | null)[];
  samplesPerSec: (number | null)[];
  computeMs: (number | null)[];
  waitMs: (number | null)[];
  reduceMs: (number | null)[];
  updateMs: (number | null)[];
  broadcastMs: (number | null)[];
  totalMs: (number | null)[];
}

export type WorkerStateName = WorkerInfo['state'] | 'joined';

/** One row of the workers table. */
export interface WorkerRow {
  workerId: string;
  host: string;
  state: WorkerStateName;
  leaves: number | null;
  computeMs: number | null;
  samplesPerSec: number | null;
  bytesIn: number | null;
  /** 'shm' (shared memory with the coordinator) or 'socket'; null until known. */
  transport: 'shm' | 'socket' | null;
  bytesOut: number | null;
  lastHeartbeat: number | null;
  joinedAt: number;
  /** Why it left or died. */
  reason: string | null;
  /** Last straggler report. */
  straggler: { step: number; computeMs: number; medianMs: number } | null;
  lastError: string | null;
}

export type LogLevel = 'info' | 'warn' | 'error';
export interface LogEntry {
  seq: number;
  t: number;
  kind: RunEvent['kind'];
  level: LogLevel;
  text: string;
}

export type RunStatus = 'waiting' | 'running' | 'finished';

export interface DashboardState {
  status: RunStatus;
  runId: string | null;
  startedAt: number | null;
  config: Record<string, unknown> | null;
  model: ModelSpec | null;
  paramCount: number | null;
  step: number;
  epoch: number;
  lr: number | null;
  /** Training samples processed so far. */
  samples: number;
  /** Steps in one epoch, once an epoch has been seen whole (to estimate the total when only epochs are configured). */
  stepsPerEpoch: number | null;
  /** First step seen of the current epoch, and whether that was the epoch's real start. */
  epochStart: { step: number; exact: boolean } | null;
  lastStep: StepEvent | null;
  lastEval: EvalEvent | null;
  finished: RunFinishedEvent | null;
  series: Series;
  /** Workers by id, in order of first appearance. */
  workers: Map<string, WorkerRow>;
  log: LogEntry[];
  checkpoints: { count: number; last: CheckpointEvent | null };
  errors: number;
  reassignments: number;
  /** Highest seq applied (-1: none). */
  lastSeq: number;
  /** `t` of the last event applied. */
  lastEventT: number | null;
  /** Identity of the event stream's first event (seq 0), to recognise a restarted coordinator. */
  origin: { kind: string; t: number } | null;
  /** Set by beginConnection: the next event starts a replayed history. */
  expectReplay: boolean;
  /** Bumped whenever the state changes (renderers compare it). */
  version: number;
}

function emptySeries(): Series {
  return { step: [], trainLoss: [], trainAcc: [], testLoss: [], testAcc: [], samplesPerSec: [], computeMs: [], waitMs: [], reduceMs: [], updateMs: [], broadcastMs: [], totalMs: [] };
}

/** A state with no run yet. */
export function createState(): DashboardState {
  return {
    status: 'waiting',
    runId: null,
    startedAt: null,
    config: null,
    model: null,
    paramCount: null,
    step: 0,
    epoch: 0,
    lr: null,
    samples: 0,
    stepsPerEpoch: null,
    epochStart: null,
    lastStep: null,
    lastEval: null,
    finished: null,
    series: emptySeries(),
    workers: new Map(),
    log: [],
    checkpoints: { count: 0, last: null },
    errors: 0,
    reassignments: 0,
    lastSeq: -1,
    lastEventT: null,
    origin: null,
    expectReplay: false,
    version: 0,
  };
}

/** Reset `s` in place to an empty state (a new coordinator process / a new run). */
function reset(s: DashboardState): void {
  const version = s.version;
  Object.assign(s, createState());
  s.version = version + 1;
}

/** Call when a (re)connection opens: the server will replay its history from seq 0. */
export function beginConnection(s: DashboardState): void {
  s.expectReplay = true;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * Whether `x` looks like an event this dashboard can apply: an object with an integer
 * seq ≥ 0, a finite t and a string kind. Unknown kinds pass (and are then ignored), so a
 * newer coordinator does not break an older page.
 */
export function isEventLike(x: unknown): x is RunEvent {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return typeof o.seq === 'number' && Number.isInteger(o.seq) && o.seq >= 0 && typeof o.t === 'number' && Number.isFinite(o.t) && typeof o.kind === 'string';
}

/** Index in the (sorted) step axis for `step`, inserting an all-null row if it is missing. */
function rowFor(series: Series, step: number): number {
  const xs = series.step;
  let i = xs.length - 1;
  while (i >= 0 && xs[i] > step) i--;
  if (i >= 0 && xs[i] === step) return i;
  const at = i + 1;
  for (const [key, arr] of Object.entries(series) as [keyof Series, (number | null)[]][]) {
    arr.splice(at, 0, key === 'step' ? step : null);
  }
  return at;
}

function log(s: DashboardState, e: RunEvent, level: LogLevel, text: string): void {
  s.log.push({ seq: e.seq, t: e.t, kind: e.kind, level, text });
  if (s.log.length > LOG_LIMIT) s.log.splice(0, s.log.length - LOG_LIMIT);
}

function worker(s: DashboardState, id: string, t: number): WorkerRow {
  let w = s.workers.get(id);
  if (!w) {
    w = { workerId: id, host: '', state: 'joined', leaves: null, computeMs: null, samplesPerSec: null, bytesIn: null, bytesOut: null, transport: null, lastHeartbeat: null, joinedAt: t, reason: null, straggler: null, lastError: null };
    s.workers.set(id, w);
  }
  return w;
}

const range = (l: unknown): string => (Array.isArray(l) && l.length === 2 ? `[${String(l[0])}, ${String(l[1])})` : '?');

function applyStep(s: DashboardState, e: StepEvent): void {
  const i = rowFor(s.series, e.step);
  const S = s.series;
  S.trainLoss[i] = num(e.loss);
  S.trainAcc[i] = num(e.accuracy);
  S.samplesPerSec[i] = num(e.samplesPerSec);
  const p = e.phases ?? ({} as StepEvent['phases']);
  S.computeMs[i] = num(p.computeMs);
  S.waitMs[i] = num(p.waitMs);
  S.reduceMs[i] = num(p.reduceMs);
  S.updateMs[i] = num(p.updateMs);
  S.broadcastMs[i] = num(p.broadcastMs);
  S.totalMs[i] = num(p.totalMs);
  const prev = s.lastStep;
  if (prev === null) s.epochStart = { step: e.step, exact: e.step <= 1 };
  else if (e.epoch !== prev.epoch) {
    if (s.stepsPerEpoch === null && s.epochStart?.exact) s.stepsPerEpoch = prev.step - s.epochStart.step + 1;
    s.epochStart = { step: e.step, exact: true };
  }
  s.step = Math.max(s.step, e.step);
  s.epoch = e.epoch;
  s.lr = num(e.lr);
  s.samples += num(e.samples) ?? 0;
  s.lastStep = e;
  if (s.status === 'waiting') s.status = 'running';
}

function applyWorkers(s: DashboardState, e: RunEvent & { kind: 'workers' }): void {
  if (!Array.isArray(e.list)) return;
  for (const info of e.list) {
    if (typeof info?.workerId !== 'string') continue;
    const w = worker(s, info.workerId, e.t);
    w.host = typeof info.host === 'string' ? info.host : w.host;
    w.state = info.state;
    w.leaves = num(info.leaves);
    w.computeMs = num(info.computeMs);
    w.samplesPerSec = num(info.samplesPerSec);
    w.bytesIn = num(info.bytesIn);
    w.bytesOut = num(info.bytesOut);
    w.lastHeartbeat = num(info.lastHeartbeat);
    w.transport = info.transport === 'shm' || info.transport === 'socket' ? info.transport : null;
  }
}

/**
 * Apply one event. Returns false (and changes nothing) for a duplicate (seq already
 * applied) or an unknown kind. A replay from a different coordinator process (its seq-0
 * event differs from ours) or a run_started for another run resets the state first.
 */
export function applyEvent(s: DashboardState, e: RunEvent): boolean {
  if (s.expectReplay) {
    s.expectReplay = false;
    if (e.seq === 0 && s.origin !== null && (s.origin.kind !== e.kind || s.origin.t !== e.t)) reset(s);
  }
  if (e.kind === 'run_started' && s.runId !== null && (e.runId !== s.runId || (s.startedAt !== null && e.t !== s.startedAt))) reset(s);
  if (e.seq <= s.lastSeq) return false;
  if (e.seq === 0) s.origin = { kind: e.kind, t: e.t };
  switch (e.kind) {
    case 'run_started':
      s.runId = e.runId;
      s.startedAt = e.t;
      s.config = e.config ?? null;
      s.model = e.model ?? null;
      s.paramCount = num(e.paramCount);
      s.status = 'running';
      log(s, e, 'info', `run ${e.runId} started (${num(e.paramCount) ?? '?'} parameters)`);
      break;
    case 'step':
      applyStep(s, e);
      break;
    case 'eval': {
      const i = rowFor(s.series, e.step);
      s.series.testLoss[i] = num(e.loss);
      s.series.testAcc[i] = num(e.accuracy);
      s.lastEval = e;
      break;
    }
    case 'worker_joined': {
      const w = worker(s, e.workerId, e.t);
      w.host = e.host;
      w.state = 'joined';
      w.reason = null;
      w.joinedAt = e.t;
      log(s, e, 'info', `worker ${e.workerId} joined from ${e.host || '?'}`);
      break;
    }
    case 'worker_left': {
      const w = worker(s, e.workerId, e.t);
      w.state = 'left';
      w.reason = e.reason;
      log(s, e, 'warn', `worker ${e.workerId} left: ${e.reason}`);
      break;
    }
    case 'worker_dead': {
      const w = worker(s, e.workerId, e.t);
      w.state = 'dead';
      w.reason = e.reason;
      log(s, e, 'error', `worker ${e.workerId} died: ${e.reason}`);
      break;
    }
    case 'reassigned':
      s.reassignments++;
      log(s, e, 'warn', `step ${e.step}: leaves ${range(e.leaves)} reassigned from ${e.from} to ${e.to}`);
      break;
    case 'straggler': {
      const w = worker(s, e.workerId, e.t);
      w.straggler = { step: e.step, computeMs: e.computeMs, medianMs: e.medianMs };
      log(s, e, 'warn', `step ${e.step}: ${e.workerId} is straggling (${Math.round(e.computeMs)} ms vs median ${Math.round(e.medianMs)} ms)`);
      break;
    }
    case 'workers':
      applyWorkers(s, e);
      break;
    case 'checkpoint':
      s.checkpoints.count++;
      s.checkpoints.last = e;
      log(s, e, 'info', `checkpoint at step ${e.step}: ${e.path} (${e.bytes} bytes)`);
      break;
    case 'error':
      s.errors++;
      if (e.workerId !== undefined) worker(s, e.workerId, e.t).lastError = `${e.code}: ${e.message}`;
      log(s, e, 'error', `${e.code}: ${e.message}${e.workerId !== undefined ? ` (worker ${e.workerId})` : ''}`);
      break;
    case 'run_finished':
      s.finished = e;
      s.status = 'finished';
      s.step = Math.max(s.step, num(e.step) ?? 0);
      log(s, e, 'info', `run finished at step ${e.step}${e.checkpoint ? `, checkpoint ${e.checkpoint}` : ''}`);
      break;
    default:
      return false;
  }
  s.lastSeq = e.seq;
  s.lastEventT = e.t;
  s.version++;
  return true;
}

/** Apply a batch (as received from /events); returns how many events changed the state. */
export function applyEvents(s: DashboardState, events: readonly unknown[]): number {
  let n = 0;
  for (const e of events) if (isEventLike(e) && applyEvent(s, e)) n++;
  return n;
}

/** Total steps of the run if known (configured, or estimated from the first epoch's length). */
export function totalSteps(s: DashboardState): number | null {
  const c = s.config ?? {};
  const steps = num(c.steps);
  if (steps !== null && steps > 0) return steps;
  const epochs = num(c.epochs);
  if (epochs !== null && s.stepsPerEpoch !== null) return epochs * s.stepsPerEpoch;
  return null;
}

/** Progress in [0, 1], or null when the total is unknown. */
export function progress(s: DashboardState): number | null {
  if (s.status === 'finished') return 1;
  const total = totalSteps(s);
  return total === null ? null : Math.min(1, s.step / total);
}

/** Whether the worker was reported as a straggler recently. */
export function isStraggling(s: DashboardState, w: WorkerRow): boolean {
  return w.straggler !== null && w.state !== 'dead' && w.state !== 'left' && w.straggler.step >= s.step - STRAGGLER_RECENT_STEPS;
}

/** Worker counts: live (not dead/left), dead, left. */
export function workerCounts(s: DashboardState): { live: number; dead: number; left: number } {
  let live = 0, dead = 0, left = 0;
  for (const w of s.workers.values()) {
    if (w.state === 'dead') dead++;
    else if (w.state === 'left') left++;
    else live++;
  }
  return { live, dead, left };
}
