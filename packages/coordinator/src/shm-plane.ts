import { ProtocolError, type ResultMessage, type ResultRefMessage, type ShmOffer } from '@dptrain/protocol';
import type { Connection } from './connection.js';
import { ShmHost } from './shm-host.js';

/** Settings of the coordinator's shared-memory data plane. */
export interface ShmPlaneOptions {
  /** Offer it at all (CoordinatorOptions.sharedMemory). */
  enabled: boolean;
  /** Memory-backed directory for the slot files. */
  dir: string;
  paramCount: number;
  log: (line: string) => void;
}

/**
 * The coordinator's side of the shared-memory data plane, per connection: the offer in the
 * welcome, the answer in ready, params as params_ref, result_ref gradients read back
 * (PROTOCOL.md §3.10). The files live in a ShmHost created at the first offer; if it cannot
 * be created, or a params write fails, shared memory is given up for the run and the
 * socket carries everything. The transport's protocol decisions (refusing frames, closing
 * connections) stay with the server.
 */
export class ShmPlane {
  /** Created at the first offer; null once shared memory is given up for the run. */
  private host: ShmHost | null | undefined;
  /** A params write failed: params go as frames from now on (result_refs are still read). */
  private paramsFailed = false;

  constructor(private readonly o: ShmPlaneOptions) {
    if (!o.enabled) this.host = null;
  }

  /** The offer for a worker on this host (its result file is created now), or undefined: the socket alone. */
  offer(c: Connection): ShmOffer | undefined {
    if (!c.loopback || this.host === null) return undefined;
    if (this.host === undefined) {
      const host = ShmHost.create(this.o.dir, this.o.paramCount);
      if (host instanceof Error) {
        this.o.log(`shared memory unavailable (${host.message}); local workers use the socket`);
        this.host = null;
        return undefined;
      }
      this.host = host;
      this.o.log(`shared-memory data plane for local workers in ${host.dir}`);
    }
    try {
      this.host.addWorker(c.id);
    } catch (e) {
      this.o.log(`worker ${c.id}: no shared memory (${(e as Error).message}); it uses the socket`);
      return undefined;
    }
    c.shmOffered = true;
    return this.host.offer;
  }

  /** The worker's ready: it uses shared memory if it took an offer still open, else its file is deleted. */
  ready(c: Connection, took: boolean): void {
    if (took && c.shmOffered && this.host?.hasWorker(c.id)) c.shm = true;
    else if (c.shmOffered) this.drop(c);
  }

  /** Stop using shared memory with `c` (it declined, failed, or its session ended): delete its result file. */
  drop(c: Connection): void {
    c.shm = false;
    c.shmOffered = false;
    this.host?.removeWorker(c.id);
  }

  /**
   * Give `c` the params of `version` through shared memory (the version is written to the
   * params file once). The reference goes with the worker's next task of that version
   * (takeRef), or as a params_ref message at the end of this tick if no task takes it.
   * False if `c` does not use shared memory or a params write has failed: the caller sends
   * a params frame. After a failed write every worker gets params frames from then on;
   * results written through shared memory are still read.
   */
  sendParams(c: Connection, version: number, params: Float32Array): boolean {
    const host = this.host;
    if (!c.shm || !host || this.paramsFailed) return false;
    let ref: { slot: number; seq: number };
    try {
      ref = host.writeParams(version, params);
    } catch (e) {
      this.o.log(`writing params to shared memory failed (${(e as Error).message}); every worker gets params through the socket from now on`);
      this.paramsFailed = true;
      return false;
    }
    this.flush(c);
    c.pendingParamsRef = { version, ...ref };
    queueMicrotask(() => this.flush(c));
    c.shmSent(params.byteLength);
    return true;
  }

  /** The params reference waiting for `c`'s task of `version`, taken (undefined: none; one for another version is sent first). */
  takeRef(c: Connection, version: number): { slot: number; seq: number } | undefined {
    const p = c.pendingParamsRef;
    if (!p) return undefined;
    if (p.version !== version) {
      this.flush(c);
      return undefined;
    }
    c.pendingParamsRef = undefined;
    return { slot: p.slot, seq: p.seq };
  }

  /** Send a params reference no task took as a params_ref message. */
  flush(c: Connection): void {
    const p = c.pendingParamsRef;
    if (!p) return;
    c.pendingParamsRef = undefined;
    c.send({ type: 'params_ref', version: p.version, slot: p.slot, seq: p.seq });
  }

  /**
   * The result a result_ref names, its gradient read from the worker's result file into
   * `grad` (paramCount floats: the coordinator reads it straight into a reduction buffer),
   * or the E_SHM error when the slot does not hold that write (rewritten, never written, a
   * failed read).
   */
  readResult(c: Connection, ref: ResultRefMessage, grad: Float32Array): ResultMessage | ProtocolError {
    const host = this.host;
    if (!host || !c.shm) return new ProtocolError('E_SHM', `worker ${c.id} does not use shared memory`);
    try {
      host.readResult(c.id, ref.slot, ref.seq, ref.step, grad);
    } catch (e) {
      return e instanceof ProtocolError ? e : new ProtocolError('E_SHM', `reading the result file failed: ${(e as Error)?.message ?? String(e)}`);
    }
    c.shmReceived(grad.byteLength);
    const { slot: _slot, seq: _seq, type: _type, ...fields } = ref;
    return { ...fields, type: 'result', grad };
  }

  /** Delete every file and the directory. */
  close(): void {
    this.host?.close();
    this.host = null;
  }
}
