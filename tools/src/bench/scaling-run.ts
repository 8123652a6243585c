/**
 * One measured distributed run, as `dptrain train` runs it: a Coordinator in this
 * process and N local `dptrain worker` processes over loopback WebSockets. The first
 * `warmup` steps are not timed; over the next `steps` steps it records throughput,
 * per-step phases (from the coordinator's step events), the bytes each worker sent and
 * received (coordinator stats) against the raw float32 payload, and this process's CPU
 * time (the coordinator's). The coordinator evaluates only after the last step
 * (periodicEvaluation: false), so no timed step shares the CPU with an evaluation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Balance, Coordinator, type CoordinatorStats } from '@dptrain/coordinator';
import { ConfigError, type DatasetSplit, DptrainError, type RunConfig, paramLayout } from '@dptrain/core';
import type { RunEvent, StepPhases } from '@dptrain/protocol';
import { LocalWorkers } from '../local-workers.js';
import { type Summary, median, summarize } from './util.js';

/** What to measure. */
export interface ScalingRunOptions {
  /** The run; its `steps` is replaced by warmup + steps. */
  config: RunConfig;
  data: DatasetSplit;
  /** Local worker processes. */
  workers: number;
  /** Untimed steps first (≥ 1). */
  warmup: number;
  /** Timed steps (≥ 1). */
  steps: number;
  host?: string;
  initParams?: Float32Array;
  /** Coordinator and worker log lines (default: dropped). */
  log?: (line: string) => void;
  /** Offer the workers the shared-memory data plane (default true, as `dptrain train`). */
  sharedMemory?: boolean;
  /** How leaves are split over the workers (default 'even', as `dptrain train`). */
  balance?: Balance;
}

/**
 * Bytes one worker exchanged with the coordinator per timed step: protocol messages on the
 * socket (without WebSocket framing) plus payloads through shared memory.
 */
export interface WorkerTraffic {
  id: string;
  /** Worker → coordinator (results, heartbeats; gradients in its result file). */
  sent: number;
  /** Coordinator → worker (params, tasks, heartbeats; params in the params file). */
  received: number;
  /** The part of sent / received that went through shared memory. */
  shmSent: number;
  shmReceived: number;
}

/** The figures of one run, over its timed steps. */
export interface ScalingRunResult {
  workers: number;
  batchSize: number;
  leafSize: number;
  kernel: string;
  paramCount: number;
  /** Steps timed (= `steps`). */
  timedSteps: number;
  samples: number;
  /** Σ step wall times (step event to step event, over the timed steps), ms. */
  wallMs: number;
  samplesPerSec: number;
  /** Fewest and most workers that took part in a timed step. */
  participants: { min: number; max: number };
  /** Median of each phase over the timed steps, ms. */
  phases: StepPhases;
  traffic: WorkerTraffic[];
  /** Σ over workers of sent + received, per step. */
  bytesPerStep: number;
  /** Raw float32 payload per step: per worker one params payload plus one gradient per tree node it returns (counted by the coordinator). */
  rawBytesPerStep: number;
  /** (bytesPerStep − rawBytesPerStep) / rawBytesPerStep × 100. */
  overheadPct: number;
  /** This process's CPU time (the coordinator's) per timed step, ms. */
  coordinatorCpuMsPerStep: { user: number; system: number; total: number };
  /** reassigned / straggler events during the timed steps (0 in a clean run). */
  incidents: number;
}

function trafficById(s: CoordinatorStats): Map<string, { in: number; out: number; shmIn: number; shmOut: number }> {
  return new Map(s.workers.map((w) => [w.id, { in: w.bytesIn, out: w.bytesOut, shmIn: w.shmBytesIn, shmOut: w.shmBytesOut }]));
}

