import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type Dataset, DptrainError, type EvalResult, fingerprintChunks } from '@dptrain/core';
import {
  type Message,
  ProtocolError,
  type RunEvent,
  type RunEventInit,
  WORKER_MESSAGE_TYPES,
  decode,
  encode,
  maxFrameBytes,
} from '@dptrain/protocol';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { writeFileAtomic } from './checkpoint-io.js';
import { Connection } from './connection.js';
import { EventLog } from './event-log.js';
import { httpHandler } from './http-api.js';
import { type MachineOutput, type Refusal, RoundMachine } from './machine.js';
import { type CoordinatorOptions, type ResolvedOptions, resolveOptions } from './options.js';
import type { TaskInit } from './round.js';

export { writeFileAtomic } from './checkpoint-io.js';
export type { CoordinatorOptions } from './options.js';

/**
 * WebSocket paths that reach the worker endpoint. An upgrade for another path is offered
 * to the handlers added with addUpgradeHandler (e.g. the dashboard's /events stream) in
 * order, and refused with 404 if none takes it.
 */
export const WORKER_PATHS: readonly string[] = ['/', '/worker'];

/** Takes an upgrade request (and its socket) and returns true, or returns false touching nothing. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** A plain HTTP request listener. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What done() resolves with. */
export interface RunSummary {
  runId: string;
  /** Updates applied. */
  steps: number;
  /** Full epochs completed. */
  epochs: number;
  /** Final evaluation on the test split (with confusion matrix). */
  test: EvalResult;
  /** Path of final.safetensors. */
  checkpointPath: string;
  /** Final parameters (a copy). */
  params: Float32Array;
  /** Wall time from the first task sent to the final checkpoint written, ms. */
  wallMs: number;
  /** Training samples per second over wallMs. */
  samplesPerSec: number;
}

/** Counters returned by Coordinator.stats(). */
export interface CoordinatorStats {
  step: number;
  epoch: number;
  staleDropped: number;
  duplicatesDropped: number;
  /** Frames refused, by error code (E_DECODE, E_FIELD, E_VERSION, E_TOO_LARGE, E_STATE, ...). */
  badFrames: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
  workers: Array<{ id: string; host: string; state: string; computeMs: number; bytesIn: number; bytesOut: number }>;
}

/** SHA-256 of a dataset as core's fingerprint() computes it, with node:crypto (much faster). */
export function fingerprintFast(ds: Dataset): string {
  const h = createHash('sha256');
  for (const c of fingerprintChunks(ds)) h.update(c);
  return h.digest('hex');
}

/**
 * The parameter server: a WebSocket endpoint (binary dptrain frames) for workers plus
 * plain HTTP on the same port (GET /api/run), around a RoundMachine that holds all
 * the training logic. Every inbound frame is decoded and validated before it can
 * touch state; a bad frame gets an `error` and a close with the protocol's close code,
 * is counted, and never stops the run.
 */
export class Coordinator {
  readonly runId: string;
  /** Fingerprint of the training data that workers must match. */
  readonly fingerprint: string;
  private readonly o: ResolvedOptions;
  private readonly machine: RoundMachine;
  private readonly events: EventLog;
  private readonly conns = new Map<string, Connection>();
  private readonly traffic = { bytesIn: 0, bytesOut: 0 };
  private readonly badFrames: Record<string, number> = {};
  private readonly maxPayload: number;
  private readonly donePromise: Promise<RunSummary>;
  private resolveDone!: (s: RunSummary) => void;
  private rejectDone!: (e: Error) => void;
  private settled = false;
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private nextId = 1;
  private paramsCache: { version: number; bytes: Uint8Array } | undefined;
  private startedAt = 0;
  private firstTaskAt: number | undefined;
  private finalizing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly upgradeHandlers: UpgradeHandler[] = [];
  private requestHandler: RequestHandler;

  constructor(opts: CoordinatorOptions) {
    this.o = resolveOptions(opts);
    this.runId = this.o.runId;
    this.fingerprint = fingerprintFast(this.o.data.train);
    this.events = new EventLog(100_000, (e) => this.o.log(`event listener failed: ${(e as Error)?.message ?? String(e)}`));
    this.machine = new RoundMachine({
      config: this.o.config,
      data: this.o.data,
      fingerprint: this.fingerprint,
      runId: this.runId,
      output: this.output(),
      minWorkers: this.o.minWorkers,
      initParams: this.o.initParams,
      deadAfterMs: 5 * this.o.heartbeatMs,
    });
    this.maxPayload = maxFrameBytes(this.machine.paramCount, 0);
    this.donePromise = new Promise<RunSummary>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.donePromise.catch(() => {}); // the caller of done() sees the rejection; nobody else must
    this.requestHandler = httpHandler({ '/api/run': () => this.runInfo() }, this.o.log);
  }

