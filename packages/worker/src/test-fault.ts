import { ConfigError } from '@dptrain/core';

/**
 * TEST-ONLY fault injection, for the multi-process tests. Inert unless a fault is given
 * explicitly (the `dptrain worker` command reads it from the environment variable
 * DPTRAIN_TEST_FAULT; nothing else sets it). Never use it in a real run.
 *
 * Grammar, each optionally followed by `@NAME` (then only the worker named NAME is affected):
 * - `nan-at-step:S`: the worker overwrites the gradient of the first node it computes for
 *   step S (the step as numbered in task messages: 0 is the first update) with NaN, once
 *   per process, so the coordinator's non-finite policy is exercised end to end.
 * - `slow:F` (F a number, 1 < F ≤ 20): after computing each node the worker waits
 *   (F − 1) × that node's compute time before sending it, without using the CPU, and
 *   reports the wait as compute time: the coordinator sees a host F times slower, e.g. to
 *   exercise the speed-balanced leaf split with real processes.
 */
export type TestFault = NanAtStepFault | SlowFault;

/** `nan-at-step:S[@NAME]`: NaN in the first gradient computed for step S. */
export interface NanAtStepFault {
  kind: 'nan-at-step';
  step: number;
  /** Only the worker with this name is affected (default: every worker given the fault). */
  worker?: string;
}

/** `slow:F[@NAME]`: every node takes F times as long (the extra time spent waiting). */
export interface SlowFault {
  kind: 'slow';
  /** How many times slower the worker seems, in (1, SLOW_MAX]. */
  factor: number;
  /** Only the worker with this name is affected (default: every worker given the fault). */
  worker?: string;
}

/** The environment variable `dptrain worker` reads a TestFault from (tests only). */
export const TEST_FAULT_ENV = 'DPTRAIN_TEST_FAULT';

/** The largest slow-down factor `slow:F` accepts. */
export const SLOW_MAX = 20;

const GRAMMAR = 'nan-at-step:STEP[@WORKER-NAME] or slow:FACTOR[@WORKER-NAME] (a test-only fault hook)';

/** Parse a fault spec (see TestFault); undefined or empty text means none. Throws ConfigError naming `field`. */
export function parseTestFault(text: string | undefined, field = TEST_FAULT_ENV): TestFault | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const spec = text.trim();
  const nan = /^nan-at-step:(\d{1,9})(?:@(.+))?$/.exec(spec);
  if (nan) return named({ kind: 'nan-at-step', step: Number(nan[1]) }, nan[2]);
  const slow = /^slow:([^@]*)(?:@(.+))?$/.exec(spec);
  if (slow) {
    const factor = /^\d{1,3}(\.\d{1,6})?$/.test(slow[1]) ? Number(slow[1]) : Number.NaN;
    if (!(factor > 1 && factor <= SLOW_MAX)) {
      throw new ConfigError(field, `slow:FACTOR expects a number > 1 and <= ${SLOW_MAX} (how many times slower the worker should seem), got ${JSON.stringify(slow[1])}`);
    }
    return named({ kind: 'slow', factor }, slow[2]);
  }
  throw new ConfigError(field, `expected ${GRAMMAR}, got ${JSON.stringify(text)}`);
}

function named<T extends TestFault>(fault: T, worker: string | undefined): T {
  if (worker !== undefined) fault.worker = worker;
  return fault;
}

/** One Int32 to Atomics.wait on: nothing ever notifies it, so a wait runs to its timeout. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Block this thread for `ms` without using the CPU; returns the ms actually waited. */
function sleepMs(ms: number): number {
  if (!(ms > 0)) return 0;
  const t0 = performance.now();
  Atomics.wait(sleeper, 0, 0, ms);
  return performance.now() - t0;
}

/** A TestFault as one worker applies it: nan-at-step at most once per process, slow on every node. */
export class FaultInjector {
  private fired = false;

  constructor(
    private readonly fault: TestFault | undefined,
    private readonly workerName: string,
  ) {}

  /** Whether a fault is armed for this worker at all (a nan-at-step fault that fired is not). */
  get armed(): boolean {
    return this.fault !== undefined && (this.fault.worker === undefined || this.fault.worker === this.workerName) && !this.fired;
  }

  /** What the armed fault does, for the warning a worker prints at start. */
  describe(): string {
    const f = this.fault;
    if (!f) return 'no fault';
    return f.kind === 'slow' ? `this worker waits ${f.factor - 1}× its compute time after each node on purpose` : `this worker will corrupt its results at step ${f.step} on purpose`;
  }

  /** Corrupt `grad` if a nan-at-step fault is due at `step`; true when it did. */
  corruptGradient(step: number, grad: Float32Array): boolean {
    if (!this.armed || this.fault!.kind !== 'nan-at-step' || this.fault!.step !== step) return false;
    this.fired = true;
    grad.fill(Number.NaN);
    return true;
  }

  /**
   * Under a slow fault for this worker: block (F − 1) × `computeMs` (a node's compute
   * time) without using the CPU, and return the ms waited, for the caller to add to the
   * compute time it reports. Otherwise 0, at once. Call it before the node's result is sent.
   */
  slowDown(computeMs: number): number {
    if (!this.armed || this.fault!.kind !== 'slow') return 0;
    return sleepMs((this.fault!.factor - 1) * computeMs);
  }
}
