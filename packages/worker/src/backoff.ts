import { ConfigError, Rng } from '@dptrain/core';

/** How a worker retries a lost or refused connection. */
export interface ReconnectOptions {
  /** Delay before the first retry, ms (default 200). */
  initialMs?: number;
  /** Largest delay, ms (default 5000). */
  maxMs?: number;
  /** Retries after a connection is lost or refused, before giving up (default Infinity). */
  maxAttempts?: number;
  /** Seed of the jitter (default: the process id). */
  jitterSeed?: number;
}

export const RECONNECT_DEFAULTS: Required<ReconnectOptions> = { initialMs: 200, maxMs: 5000, maxAttempts: Infinity, jitterSeed: 0 };

/** Check reconnect options and merge them over the defaults; errors name the field. */
export function validateReconnect(o: ReconnectOptions = {}, defaultSeed = 0): Required<ReconnectOptions> {
  const r = { ...RECONNECT_DEFAULTS, jitterSeed: defaultSeed, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  if (!(Number.isFinite(r.initialMs) && r.initialMs >= 0)) throw new ConfigError('reconnect.initialMs', `expected a finite number >= 0, got ${r.initialMs}`);
  if (!(Number.isFinite(r.maxMs) && r.maxMs >= r.initialMs)) throw new ConfigError('reconnect.maxMs', `expected a finite number >= initialMs (${r.initialMs}), got ${r.maxMs}`);
  if (!(r.maxAttempts === Infinity || (Number.isInteger(r.maxAttempts) && r.maxAttempts >= 0))) {
    throw new ConfigError('reconnect.maxAttempts', `expected an integer >= 0 or Infinity, got ${r.maxAttempts}`);
  }
  if (!(Number.isInteger(r.jitterSeed) && r.jitterSeed >= 0 && r.jitterSeed <= 0xffffffff)) {
    throw new ConfigError('reconnect.jitterSeed', `expected an integer in [0, 4294967295], got ${r.jitterSeed}`);
  }
  return r;
}

/**
 * Exponential backoff with jitter: retry k (0-based) waits min(maxMs, initialMs·2^k) scaled
 * by a factor in [0.5, 1) drawn from a seeded Rng, so many workers restarted together do not
 * reconnect in lockstep. reset() after a successful session starts over from initialMs.
 */
export class Backoff {
  private attempt = 0;
  private readonly rng: Rng;
  /** @param policy the options it was made with (also read for messages about the retry policy) */
  constructor(readonly policy: Readonly<Required<ReconnectOptions>>) {
    this.rng = new Rng(policy.jitterSeed);
  }

  /** Retries used since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next retry, or undefined when maxAttempts are used up. */
  next(): number | undefined {
    if (this.attempt >= this.policy.maxAttempts) return undefined;
    const base = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** this.attempt);
    this.attempt++;
    return Math.round(base * (0.5 + 0.5 * this.rng.nextFloat()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
