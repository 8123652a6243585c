/**
 * The per-step deadline: a fixed number of ms, or max(minMs, factor × the median of the
 * last `window` step times) — a step time being tasks-out to last result. Past it, the
 * nodes still owed are re-executed elsewhere.
 */
export class StepDeadline {
  private readonly recent: number[] = [];

  constructor(
    private readonly fixedMs: number | undefined,
    private readonly minMs = 10_000,
    private readonly factor = 5,
    private readonly window = 16,
  ) {}

  /** A step took `ms` from its tasks going out to its last result. */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.recent.push(ms);
    if (this.recent.length > this.window) this.recent.shift();
  }

  /** Median of the recent step times (0 before the first step). */
  get medianMs(): number {
    if (this.recent.length === 0) return 0;
    const s = [...this.recent].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  }

  /** The deadline of the next (or current) step, ms after its tasks went out. */
  get ms(): number {
    return this.fixedMs ?? Math.max(this.minMs, this.factor * this.medianMs);
  }
}