  /** Offer WebSocket upgrades for paths other than WORKER_PATHS to `h`; returns its remover. */
  addUpgradeHandler(h: UpgradeHandler): () => void {
    this.upgradeHandlers.push(h);
    return () => {
      const i = this.upgradeHandlers.indexOf(h);
      if (i >= 0) this.upgradeHandlers.splice(i, 1);
    };
  }

  /**
   * Replace the plain-HTTP listener (default: GET /api/run only, see runInfo()), e.g. by
   * the dashboard's handler; `undefined` restores the default.
   */
  setRequestHandler(h: RequestHandler | undefined): void {
    this.requestHandler = h ?? httpHandler({ '/api/run': () => this.runInfo() }, this.o.log);
  }

  /** The underlying HTTP server, once started (to attach more endpoints). */
  get httpServer(): Server | undefined {
    return this.http;
  }

  /** Listen; resolves with the bound port and the worker URL. */
  async start(): Promise<{ port: number; url: string }> {
    if (this.http) throw new DptrainError('E_STATE', 'Coordinator.start() was already called');
    if (this.closing) throw new DptrainError('E_STATE', 'Coordinator is closed');
    const http = createServer((req, res) => this.requestHandler(req, res));
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.maxPayload, perMessageDeflate: false });
    this.http = http;
    this.wss = wss;
    http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => this.connected(ws, req));
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.o.port, this.o.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    http.on('error', (e) => this.o.log(`http server error: ${e.message}`));
    const port = (http.address() as AddressInfo).port;
    const host = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.heartbeat(), this.o.heartbeatMs);
    this.o.log(`coordinator ${this.runId} listening on ws://${host}:${port}/ (${this.machine.paramCount} parameters, ${this.machine.totalSteps} steps)`);
    this.guard(() => this.machine.start());
    return { port, url: `ws://${host}:${port}/` };
  }

  /** Resolves at run end, after the final checkpoint is written; rejects on a fatal error or close() before the end. */
  done(): Promise<RunSummary> {
    return this.donePromise;
  }

  /** Close every socket and the server; idempotent. A run not yet finished makes done() reject. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Register an event listener; returns its remover. */
  onEvent(listener: (e: RunEvent) => void): () => void {
    return this.events.on(listener);
  }

  /** Every event so far (the oldest are dropped beyond 100 000). */
  get history(): readonly RunEvent[] {
    return this.events.history;
  }

  stats(): CoordinatorStats {
    const states = new Map(this.machine.workerInfos().map((w) => [w.workerId, w.state]));
    return {
      step: this.machine.step,
      epoch: this.machine.epochsDone,
      staleDropped: this.machine.staleDropped,
      duplicatesDropped: this.machine.duplicatesDropped,
      badFrames: { ...this.badFrames },
      bytesIn: this.traffic.bytesIn,
      bytesOut: this.traffic.bytesOut,
      workers: [...this.conns.values()]
        .filter((c) => states.has(c.id))
        .map((c) => ({ id: c.id, host: c.host, state: states.get(c.id)!, computeMs: this.machine.computeMsOf(c.id), bytesIn: c.bytesIn, bytesOut: c.bytesOut })),
    };
  }

  /** The JSON of GET /api/run. */
  runInfo(): Record<string, unknown> {
    const m = this.machine;
    return {
      runId: this.runId,
      state: m.state,
      step: m.step,
      totalSteps: m.totalSteps,
      epoch: m.epochsDone,
      config: m.config,
      model: m.config.model,
      paramCount: m.paramCount,
      workers: this.workerList(),
      metrics: { step: m.lastStep ?? null, eval: m.lastEval ? { loss: m.lastEval.loss, accuracy: m.lastEval.accuracy, samples: m.lastEval.samples } : null },
      counters: { staleDropped: m.staleDropped, duplicatesDropped: m.duplicatesDropped, invalidResults: m.invalidResults, badFrames: { ...this.badFrames } },
    };
  }

  // ---- transport ---------------------------------------------------------------------------

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const wss = this.wss;
    if (WORKER_PATHS.includes(path) && wss && !this.closing) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return;
    }
    if (!this.closing && this.upgradeHandlers.some((h) => h(req, socket, head))) return;
    const reply = this.closing ? '503 Service Unavailable' : '404 Not Found';
    socket.end(`HTTP/1.1 ${reply}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  private connected(ws: WebSocket, req: IncomingMessage): void {
    const c = new Connection(`w${this.nextId++}`, ws, this.traffic);
    c.host = req.socket.remoteAddress ?? '';
    this.conns.set(c.id, c);
    ws.on('message', (data: RawData, isBinary: boolean) => this.guard(() => this.onFrame(c, data, isBinary)));
    ws.on('error', (err: Error & { code?: string }) => {
      const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'E_TOO_LARGE' : 'E_DECODE';
      this.countBad(code);
      this.o.log(`worker ${c.id}: ${err.message}`);
      c.endReason ??= `${code}: ${err.message}`;
    });
    ws.on('close', (code: number) => this.guard(() => this.onClose(c, code)));
  }

  private onFrame(c: Connection, data: RawData, isBinary: boolean): void {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    c.received(bytes.byteLength);
    if (c.phase === 'closed') return;
    if (!isBinary) return this.refuseFrame(c, new ProtocolError('E_DECODE', 'text frames are not accepted: dptrain frames are binary'));
    let msg: Message;
    try {
      msg = decode(bytes, { paramCount: this.machine.paramCount, accept: WORKER_MESSAGE_TYPES });
    } catch (e) {
      return this.refuseFrame(c, e instanceof ProtocolError ? e : new ProtocolError('E_INTERNAL', String(e)));
    }
    if (c.phase !== 'hello') this.machine.touch(c.id, Date.now());
    this.dispatch(c, msg);
  }

  private dispatch(c: Connection, msg: Message): void {
    const now = Date.now();
    const wrongPhase = () => this.refuseFrame(c, new ProtocolError('E_STATE', `'${msg.type}' is not expected now (session is at '${c.phase}')`));
    switch (msg.type) {
      case 'hello': {
        if (c.phase !== 'hello') return wrongPhase();
        const r = this.machine.workerJoined(c.id, { workerName: msg.workerName, host: msg.host, pid: msg.pid, kernels: msg.kernels }, now);
        if ('refused' in r) return this.refuse(c, r.refused);
        c.name = msg.workerName;
        c.host = msg.host || c.host;
        c.phase = 'loading';
        c.send({ type: 'welcome', ...r.welcome });
        this.o.log(`worker ${c.id} (${c.name} on ${c.host}, pid ${msg.pid}) joined; loading ${this.o.config.data}`);
        return;
      }
      case 'ready': {
        if (c.phase !== 'loading') return wrongPhase();
        c.phase = 'ready';
        const refusal = this.machine.workerReady(c.id, msg.fingerprint, now);
        if (refusal) return this.refuse(c, refusal);
        this.o.log(`worker ${c.id} ready (data loaded in ${Math.round(msg.loadMs)} ms)`);
        return;
      }
      case 'result': {
        if (c.phase !== 'ready') return wrongPhase();
        const v = this.machine.resultReceived(c.id, msg, now);
        if (v.status === 'invalid') {
          this.countBad('E_FIELD');
          this.o.log(`worker ${c.id}: invalid result: ${v.reason}`);
          c.fail('E_FIELD', `invalid result: ${v.reason}`, 4000);
        }
        return;
      }
      case 'heartbeat':
        return;
      case 'error': {
        this.o.log(`worker ${c.id} reports ${msg.code}: ${msg.message}`);
        this.events.emit({ kind: 'error', code: msg.code, message: msg.message, workerId: c.id });
        if (msg.fatal) c.close(1000, `worker error ${msg.code}`, false);
        return;
      }
      case 'bye':
        c.endReason = `bye: ${msg.reason}`;
        c.close(1000, 'bye', false);
        return;
      default:
        return wrongPhase();
    }
  }

  private onClose(c: Connection, code: number): void {
    const known = this.machine.workerInfos().some((w) => w.workerId === c.id);
    const reason = c.endReason ?? `connection closed (code ${code})`;
    const dead = c.endReason === undefined ? true : c.endDead;
    c.phase = 'closed';
    if (!known || this.settled) return;
    this.o.log(`worker ${c.id} ${dead ? 'lost' : 'left'}: ${reason}`);
    this.machine.workerLeft(c.id, reason, dead);
  }

  private refuseFrame(c: Connection, err: ProtocolError): void {
    this.countBad(err.code);
    this.o.log(`worker ${c.id}: bad frame (${err.code}): ${err.message}`);
    c.fail(err.code, err.message, err.closeCode);
  }

  private refuse(c: Connection, r: Refusal): void {
    this.o.log(`worker ${c.id} refused (${r.code}): ${r.message}`);
    c.fail(r.code, r.message, r.closeCode);
  }

  private countBad(code: string): void {
    this.badFrames[code] = (this.badFrames[code] ?? 0) + 1;
  }

  private heartbeat(): void {
    const now = Date.now();
    const helloLimit = 5 * this.o.heartbeatMs;
    this.guard(() => {
      const beat = encode({ type: 'heartbeat', t: now, step: this.machine.step });
      for (const c of this.conns.values()) {
        if (c.phase === 'loading' || c.phase === 'ready') c.sendBytes(beat);
        else if (c.phase === 'hello' && now - c.openedAt > helloLimit) {
          this.countBad('E_TIMEOUT');
          c.fail('E_TIMEOUT', `no hello within ${helloLimit} ms of connecting`, 4000);
        }
      }
      this.machine.tick(now);
    });
  }

  /** Run a machine input; an exception there is a bug: fail the run instead of crashing the process. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.o.log(`internal error: ${err.stack ?? err.message}`);
      this.machine.abort(err);
    }
  }

  private workerList() {
    return this.machine.workerInfos().map((w) => {
      const c = this.conns.get(w.workerId);
      return { ...w, bytesIn: c?.bytesIn ?? 0, bytesOut: c?.bytesOut ?? 0 };
    });
  }

  // ---- machine outputs ---------------------------------------------------------------------

  private output(): MachineOutput {
    return {
      sendParams: (ids, version, params) => {
        if (this.paramsCache?.version !== version) this.paramsCache = { version, bytes: encode({ type: 'params', version, data: params }) };
        for (const id of ids) this.conns.get(id)?.sendBytes(this.paramsCache.bytes);
      },
      sendTask: (id: string, task: TaskInit) => {
        this.firstTaskAt ??= performance.now();
        this.conns.get(id)?.send({ type: 'task', ...task });
      },
      closeWorker: (id, why) => {
        const c = this.conns.get(id);
        if (!c) return;
        c.endReason = why.message;
        c.fail(why.code, why.message, why.closeCode, true);
      },
      event: (e: RunEventInit) => {
        if (e.kind === 'workers') e = { ...e, list: this.workerList() };
        this.events.emit(e);
      },
      log: (line) => this.o.log(line),
      runFinished: () => {
        this.finalizing = this.finalize().catch((err) => this.failRun(err instanceof Error ? err : new Error(String(err))));
      },
      runFailed: (err) => this.failRun(err),
    };
  }

  /** Write the final checkpoint, say bye to every worker (close 4004), resolve done(). */
  private async finalize(): Promise<void> {
    const m = this.machine;
    const bytes = m.checkpointBytes();
    const params = Float32Array.from(m.params);
    await mkdir(this.o.checkpointDir, { recursive: true });
    const path = join(this.o.checkpointDir, 'final.safetensors');
    await writeFileAtomic(path, bytes);
    const test = m.finalEval!;
    this.events.emit({ kind: 'checkpoint', step: m.step, path, bytes: bytes.length });
    const fin = (x: number) => (Number.isFinite(x) ? x : undefined);
    this.events.emit({ kind: 'run_finished', step: m.step, checkpoint: path, testLoss: fin(test.loss), testAccuracy: fin(test.accuracy) });
    this.o.log(`run finished after ${m.step} steps: test loss ${test.loss.toFixed(4)}, accuracy ${(100 * test.accuracy).toFixed(2)}%; checkpoint ${path}`);
    this.settled = true;
    for (const c of this.conns.values()) c.bye('run finished', 4004);
    const wallMs = performance.now() - (this.firstTaskAt ?? this.startedAt);
    this.resolveDone({
      runId: this.runId,
      steps: m.step,
      epochs: m.epochsDone,
      test,
      checkpointPath: path,
      params,
      wallMs,
      samplesPerSec: wallMs > 0 ? (m.samplesDone * 1000) / wallMs : 0,
    });
  }

  private failRun(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.o.log(`run failed: ${err.message}`);
    const code = err instanceof DptrainError ? err.code : 'E_INTERNAL';
    for (const c of this.conns.values()) c.fail(code, `run failed: ${err.message}`, 1011);
    this.rejectDone(err);
  }

  /** Wait (at most `ms`) for the close handshakes in flight, so bye and close frames reach the workers. */
  private async drain(wss: WebSocketServer, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  private async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.finalizing) await this.finalizing;
    if (!this.settled) {
      this.machine.abort(new DptrainError('E_CLOSED', `coordinator closed at step ${this.machine.step} of ${this.machine.totalSteps}, before the run finished`));
    }
    for (const c of this.conns.values()) c.bye('shutdown', 1001);
    const wss = this.wss;
    const http = this.http;
    if (wss) {
      await this.drain(wss, 1000);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  }
}
