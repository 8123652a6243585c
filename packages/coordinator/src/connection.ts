import { LIMITS, type MessageInit, encode, truncateUtf8 } from '@dptrain/protocol';
import { WebSocket } from 'ws';

/** Where a worker's session stands: hello → (welcome) loading → (ready) ready → closed. */
export type SessionPhase = 'hello' | 'loading' | 'ready' | 'closed';

/** Byte counters shared by all connections. */
export interface Traffic {
  bytesIn: number;
  bytesOut: number;
  shmBytesIn: number;
  shmBytesOut: number;
}

/** One worker's WebSocket and its session state; sends count bytes, closing is idempotent. */
export class Connection {
  phase: SessionPhase = 'hello';
  host = '';
  name = '';
  bytesIn = 0;
  bytesOut = 0;
  /** Payload bytes moved through the shared-memory data plane (not counted in bytesIn/bytesOut). */
  shmBytesIn = 0;
  shmBytesOut = 0;
  /** The worker was offered the shared-memory data plane (its result file exists). */
  shmOffered = false;
  /** The worker took it: params go out as params_ref, result_ref is accepted. */
  shm = false;
  /** The peer's address is loopback (the only peers offered shared memory). */
  loopback = false;
  /** Highest result_ref seq of this session dealt with (read, or dropped unread): sent back in task.resultsRead. */
  resultsRead = 0;
  /** Params given through shared memory whose reference waits for this worker's next task (see ShmPlane). */
  pendingParamsRef: { version: number; slot: number; seq: number } | undefined;
  /** Frames received on this connection. */
  framesIn = 0;
  private windowStart = 0;
  private windowFrames = 0;
  /** Why the session ended, once known (reported to the machine when the socket closes). */
  endReason: string | undefined;
  /** Whether the end is a death (socket lost, timeout) rather than an orderly leave. */
  endDead = true;
  /** Date.now() when the socket was accepted. */
  readonly openedAt = Date.now();

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    private readonly traffic: Traffic,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Count an inbound frame. */
  received(bytes: number): void {
    this.bytesIn += bytes;
    this.traffic.bytesIn += bytes;
    this.framesIn++;
  }

  /** Count a gradient read from the worker's result file. */
  shmReceived(bytes: number): void {
    this.shmBytesIn += bytes;
    this.traffic.shmBytesIn += bytes;
  }

  /** Count params the worker reads from the params file. */
  shmSent(bytes: number): void {
    this.shmBytesOut += bytes;
    this.traffic.shmBytesOut += bytes;
  }

  /** Count a frame in the current one-second window; true once more than `perSec` arrived in it. */
  overRate(nowMs: number, perSec: number): boolean {
    if (nowMs - this.windowStart >= 1000) {
      this.windowStart = nowMs;
      this.windowFrames = 0;
    }
    return ++this.windowFrames > perSec;
  }

  /**
   * Send an encoded frame (no-op once closed); returns whether it was sent. The bytes are not
   * copied: keep them unchanged until `done` is called (once: when the socket has written them,
   * or failed to). `done` is only called when the frame was sent.
   */
  sendBytes(bytes: Uint8Array, done?: () => void): boolean {
    if (!this.open) return false;
    if (done) this.ws.send(bytes, { binary: true }, () => done());
    else this.ws.send(bytes, { binary: true });
    this.bytesOut += bytes.length;
    this.traffic.bytesOut += bytes.length;
    return true;
  }

  send(msg: MessageInit): void {
    this.sendBytes(encode(msg));
  }

  /** Send an `error` (fatal) and close with `closeCode`. */
  fail(code: string, message: string, closeCode: number, dead = false): void {
    if (this.phase === 'closed') return;
    const wireCode = /^[A-Z][A-Z0-9_]*$/.test(code) && code.length <= LIMITS.errorCode ? code : 'E_INTERNAL';
    this.trySend({ type: 'error', code: wireCode, message: truncateUtf8(message, LIMITS.errorMessage), fatal: true });
    this.close(closeCode, `${code}: ${message}`, dead);
  }

  /** Send `bye` and close with `closeCode`. */
  bye(reason: string, closeCode: number): void {
    if (this.phase === 'closed') return;
    this.trySend({ type: 'bye', reason });
    this.close(closeCode, reason, false);
  }

  /** Close the socket (reason cut to the 123 bytes a close frame allows). */
  close(closeCode: number, reason: string, dead: boolean): void {
    if (this.phase === 'closed') return;
    this.endReason ??= reason;
    this.endDead = dead;
    this.phase = 'closed';
    try {
      this.ws.close(closeCode, truncateUtf8(reason, 123));
    } catch {
      this.ws.terminate();
    }
  }

  /** Drop the socket without a close handshake. */
  terminate(): void {
    this.phase = 'closed';
    this.ws.terminate();
  }

  private trySend(msg: MessageInit): void {
    try {
      this.send(msg);
    } catch {
      // an unencodable message must not stop the close
    }
  }
}