/** Run one measured distributed run to its end; resolves with its figures. */
export async function measureScalingRun(o: ScalingRunOptions): Promise<ScalingRunResult> {
  if (!Number.isInteger(o.warmup) || o.warmup < 1) throw new ConfigError('warmup', `expected an integer >= 1, got ${o.warmup}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new ConfigError('steps', `expected an integer >= 1, got ${o.steps}`);
  const config: RunConfig = { ...o.config, steps: o.warmup + o.steps };
  const paramCount = paramLayout(config.model).total;
  const log = o.log ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'dptrain-bench-'));
  const coordinator = new Coordinator({
    config,
    data: o.data,
    host: o.host ?? '127.0.0.1',
    port: 0,
    minWorkers: o.workers,
    initParams: o.initParams,
    checkpointDir: dir,
    runId: `bench-${o.workers}w`,
    log: (l) => log(`[coordinator] ${l}`),
    sharedMemory: o.sharedMemory ?? true,
    balance: o.balance ?? 'even',
    // no evaluation until the run is over: a timed step never shares the CPU with one
    periodicEvaluation: false,
  });

  const lastStep = o.warmup + o.steps;
  const steps: { samples: number; wallMs: number; phases: StepPhases; workers: number }[] = [];
  let mark = { t: 0, cpu: process.cpuUsage() };
  const cpu = { user: 0, system: 0 };
  let t0: CoordinatorStats | undefined;
  let t1: CoordinatorStats | undefined;
  let incidents = 0;
  const off = coordinator.onEvent((e: RunEvent) => {
    if (e.kind === 'reassigned' || e.kind === 'straggler') {
      if (e.step > o.warmup && e.step <= lastStep) incidents++;
      return;
    }
    if (e.kind !== 'step') return;
    const now = { t: performance.now(), cpu: process.cpuUsage() };
    if (e.step > o.warmup && e.step <= lastStep) {
      const d = process.cpuUsage(mark.cpu);
      cpu.user += d.user / 1000;
      cpu.system += d.system / 1000;
      steps.push({ samples: e.samples, wallMs: now.t - mark.t, phases: e.phases, workers: e.workers });
    }
    if (e.step === o.warmup) t0 = coordinator.stats();
    if (e.step === lastStep) t1 = coordinator.stats();
    mark = now;
  });

  let workers: LocalWorkers | undefined;
  let abort: ((e: Error) => void) | undefined;
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => {});
  const onSignal = (sig: NodeJS.Signals) => abort?.(new DptrainError('E_INTERRUPTED', `interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { url } = await coordinator.start();
    workers = new LocalWorkers(o.workers, url, {
      quiet: o.log === undefined,
      onLine: log,
      onFailure: (name, detail) => abort?.(new DptrainError('E_WORKER', `local worker ${name} ${detail}`)),
    });
    await Promise.race([coordinator.done(), aborted]);
    await workers.waitExit(5000);
  } finally {
    off();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await coordinator.close();
    await workers?.stop();
    await rm(dir, { recursive: true, force: true });
  }
  if (!t0 || !t1 || steps.length !== o.steps) throw new DptrainError('E_BENCH', `the run ended before its ${o.steps} timed steps (${steps.length} recorded)`);

  const a = trafficById(t0);
  const traffic: WorkerTraffic[] = [...trafficById(t1)].map(([id, b]) => {
    const z = a.get(id) ?? { in: 0, out: 0, shmIn: 0, shmOut: 0 };
    const shmSent = (b.shmIn - z.shmIn) / o.steps;
    const shmReceived = (b.shmOut - z.shmOut) / o.steps;
    return { id, sent: (b.in - z.in) / o.steps + shmSent, received: (b.out - z.out) / o.steps + shmReceived, shmSent, shmReceived };
  });
  const samples = steps.reduce((s, x) => s + x.samples, 0);
  const wallMs = steps.reduce((s, x) => s + x.wallMs, 0);
  const bytesPerStep = traffic.reduce((s, w) => s + w.sent + w.received, 0);
  const payloads = t1.payloads.paramsOut - t0.payloads.paramsOut + (t1.payloads.resultsIn - t0.payloads.resultsIn);
  const rawBytesPerStep = (payloads * paramCount * 4) / o.steps;
  const phase = (k: keyof StepPhases) => median(steps.map((x) => x.phases[k]));
  return {
    workers: o.workers,
    batchSize: config.batchSize,
    leafSize: config.leafSize,
    kernel: config.kernel,
    paramCount,
    timedSteps: steps.length,
    samples,
    wallMs,
    samplesPerSec: (samples * 1000) / wallMs,
    participants: { min: Math.min(...steps.map((x) => x.workers)), max: Math.max(...steps.map((x) => x.workers)) },
    phases: { computeMs: phase('computeMs'), waitMs: phase('waitMs'), reduceMs: phase('reduceMs'), updateMs: phase('updateMs'), broadcastMs: phase('broadcastMs'), totalMs: phase('totalMs') },
    traffic,
    bytesPerStep,
    rawBytesPerStep,
    overheadPct: ((bytesPerStep - rawBytesPerStep) / rawBytesPerStep) * 100,
    coordinatorCpuMsPerStep: { user: cpu.user / steps.length, system: cpu.system / steps.length, total: (cpu.user + cpu.system) / steps.length },
    incidents,
  };
}

