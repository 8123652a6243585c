import type { RunEvent, RunEventInit } from '@dptrain/protocol';

/**
 * Events of these kinds are snapshots (each supersedes the previous one), emitted up to
 * once per step: the history keeps only the most recent ones, by kind. A `workers` event
 * is a few hundred bytes per worker; keeping them all would double the history of a long
 * run (and its replay to every late viewer) for nothing, since a viewer only needs the
 * latest table (worker_joined/left/dead events, always kept, tell the rest).
 */
export const SNAPSHOT_KINDS: Readonly<Partial<Record<RunEvent['kind'], number>>> = { workers: 64 };

/**
 * The coordinator's observer events: stamps `seq` (from 0, no gaps) and `t` (wall
 * clock, ms), keeps a bounded history and calls listeners. A listener that throws
 * is reported through `onListenerError` and never breaks the run.
 *
 * History retention: at most `maxHistory` events (the oldest are dropped); of each kind
 * in `keepLatest`, only the latest N to 2N (superseded ones are compacted away in one
 * pass once there are 2N, so the cost stays O(1) amortized per event). The history is
 * thus in ascending seq, with gaps once snapshots have been dropped.
 */
export class EventLog {
  private readonly events: RunEvent[] = [];
  private readonly listeners = new Set<(e: RunEvent) => void>();
  private readonly counts = new Map<string, number>();
  private seq = 0;

  constructor(
    /** Oldest events are dropped beyond this many (seq keeps counting). */
    readonly maxHistory = 100_000,
    private readonly onListenerError: (err: unknown) => void = () => {},
    /** Kinds of which only the latest N (to 2N) events are kept; default SNAPSHOT_KINDS. */
    readonly keepLatest: Readonly<Partial<Record<RunEvent['kind'], number>>> = SNAPSHOT_KINDS,
  ) {}

  /** The retained events, in ascending seq (the same array, updated in place). */
  get history(): readonly RunEvent[] {
    return this.events;
  }

  emit(init: RunEventInit): RunEvent {
    const e = { ...init, seq: this.seq++, t: Date.now() } as RunEvent;
    this.events.push(e);
    const keep = this.keepLatest[e.kind];
    if (keep !== undefined) {
      const n = (this.counts.get(e.kind) ?? 0) + 1;
      this.counts.set(e.kind, n);
      if (n >= 2 * Math.max(1, keep)) this.compact(e.kind, keep);
    }
    if (this.events.length > this.maxHistory) {
      for (const old of this.events.splice(0, this.events.length - this.maxHistory)) {
        const n = this.counts.get(old.kind);
        if (n !== undefined) this.counts.set(old.kind, n - 1);
      }
    }
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError(err);
      }
    }
    return e;
  }

  /** Register a listener; returns its remover. */
  on(listener: (e: RunEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Drop all but the latest `keep` events of `kind`, in place. */
  private compact(kind: string, keep: number): void {
    let drop = (this.counts.get(kind) ?? 0) - keep;
    let w = 0;
    for (const e of this.events) {
      if (e.kind === kind && drop > 0) {
        drop--;
        continue;
      }
      this.events[w++] = e;
    }
    this.events.length = w;
    this.counts.set(kind, keep);
  }
}
