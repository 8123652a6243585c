import { Coordinator, type RunSummary } from '@dptrain/coordinator';
import { DptrainError } from '@dptrain/core';
import type { RunEvent } from '@dptrain/protocol';
import { LocalWorkers } from './local-workers.js';
import type { Progress } from './progress.js';
import { resumeArgs, resumeCommand } from './resume-hint.js';
import type { RunPlan } from './run-options.js';
import { TOKEN_ENV } from './serve-options.js';

export interface CoordinatedRunOptions {
  /** Local worker processes to spawn (0 for `dptrain coordinator`). */
  localWorkers: number;
  /** Extra arguments for each local worker. */
  workerArgs?: string[];
  /** Where log lines go (default progress.log: stderr). */
  log?: (line: string) => void;
  /** This command's arguments (without node and the script), for the resume command printed on a signal (default process.argv.slice(2)). */
  argv?: string[];
}

/** Exit codes of a run stopped by a signal (128 + the signal number). */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT;

/** A URL on an unspecified address (0.0.0.0, [::]) made reachable from this machine (127.0.0.1, [::1]). */
export function reachableUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)(0\.0\.0\.0|\[::\])(?=[:/])/, (_, scheme: string, host: string) => `${scheme}${host === '[::]' ? '[::1]' : '127.0.0.1'}`);
}

/** The dashboard's address for the coordinator's worker URL: same host and port, http(s). */
export function dashboardUrl(workerUrl: string): string {
  return reachableUrl(workerUrl).replace(/^ws(s?):\/\//, 'http$1://');
}

/**
 * How the local workers of `dptrain train` are started: extra arguments (--ca with TLS) and
 * the environment. The token travels in the environment (DPTRAIN_TOKEN), never in argv,
 * where any user of the machine could read it.
 */
export function localWorkerLaunch(plan: Pick<RunPlan, 'serve'>, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): { args: string[]; env: NodeJS.ProcessEnv } {
  const args = [...extraArgs];
  if (plan.serve.tls) args.push('--ca', plan.serve.tls.certFile);
  const out = { ...env };
  if (plan.serve.token !== undefined) out[TOKEN_ENV] = plan.serve.token;
  return { args, env: out };
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
    case 'checkpoint':
      return progress.event(e.kind, raw, undefined);
    default:
      return;
  }
}

const pause = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Run a plan with an in-process Coordinator on plan.host:plan.port, optionally with local
 * worker processes, printing progress; resolves with the exit code. A local worker that
 * dies is survived (its leaves are recomputed elsewhere) while another one lives.
 * SIGINT/SIGTERM stop the run gracefully: a resume checkpoint is written, the workers are
 * told to exit, the checkpoint and the command that resumes the run are printed, and the
 * exit code is 130 / 143 (a second signal exits at once).
 */
export async function coordinatedRun(plan: RunPlan, progress: Progress, opts: CoordinatedRunOptions): Promise<number> {
  const log = opts.log ?? ((line: string) => progress.log(line));
  const s = plan.serve;
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
    token: s.token,
    allowInsecure: s.allowInsecure,
    tls: s.tls && { cert: s.tls.cert, key: s.tls.key },
    checkpointEvery: s.checkpointEvery,
    checkpointEverySec: s.checkpointEverySec,
    resumeFrom: s.resumeFrom,
    nonFinitePolicy: s.nonFinitePolicy,
    maxRetries: s.maxRetries,
    stepTimeoutMs: s.stepTimeoutMs,
    observer: s.dashboard,
    sharedMemory: s.sharedMemory,
    balance: s.balance,
  });
  let workers: LocalWorkers | undefined;
  let failed: ((e: Error) => void) | undefined;
  const workerFailure = new Promise<never>((_, reject) => (failed = reject));
  workerFailure.catch(() => {});
  let signalled: ((sig: StopSignal) => void) | undefined;
  const signal = new Promise<StopSignal>((resolve) => (signalled = resolve));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      log(`second ${sig}: exiting without waiting`);
      process.exit(SIGNAL_EXIT[sig as StopSignal] ?? 130);
    }
    signalled?.(sig as StopSignal);
  };
  let lastCheckpoint: { step: number; path: string } | undefined;
  const offReport = coordinator.onEvent((e) => report(progress, e));
  const offCheckpoint = coordinator.onEvent((e) => {
    if (e.kind === 'checkpoint') lastCheckpoint = { step: e.step, path: e.path };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = performance.now();
  try {
    const { url } = await coordinator.start();
    progress.listening(url, { runId: plan.runName, checkpointDir: plan.checkpointDir });
    if (s.dashboard) progress.dashboard(dashboardUrl(url), s.token !== undefined);
    if (opts.localWorkers === 0) {
      const ca = s.tls ? ` --ca ${s.tls.certFile}` : '';
      progress.info(`waiting for ${plan.minWorkers} worker(s): dptrain worker --connect ${url}${ca}${s.token !== undefined ? ` (with the token: --token or ${TOKEN_ENV})` : ''}`);
    } else {
      const launch = localWorkerLaunch(plan, opts.workerArgs);
      const local: LocalWorkers = new LocalWorkers(opts.localWorkers, reachableUrl(url), {
        extraArgs: launch.args,
        env: launch.env,
        quiet: !plan.verbose,
        onLine: log,
        onFailure: (name, detail) => {
          const alive = local.children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null).length;
          if (alive > 0) return log(`local worker ${name} ${detail}; the run goes on with ${alive} worker(s)`);
          // the coordinator's own account of a failed run (e.g. E_NONFINITE) wins over the workers' exits it causes
          const err = new DptrainError('E_WORKER', `local worker ${name} ${detail}; no local worker is left`);
          void Promise.race([coordinator.done().then(() => {}, () => {}), pause(1000)]).then(() => failed?.(err));
        },
      });
      workers = local;
    }
    const outcome = await Promise.race([coordinator.done().then((summary) => ({ summary })), signal.then((sig) => ({ sig })), workerFailure]);
    const summary = 'sig' in outcome ? await interrupt(outcome.sig) : outcome.summary;
    if (summary === undefined) return SIGNAL_EXIT[(outcome as { sig: StopSignal }).sig];
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
    offReport();
    offCheckpoint();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await coordinator.close();
    await workers?.stop();
  }

  /** Stop on a signal; the summary if the run had finished anyway, else undefined after printing how to resume. */
  async function interrupt(sig: StopSignal): Promise<RunSummary | undefined> {
    progress.stop();
    log(`${sig}: stopping the run: writing a resume checkpoint and telling the workers to exit (${sig} again to exit at once)`);
    await coordinator.stop(`interrupted by ${sig}`);
    const end = await coordinator.done().then(
      (summary) => summary,
      () => undefined,
    );
    if (end) return end;
    await workers?.waitExit(3000);
    const args = resumeArgs(opts.argv ?? process.argv.slice(2), plan.checkpointDir);
    const command = resumeCommand(args);
    progress.interrupted({
      signal: sig,
      step: coordinator.stats().step,
      totalSteps: plan.totalSteps,
      checkpoint: lastCheckpoint?.path,
      resume: s.token !== undefined ? `${command}   (with the same token: --token or ${TOKEN_ENV})` : command,
      resumeArgs: args,
    });
    return undefined;
  }
}
