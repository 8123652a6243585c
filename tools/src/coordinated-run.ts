import { Coordinator } from '@dptrain/coordinator';
import { DptrainError } from '@dptrain/core';
import type { RunEvent } from '@dptrain/protocol';
import { LocalWorkers } from './local-workers.js';
import type { Progress } from './progress.js';
import type { RunPlan } from './run-options.js';

export interface CoordinatedRunOptions {
  /** Local worker processes to spawn (0 for `dptrain coordinator`). */
  localWorkers: number;
  /** Extra arguments for each local worker. */
  workerArgs?: string[];
  /** Where log lines go (default progress.log: stderr). */
  log?: (line: string) => void;
}

/**
 * Forward a coordinator event to the progress output. Membership changes and errors are
 * JSON lines in --json mode; in text mode the coordinator's own log (stderr) tells them.
 */
function report(progress: Progress, e: RunEvent): void {
  const raw = e as unknown as Record<string, unknown>;
  switch (e.kind) {
    case 'step':
      return progress.step(e);
    case 'eval':
      return progress.eval(e);
    case 'reassigned':
      return progress.event(e.kind, raw, `step ${e.step}: leaves [${e.leaves[0]}, ${e.leaves[1]}) moved from ${e.from} to ${e.to}`);
    case 'worker_joined':
    case 'worker_left':
    case 'worker_dead':
    case 'error':
      return progress.event(e.kind, raw, undefined);
    default:
      return;
  }
}

/**
 * Run a plan with an in-process Coordinator on plan.host:plan.port, optionally with local
 * worker processes, printing progress; resolves with the exit code. SIGINT/SIGTERM close
 * the coordinator and kill the workers (exit code 130 / 143).
 */
export async function coordinatedRun(plan: RunPlan, progress: Progress, opts: CoordinatedRunOptions): Promise<number> {
  const log = opts.log ?? ((line: string) => progress.log(line));
  const verbose = plan.verbose;
  const coordinator = new Coordinator({
    config: plan.config,
    data: plan.data.split,
    host: plan.host,
    port: plan.port,
    minWorkers: opts.localWorkers > 0 ? opts.localWorkers : plan.minWorkers,
    initParams: plan.initParams,
    checkpointDir: plan.checkpointDir,
    runId: plan.runName,
    log: (line) => log(`[coordinator] ${line}`),
  });
  let workers: LocalWorkers | undefined;
  let abort: ((e: Error) => void) | undefined;
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  aborted.catch(() => {});
  const off = coordinator.onEvent((e) => report(progress, e));
  const onSignal = (sig: NodeJS.Signals) => abort?.(new DptrainError('E_INTERRUPTED', `interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const t0 = performance.now();
  try {
    const { url } = await coordinator.start();
    progress.listening(url, { runId: plan.runName, checkpointDir: plan.checkpointDir });
    if (opts.localWorkers === 0) {
      progress.info(`waiting for ${plan.minWorkers} worker(s): dptrain worker --connect ${url}`);
    } else {
      workers = new LocalWorkers(opts.localWorkers, url, {
        extraArgs: opts.workerArgs,
        quiet: !verbose,
        onLine: log,
        onFailure: (name, detail) => abort?.(new DptrainError('E_WORKER', `local worker ${name} ${detail}`)),
      });
    }
    const summary = await Promise.race([coordinator.done(), aborted]);
    await workers?.waitExit(5000);
    progress.summary({
      runId: summary.runId,
      steps: summary.steps,
      epochs: summary.epochs,
      test: { loss: summary.test.loss, accuracy: summary.test.accuracy, samples: summary.test.samples },
      checkpoint: summary.checkpointPath,
      wallMs: summary.wallMs ?? performance.now() - t0,
      samplesPerSec: summary.samplesPerSec,
      workers: opts.localWorkers || plan.minWorkers,
    });
    return 0;
  } catch (e) {
    progress.stop();
    throw e;
  } finally {
    off();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await coordinator.close();
    await workers?.stop();
  }
}
