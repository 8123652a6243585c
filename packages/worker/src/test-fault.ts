import { ConfigError } from '@dptrain/core';

/**
 * TEST-ONLY fault injection, for the multi-process fault-tolerance tests. Inert unless a
 * fault is given explicitly (the `dptrain worker` command reads it from the environment
 * variable DPTRAIN_TEST_FAULT; nothing else sets it). Never use it in a real run.
 *
 * Grammar: `nan-at-step:S` or `nan-at-step:S@NAME`. The worker (only the one named NAME,
 * if given) overwrites the gradient of the first node it computes for step S (the step as
 * numbered in task messages: 0 is the first update) with NaN, once per process, so the
 * coordinator's non-finite policy is exercised end to end.
 */
export interface TestFault {
  kind: 'nan-at-step';
  step: number;
  /** Only the worker with this name is affected (default: every worker given the fault). */
  worker?: string;
}

/** The environment variable `dptrain worker` reads a TestFault from (tests only). */
export const TEST_FAULT_ENV = 'DPTRAIN_TEST_FAULT';

/** Parse a fault spec (see TestFault); undefined or empty text means none. Throws ConfigError naming `field`. */
export function parseTestFault(text: string | undefined, field = TEST_FAULT_ENV): TestFault | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const m = /^nan-at-step:(\d{1,9})(?:@(.+))?$/.exec(text.trim());
  if (!m) throw new ConfigError(field, `expected nan-at-step:STEP or nan-at-step:STEP@WORKER-NAME (a test-only fault hook), got ${JSON.stringify(text)}`);
  const fault: TestFault = { kind: 'nan-at-step', step: Number(m[1]) };
  if (m[2] !== undefined) fault.worker = m[2];
  return fault;
}

/** A TestFault applied at most once per process. */
export class FaultInjector {
  private fired = false;

  constructor(
    private readonly fault: TestFault | undefined,
    private readonly workerName: string,
  ) {}

  /** Whether a fault is armed for this worker at all. */
  get armed(): boolean {
    return this.fault !== undefined && (this.fault.worker === undefined || this.fault.worker === this.workerName) && !this.fired;
  }

  /** Corrupt `grad` if the fault is due at `step`; true when it did. */
  corruptGradient(step: number, grad: Float32Array): boolean {
    if (!this.armed || this.fault!.step !== step) return false;
    this.fired = true;
    grad.fill(Number.NaN);
    return true;
  }
}
