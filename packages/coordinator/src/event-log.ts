import type { RunEvent, RunEventInit } from '@dptrain/protocol';

/**
 * The coordinator's observer events: stamps `seq` (from 0, no gaps) and `t` (wall
 * clock, ms), keeps a bounded history and calls listeners. A listener that throws
 * is reported through `onListenerError` and never breaks the run.
 */
export class EventLog {
  private readonly events: RunEvent[] = [];
  private readonly listeners = new Set<(e: RunEvent) => void>();
  private seq = 0;

  constructor(
    /** Oldest events are dropped beyond this many (seq keeps counting). */
    readonly maxHistory = 100_000,
    private readonly onListenerError: (err: unknown) => void = () => {},
  ) {}

  get history(): readonly RunEvent[] {
    return this.events;
  }

  emit(init: RunEventInit): RunEvent {
    const e = { ...init, seq: this.seq++, t: Date.now() } as RunEvent;
    this.events.push(e);
    if (this.events.length > this.maxHistory) this.events.splice(0, this.events.length - this.maxHistory);
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
}
