/**
 * Handles messages one at a time, in arrival order, without a detour through the promise
 * queue when it can: a message that arrives while nothing is queued or running is handled
 * at once, in the caller's event (a task is computed and its results sent before the
 * 'message' event returns); one that arrives while an earlier handler is still running
 * asynchronously (a welcome loading its data) or queued behind one waits for them all.
 *
 * A handler returns undefined when it finished synchronously, or a promise when it goes on
 * asynchronously; the next message starts only once that promise has settled. Whatever a
 * handler throws, synchronously or by rejecting, goes to `onError` (which must not throw),
 * and the messages after it are still handled (a handler that must stop checks its own
 * state).
 */
export class SerialDispatch<M> {
  /** Messages accepted and not yet handled to the end (their handler still running or queued). */
  private pending = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly handle: (m: M) => Promise<void> | undefined,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Whether a message given now would wait (an asynchronous handler is running or messages are queued). */
  get busy(): boolean {
    return this.pending > 0;
  }

  /** Handle `m` now if nothing is queued or running, else after everything before it. */
  push(m: M): void {
    if (this.pending === 0) {
      let running: Promise<void> | undefined;
      try {
        running = this.handle(m);
      } catch (e) {
        this.onError(e);
        return;
      }
      if (running) this.wait(running);
      return;
    }
    this.wait(this.tail.then(() => this.handle(m)));
  }

  /** Count `p` as pending until it settles, and queue the next messages behind it. */
  private wait(p: Promise<void>): void {
    this.pending++;
    this.tail = p.catch((e: unknown) => this.onError(e)).then(() => {
      this.pending--;
    });
  }
}