/** The repeats of one configuration, summarized (median and range of the per-run figures). */
export interface ScalingSummary {
  workers: number;
  batchSize: number;
  runs: number;
  samplesPerSec: Summary;
  phases: Record<keyof StepPhases, Summary>;
  /** Per worker per step, averaged over the workers of a run. */
  sentPerWorker: Summary;
  receivedPerWorker: Summary;
  bytesPerStep: Summary;
  rawBytesPerStep: number;
  overheadPct: Summary;
  coordinatorCpuMsPerStep: Summary;
  incidents: number;
}

/** Summarize the runs of one configuration (same workers and batch size). */
export function summarizeRuns(runs: readonly ScalingRunResult[]): ScalingSummary {
  if (runs.length === 0) throw new RangeError('summarizeRuns: no runs');
  const s = (f: (r: ScalingRunResult) => number) => summarize(runs.map(f));
  const perWorker = (r: ScalingRunResult, k: 'sent' | 'received') => r.traffic.reduce((a, w) => a + w[k], 0) / Math.max(1, r.traffic.length);
  const ph = (k: keyof StepPhases) => s((r) => r.phases[k]);
  return {
    workers: runs[0].workers,
    batchSize: runs[0].batchSize,
    runs: runs.length,
    samplesPerSec: s((r) => r.samplesPerSec),
    phases: { computeMs: ph('computeMs'), waitMs: ph('waitMs'), reduceMs: ph('reduceMs'), updateMs: ph('updateMs'), broadcastMs: ph('broadcastMs'), totalMs: ph('totalMs') },
    sentPerWorker: s((r) => perWorker(r, 'sent')),
    receivedPerWorker: s((r) => perWorker(r, 'received')),
    bytesPerStep: s((r) => r.bytesPerStep),
    rawBytesPerStep: median(runs.map((r) => r.rawBytesPerStep)),
    overheadPct: s((r) => r.overheadPct),
    coordinatorCpuMsPerStep: s((r) => r.coordinatorCpuMsPerStep.total),
    incidents: runs.reduce((a, r) => a + r.incidents, 0),
  };
}

/**
 * Speed-up of `other` over `base`: the ratio of the median samples/s, and the range of
 * the ratios of runs paired by repeat index (run i of one against run i of the other).
 */
export function speedUp(base: readonly ScalingRunResult[], other: readonly ScalingRunResult[]): { ratio: number; min: number; max: number } {
  const ratio = median(other.map((r) => r.samplesPerSec)) / median(base.map((r) => r.samplesPerSec));
  const n = Math.min(base.length, other.length);
  const paired = Array.from({ length: n }, (_, i) => other[i].samplesPerSec / base[i].samplesPerSec);
  return { ratio, min: n ? Math.min(...paired) : ratio, max: n ? Math.max(...paired) : ratio };
}
