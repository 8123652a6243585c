import type { RunEvent, WorkerInfo } from '@dptrain/protocol';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

const PHASES = [
  ['compute', 'computeMs'],
  ['wait', 'waitMs'],
  ['reduce', 'reduceMs'],
  ['update', 'updateMs'],
  ['broadcast', 'broadcastMs'],
  ['total', 'totalMs'],
] as const;
const WORKER_STATES = ['loading', 'idle', 'busy', 'dead', 'left'] as const;

/** Options of createMetricsRegistry. */
export interface MetricsOptions {
  /** Also export Node's process_* and nodejs_* metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
}

/** The coordinator's Prometheus metrics: a private prom-client Registry plus what feeding it needs. */
export interface MetricsRegistry {
  /** Private registry (never prom-client's global one). */
  readonly registry: Registry;
  /** Content-Type of `registry.metrics()` (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** @internal metric objects, updated by metricsFromEvent. */
  readonly m: ReturnType<typeof makeMetrics>;
  /** @internal last cumulative byte counts seen per worker (to turn totals into counter increments). */
  readonly bytesSeen: Map<string, { in: number; out: number }>;
}

function makeMetrics(r: Registry) {
  const registers = [r];
  const counter = <L extends string = never>(name: string, help: string, labelNames: L[] = []) => new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string = never>(name: string, help: string, labelNames: L[] = []) => new Gauge<L>({ name, help, labelNames, registers });
  return {
    runInfo: gauge('dptrain_run_info', 'Constant 1, labelled with the current run id.', ['run_id']),
    paramCount: gauge('dptrain_param_count', 'Number of trainable parameters of the model.'),
    finished: gauge('dptrain_run_finished', '1 once the run has finished, else 0.'),
    lastEvent: gauge('dptrain_last_event_timestamp_seconds', 'Coordinator wall clock of the last run event, seconds since the epoch.'),
    steps: counter('dptrain_steps_total', 'Synchronous steps (optimizer updates) completed.'),
    samples: counter('dptrain_samples_total', 'Training samples processed.'),
    step: gauge('dptrain_step', 'Current step number.'),
    epoch: gauge('dptrain_epoch', 'Current epoch number.'),
    lr: gauge('dptrain_learning_rate', 'Learning rate used by the last step.'),
    samplesPerSec: gauge('dptrain_samples_per_second', 'Throughput of the last step, samples per second.'),
    stepWorkers: gauge('dptrain_step_workers', 'Workers that took part in the last step.'),
    trainLoss: gauge('dptrain_train_loss', 'Mean training loss of the last step.'),
    trainAcc: gauge('dptrain_train_accuracy', 'Training accuracy of the last step, 0..1.'),
    testLoss: gauge('dptrain_test_loss', 'Test loss of the last evaluation.'),
    testAcc: gauge('dptrain_test_accuracy', 'Test accuracy of the last evaluation, 0..1.'),
    phase: gauge('dptrain_step_phase_seconds', 'Duration of each phase of the last step, seconds.', ['phase']),
    phaseTotal: counter('dptrain_step_phase_seconds_total', 'Cumulative time spent in each step phase, seconds.', ['phase']),
    workerCompute: gauge('dptrain_worker_compute_seconds', "Compute time of each live worker's last task, seconds.", ['worker']),
    workerRate: gauge('dptrain_worker_samples_per_second', 'Throughput of each live worker, samples per second.', ['worker']),
    workerBytes: counter('dptrain_worker_bytes_total', 'Bytes exchanged with each worker (as reported by the coordinator).', ['worker', 'direction']),
    workers: gauge('dptrain_workers', 'Workers by state.', ['state']),
    workerEvents: counter('dptrain_worker_events_total', 'Worker membership events.', ['event']),
    stragglers: counter('dptrain_stragglers_total', 'Straggler detections.'),
    errors: counter('dptrain_errors_total', 'Error events, by code.', ['code']),
    reassignments: counter('dptrain_reassignments_total', 'Leaf ranges reassigned from a lost worker to a live one.'),
    reassignedLeaves: counter('dptrain_reassigned_leaves_total', 'Leaves reassigned from lost workers.'),
    checkpoints: counter('dptrain_checkpoints_total', 'Checkpoints written.'),
    checkpointBytes: gauge('dptrain_checkpoint_bytes', 'Size of the last checkpoint written, bytes.'),
    checkpointStep: gauge('dptrain_checkpoint_step', 'Step of the last checkpoint written.'),
  };
}

/** A fresh metrics registry with every dptrain_* metric registered (and zero-valued where that is meaningful). */
export function createMetricsRegistry(options: MetricsOptions = {}): MetricsRegistry {
  const opts = { processMetrics: true, ...options };
  const registry = new Registry();
  const m = makeMetrics(registry);
  for (const s of WORKER_STATES) m.workers.set({ state: s }, 0);
  for (const [phase] of PHASES) m.phaseTotal.inc({ phase }, 0);
  for (const event of ['joined', 'left', 'dead']) m.workerEvents.inc({ event }, 0);
  m.finished.set(0);
  if (opts.processMetrics) collectDefaultMetrics({ register: registry });
  return { registry, contentType: registry.contentType, m, bytesSeen: new Map() };
}

/** Set a gauge unless the value is null/non-finite (a missing metric stays at its last value). */
function setIf(g: { set(value: number): void }, v: number | null | undefined, scale = 1): void {
  if (typeof v === 'number' && Number.isFinite(v)) g.set(v * scale);
}

function observeWorkers(reg: MetricsRegistry, list: readonly WorkerInfo[]): void {
  const { m } = reg;
  const counts = new Map<string, number>(WORKER_STATES.map((s) => [s, 0]));
  for (const w of list) {
    counts.set(w.state, (counts.get(w.state) ?? 0) + 1);
    const worker = w.workerId;
    if (w.state === 'dead' || w.state === 'left') {
      m.workerCompute.remove({ worker });
      m.workerRate.remove({ worker });
    } else {
      setIf(m.workerCompute.labels({ worker }), w.computeMs, 1e-3);
      setIf(m.workerRate.labels({ worker }), w.samplesPerSec);
    }
    // The list carries cumulative byte counts; a counter only grows, so add the increase
    // (a count that went down means the worker's session restarted: count it from zero).
    const last = reg.bytesSeen.get(worker) ?? { in: 0, out: 0 };
    const dIn = w.bytesIn >= last.in ? w.bytesIn - last.in : w.bytesIn;
    const dOut = w.bytesOut >= last.out ? w.bytesOut - last.out : w.bytesOut;
    if (dIn > 0 && Number.isFinite(dIn)) m.workerBytes.inc({ worker, direction: 'in' }, dIn);
    if (dOut > 0 && Number.isFinite(dOut)) m.workerBytes.inc({ worker, direction: 'out' }, dOut);
    reg.bytesSeen.set(worker, { in: w.bytesIn, out: w.bytesOut });
  }
  for (const [state, n] of counts) m.workers.set({ state }, n);
}

/**
 * Update the metrics from one run event. The coordinator feeds every event it emits here
 * (in seq order); nothing else writes to the registry. Counters only ever increase.
 */
export function metricsFromEvent(reg: MetricsRegistry, e: RunEvent): void {
  const { m } = reg;
  if (Number.isFinite(e.t)) m.lastEvent.set(e.t / 1000);
  switch (e.kind) {
    case 'run_started':
      m.runInfo.reset();
      m.runInfo.set({ run_id: e.runId }, 1);
      m.paramCount.set(e.paramCount);
      m.finished.set(0);
      break;
    case 'step': {
      m.steps.inc();
      if (e.samples > 0) m.samples.inc(e.samples);
      m.step.set(e.step);
      m.epoch.set(e.epoch);
      setIf(m.lr, e.lr);
      setIf(m.samplesPerSec, e.samplesPerSec);
      setIf(m.stepWorkers, e.workers);
      setIf(m.trainLoss, e.loss);
      setIf(m.trainAcc, e.accuracy);
      for (const [phase, key] of PHASES) {
        const ms = e.phases[key];
        if (!Number.isFinite(ms) || ms < 0) continue;
        m.phase.set({ phase }, ms / 1000);
        m.phaseTotal.inc({ phase }, ms / 1000);
      }
      break;
    }
    case 'eval':
      setIf(m.testLoss, e.loss);
      setIf(m.testAcc, e.accuracy);
      break;
    case 'worker_joined':
      m.workerEvents.inc({ event: 'joined' });
      break;
    case 'worker_left':
    case 'worker_dead':
      m.workerEvents.inc({ event: e.kind === 'worker_left' ? 'left' : 'dead' });
      m.workerCompute.remove({ worker: e.workerId });
      m.workerRate.remove({ worker: e.workerId });
      break;
    case 'reassigned':
      m.reassignments.inc();
      if (e.leaves[1] > e.leaves[0]) m.reassignedLeaves.inc(e.leaves[1] - e.leaves[0]);
      break;
    case 'straggler':
      m.stragglers.inc();
      break;
    case 'workers':
      observeWorkers(reg, e.list);
      break;
    case 'checkpoint':
      m.checkpoints.inc();
      setIf(m.checkpointBytes, e.bytes);
      setIf(m.checkpointStep, e.step);
      break;
    case 'error':
      m.errors.inc({ code: e.code });
      break;
    case 'run_finished':
      m.finished.set(1);
      break;
  }
}
