import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { DptrainError } from '@dptrain/core';
import { CLOSE_CODES, type ErrorMessage, type Message, ProtocolError, type ResultMessage, type ResultRefMessage, type RunEvent, type RunEventInit, encode, maxFrameBytes } from '@dptrain/protocol';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { CheckpointStore, loadResumeCheckpoint } from './checkpoint-store.js';
import { Connection } from './connection.js';
import { type CheckpointInfo, type CoordinatorStats, type RequestHandler, type RunSummary, type UpgradeHandler, WORKER_PATHS, fingerprintFast } from './coordinator-api.js';
import { EventLog } from './event-log.js';
import { httpHandler } from './http-api.js';
import { checkToken, requestUrl, tokensEqual } from './http/auth.js';
import { mountObserver, type ObservableCoordinator } from './http/mount.js';
import { decodeWorkerFrame } from './intake.js';
import { type MachineOutput, type Refusal, RoundMachine } from './machine/machine.js';
import { type CoordinatorOptions, type ResolvedOptions, checkExposure, isLoopback, resolveOptions } from './options.js';
import { type FrameSender, ParamsBroadcast } from './params-broadcast.js';
import type { ResumeState } from './resume.js';
import type { TaskInit } from './round.js';
import { ShmPlane } from './shm-plane.js';

export { writeFileAtomic } from './checkpoint-io.js';
export type { CoordinatorOptions } from './options.js';

/** Gone connections remembered for stats() (their byte counts). */
const KEEP_GONE = 64;

/**
 * The parameter server: a WebSocket endpoint (binary dptrain frames) for workers plus
 * HTTP on the same port (the dashboard, /api/run, /metrics, /events), around a
 * RoundMachine that holds all the training logic. Every inbound frame is decoded and
 * validated before it can touch state; a bad frame gets an `error` and a close with the
 * protocol's close code, is counted, and never stops the run. Resume checkpoints are
 * written every N steps / T seconds and on request; a run can continue from one.
 */
export class Coordinator {
  readonly runId: string;
  /** Fingerprint of the training data that workers must match. */
  readonly fingerprint: string;
  /** The checkpoint this run resumed from, if any. */
  readonly resumedFrom: { file: string; step: number } | undefined;
  private readonly o: ResolvedOptions;
  private readonly machine: RoundMachine;
  private readonly events: EventLog;
  private readonly store: CheckpointStore;
  private readonly conns = new Map<string, Connection>();
  private readonly gone = new Map<string, Connection>();
  private readonly traffic = { bytesIn: 0, bytesOut: 0, shmBytesIn: 0, shmBytesOut: 0 };
  /** The shared-memory data plane for workers on this host. */
  private readonly shm: ShmPlane;
  private readonly payloads = { paramsOut: 0, resultsIn: 0 };
  private readonly badFrames: Record<string, number> = {};
  private readonly frames = { ok: 0, ignored: 0 };
  /** Frames received on connections no longer in conns/gone. */
  private framesOfForgotten = 0;
  private readonly maxPayload: number;
  private readonly donePromise: Promise<RunSummary>;
  private resolveDone!: (s: RunSummary) => void;
  private rejectDone!: (e: Error) => void;
  private settled = false;
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Fires at the earliest step deadline (see armDeadline), independently of the heartbeat. */
  private deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  /** performance.now() at which deadlineTimer fires. */
  private deadlineAt = Infinity;
  private nextId = 1;
  /** The encoded params frames, reused from version to version (created at the first broadcast). */
  private paramsOut: ParamsBroadcast | undefined;
  private startedAt = 0;
  private firstTaskAt: number | undefined;
  private lastCheckpoint = { step: -1, at: 0 };
  private checkpointsWritten = 0;
  private finalizing: Promise<void> | undefined;
  private failing: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private observer: { unmount(): void } | undefined;
  private readonly upgradeHandlers: UpgradeHandler[] = [];
  private requestHandler: RequestHandler;

  constructor(opts: CoordinatorOptions) {
    this.o = resolveOptions(opts);
    this.runId = this.o.runId;
    this.fingerprint = fingerprintFast(this.o.data.train);
    this.events = new EventLog(100_000, (e) => this.o.log(`event listener failed: ${(e as Error)?.message ?? String(e)}`));
    let resume: ResumeState | undefined;
    if (this.o.resumeFrom !== undefined) {
      const { state, file } = loadResumeCheckpoint(this.o.resumeFrom, this.o.config, this.o.data.train.n, this.o.log);
      resume = state;
      this.resumedFrom = { file, step: state.step };
      this.lastCheckpoint.step = state.step;
    }
    this.machine = new RoundMachine({
      config: this.o.config,
      data: this.o.data,
      fingerprint: this.fingerprint,
      runId: this.runId,
      output: this.output(),
      minWorkers: this.o.minWorkers,
      initParams: this.o.initParams,
      deadAfterMs: 5 * this.o.heartbeatMs,
      nonFinitePolicy: this.o.nonFinitePolicy,
      maxRetries: this.o.maxRetries,
      stepTimeoutMs: this.o.stepTimeoutMs,
      resume,
      balance: this.o.balance,
      periodicEvaluation: this.o.periodicEvaluation,
    });
    this.store = new CheckpointStore(this.o.checkpointDir);
    this.maxPayload = maxFrameBytes(this.machine.paramCount, 0);
    this.shm = new ShmPlane({ enabled: this.o.sharedMemory, dir: this.o.shmDir, paramCount: this.machine.paramCount, log: this.o.log });
    this.donePromise = new Promise<RunSummary>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.donePromise.catch(() => {}); // the caller of done() sees the rejection; nobody else must
    this.requestHandler = this.defaultHandler();
    if (this.o.observer) this.observer = mountObserver(this, { token: this.o.token, staticDir: this.o.dashboardDir });
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
   * Replace the plain-HTTP listener (by default the dashboard's, see the `observer` option;
   * without it GET /api/run only); `undefined` restores GET /api/run only. With a token,
   * requests without it are refused (401) before they reach the listener.
   */
  setRequestHandler(h: RequestHandler | undefined): void {
    this.requestHandler = h ?? this.defaultHandler();
  }

  /** The underlying HTTP(S) server, once started (to attach more endpoints). */
  get httpServer(): Server | undefined {
    return this.http;
  }

  /**
   * Listen; resolves with the bound port and the worker URL (wss:// with `tls`). Throws a
   * ConfigError for a non-loopback host without a token (unless allowInsecure).
   */
  async start(): Promise<{ port: number; url: string }> {
    if (this.http) throw new DptrainError('E_STATE', 'Coordinator.start() was already called');
    if (this.closing || this.stopping) throw new DptrainError('E_STATE', 'Coordinator is closed');
    checkExposure(this.o);
    const listener = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res);
    const http: Server = this.o.tls ? createHttpsServer({ cert: this.o.tls.cert, key: this.o.tls.key }, listener) : createServer(listener);
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
    if (this.o.tls) http.on('tlsClientError', (e: Error) => this.o.log(`tls: ${e.message}`));
    const port = (http.address() as AddressInfo).port;
    const host = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    const url = `${this.o.tls ? 'wss' : 'ws'}://${host}:${port}/`;
    this.startedAt = performance.now();
    this.lastCheckpoint.at = this.startedAt;
    this.timer = setInterval(() => this.heartbeat(), this.o.heartbeatMs);
    const m = this.machine;
    this.o.log(`coordinator ${this.runId} listening on ${url} (${m.paramCount} parameters, ${m.totalSteps} steps${this.o.token ? ', token required' : ''})`);
    if (this.resumedFrom) this.o.log(`resuming from ${this.resumedFrom.file} at step ${this.resumedFrom.step}`);
    this.guard(() => this.machine.start());
    return { port, url };
  }

  /**
   * Resolves at run end, after the final checkpoint is written. Rejects on a fatal error
   * (E_NONFINITE / E_WORKER under nonFinitePolicy 'stop', after a checkpoint of the last
   * good state), on stop() (E_STOPPED) and on close() before the end (E_CLOSED).
   */
  done(): Promise<RunSummary> {
    return this.donePromise;
  }

  /**
   * Write a resume checkpoint of the last completed step now (latest.safetensors; the old
   * one becomes previous.safetensors) and emit a `checkpoint` event.
   */
  checkpointNow(): Promise<CheckpointInfo> {
    const step = this.machine.step;
    const bytes = this.machine.checkpointBytes();
    this.lastCheckpoint = { step, at: performance.now() };
    return this.store.saveLatest(bytes).then((path) => {
      this.checkpointsWritten++;
      this.events.emit({ kind: 'checkpoint', step, path, bytes: bytes.length });
      this.o.log(`checkpoint of step ${step} written to ${path} (${bytes.length} bytes)`);
      return { step, path, bytes: bytes.length };
    });
  }

  /**
   * Stop gracefully: abandon the step in progress (nothing of it is applied), write a
   * resume checkpoint, say bye ("coordinator stopping") to every worker, close with 1001
   * and shut down; done() rejects with E_STOPPED naming the checkpoint. After the run has
   * finished this is close(). Idempotent.
   */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.stopNow(reason);
    return this.stopping;
  }

  /** Close every socket and the server; idempotent. A run not yet finished makes done() reject (no checkpoint is written). */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Register an event listener; returns its remover. */
  onEvent(listener: (e: RunEvent) => void): () => void {
    return this.events.on(listener);
  }

  /**
   * The events so far, in seq order: the oldest are dropped beyond 100 000, and of the
   * per-step `workers` snapshots only the latest 64 to 128 are kept (see EventLog).
   */
  get history(): readonly RunEvent[] {
    return this.events.history;
  }

  stats(): CoordinatorStats {
    const m = this.machine;
    const states = new Map(m.workerInfos().map((w) => [w.workerId, w.state]));
    return {
      step: m.step,
      epoch: m.epochsDone,
      ...this.counters(),
      framesIn: [...this.conns.values(), ...this.gone.values()].reduce((a, c) => a + c.framesIn, 0) + this.framesOfForgotten,
      framesOk: this.frames.ok,
      framesIgnored: this.frames.ignored,
      checkpoints: this.checkpointsWritten,
      bytesIn: this.traffic.bytesIn,
      bytesOut: this.traffic.bytesOut,
      shmBytesIn: this.traffic.shmBytesIn,
      shmBytesOut: this.traffic.shmBytesOut,
      payloads: { ...this.payloads },
      reductionBuffers: this.machine.buffersAllocated,
      workers: [...this.conns.values(), ...this.gone.values()]
        .filter((c) => states.has(c.id))
        .map((c) => ({
          id: c.id,
          host: c.host,
          state: states.get(c.id)!,
          computeMs: m.computeMsOf(c.id),
          bytesIn: c.bytesIn,
          bytesOut: c.bytesOut,
          shmBytesIn: c.shmBytesIn,
          shmBytesOut: c.shmBytesOut,
          shm: c.shm,
        })),
    };
  }

  /** What was dropped, refused or redone so far. */
  private counters() {
    const m = this.machine;
    return {
      staleDropped: m.staleDropped,
      duplicatesDropped: m.duplicatesDropped,
      invalidResults: m.invalidResults,
      badResults: m.badResults,
      reexecuted: m.reexecuted,
      badFrames: { ...this.badFrames },
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
      resumedFrom: this.resumedFrom ?? null,
      workers: this.workerList(),
      metrics: { step: m.lastStep ?? null, eval: m.lastEval ? { loss: m.lastEval.loss, accuracy: m.lastEval.accuracy, samples: m.lastEval.samples } : null },
      counters: this.counters(),
    };
  }

  // ---- transport ---------------------------------------------------------------------------

  private defaultHandler(): RequestHandler {
    return httpHandler({ '/api/run': () => this.runInfo() }, this.o.log);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.o.token !== undefined && !checkToken(req, requestUrl(req), this.o.token).ok) {
      const body = 'unauthorized: pass the run token as "Authorization: Bearer TOKEN" or "?token=TOKEN"\n';
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="dptrain"', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    this.requestHandler(req, res);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const wss = this.wss;
    const reply = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => {});
    if (this.closing || this.stopping) return reply('503 Service Unavailable');
    if (WORKER_PATHS.includes(path) && wss) {
      if (this.conns.size >= this.o.maxConnections) {
        this.countBad('E_CONNECTIONS');
        this.o.log(`refused a connection from ${req.socket.remoteAddress}: ${this.conns.size} open, maxConnections ${this.o.maxConnections}`);
        return reply('503 Service Unavailable');
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return;
    }
    if (this.o.token !== undefined && !checkToken(req, requestUrl(req), this.o.token).ok) return reply('401 Unauthorized');
    if (this.upgradeHandlers.some((h) => h(req, socket, head))) return;
    reply('404 Not Found');
  }

  private connected(ws: WebSocket, req: IncomingMessage): void {
    const c = new Connection(`w${this.nextId++}`, ws, this.traffic);
    c.host = req.socket.remoteAddress ?? '';
    c.loopback = isLoopback(c.host);
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
    if (c.phase === 'closed') {
      this.frames.ignored++;
      return;
    }
    if (c.overRate(Date.now(), this.o.maxFramesPerSec)) {
      this.countBad('E_RATE');
      this.o.log(`worker ${c.id}: more than ${this.o.maxFramesPerSec} frames per second; closing`);
      return c.fail('E_RATE', `more than ${this.o.maxFramesPerSec} frames per second`, 1008);
    }
    if (!isBinary) return this.refuseFrame(c, new ProtocolError('E_DECODE', 'text frames are not accepted: dptrain frames are binary'));
    const got = decodeWorkerFrame(bytes, this.machine.paramCount, this.maxPayload);
    if (!got.ok) return this.refuseFrame(c, got.error);
    if ('nonFinite' in got) {
      if (c.phase !== 'ready') return this.refuseFrame(c, got.nonFinite);
      this.o.log(`worker ${c.id}: ${got.nonFinite.message} (step ${got.msg.step}, node (${got.msg.nodeLo}, ${got.msg.nodeSize}))`);
    }
    if (c.phase !== 'hello') this.machine.touch(c.id, Date.now());
    if (this.dispatch(c, got.msg)) this.frames.ok++;
  }

  /** Handle a decoded message; false if it was refused (counted as a bad frame). */
  private dispatch(c: Connection, msg: Message): boolean {
    const now = Date.now();
    const wrongPhase = () => {
      this.refuseFrame(c, new ProtocolError('E_STATE', `'${msg.type}' is not expected now (session is at '${c.phase}')`));
      return false;
    };
    switch (msg.type) {
      case 'hello': {
        if (c.phase !== 'hello') return wrongPhase();
        const token = this.o.token;
        if (token !== undefined && (msg.token === undefined || !tokensEqual(msg.token, token))) {
          this.countBad('E_AUTH');
          const why = msg.token === undefined ? 'this coordinator requires a token and the hello carried none' : 'wrong token';
          this.refuse(c, { code: 'E_AUTH', message: `authentication failed: ${why}; pass the run's token (--token or DPTRAIN_TOKEN)`, closeCode: 4003 });
          return false;
        }
        const r = this.machine.workerJoined(c.id, { workerName: msg.workerName, host: msg.host, pid: msg.pid, kernels: msg.kernels }, now);
        if ('refused' in r) {
          this.refuse(c, r.refused);
          return true;
        }
        c.name = msg.workerName;
        c.host = msg.host || c.host;
        c.phase = 'loading';
        const shm = this.shm.offer(c);
        c.send({ type: 'welcome', ...r.welcome, ...(shm ? { shm } : {}) });
        this.o.log(`worker ${c.id} (${c.name} on ${c.host}, pid ${msg.pid}) joined; loading ${this.o.config.data}`);
        return true;
      }
      case 'ready': {
        if (c.phase !== 'loading') return wrongPhase();
        c.phase = 'ready';
        this.shm.ready(c, msg.shm === true);
        const refusal = this.machine.workerReady(c.id, msg.fingerprint, now);
        if (refusal) {
          this.refuse(c, refusal);
          return true;
        }
        this.o.log(`worker ${c.id} ready (data loaded in ${Math.round(msg.loadMs)} ms)`);
        return true;
      }
      case 'result':
        if (c.phase !== 'ready') return wrongPhase();
        this.onResult(c, msg);
        return true;
      case 'result_ref':
        if (c.phase !== 'ready') return wrongPhase();
        if (!c.shm) {
          this.refuseFrame(c, new ProtocolError('E_STATE', 'result_ref from a worker that did not take the shared-memory offer'));
          return false;
        }
        return this.onResultRef(c, msg);
      case 'heartbeat':
        if (c.phase === 'hello') return wrongPhase();
        return true;
      case 'error': {
        if (c.phase === 'hello') return wrongPhase();
        this.o.log(`worker ${c.id} reports ${msg.code}${msg.fatal ? ' (fatal)' : ''}: ${msg.message}`);
        if (msg.code === 'E_SHM') this.onShmError(c, msg, now);
        else if (c.phase === 'ready') this.machine.workerError(c.id, msg.code, msg.message);
        else this.events.emit({ kind: 'error', code: msg.code, message: msg.message, workerId: c.id });
        if (msg.fatal) this.leave(c, `error ${msg.code}: ${msg.message}`);
        return true;
      }
      case 'bye':
        this.leave(c, `bye: ${msg.reason}`);
        return true;
      default:
        return wrongPhase();
    }
  }

  /**
   * A result for the round. From a frame, the gradient is a view into the frame ws handed
   * over; decode left its NaN/±Infinity scan to the round (receiverScansResults), which
   * copies it into a reduction buffer in kernel memory and scans it there before summing.
   * `owned` (a result_ref read from shared memory): msg.grad is already a buffer from
   * machine.takeResultBuffer(), used in place and given back unless the result is accepted.
   */
  private onResult(c: Connection, msg: ResultMessage, owned = false): void {
    this.payloads.resultsIn++;
    const v = this.machine.resultReceived(c.id, msg, Date.now(), { checked: false, owned });
    if (owned && v.status !== 'accepted') this.machine.giveResultBuffer(msg.grad);
    if (v.status === 'invalid') this.o.log(`worker ${c.id}: bad result: ${v.reason}`);
  }

  /**
   * A result whose gradient is in the worker's result file: read it (checking the slot's
   * seqlock) and handle it as a result. A slot that does not hold the write the message names
   * (rewritten, never written, a failed read) closes the connection with E_SHM (4006): the
   * worker's nodes move on as for a lost worker, and it rejoins.
   */
  private onResultRef(c: Connection, ref: ResultRefMessage): boolean {
    if (ref.seq > c.resultsRead) c.resultsRead = ref.seq;
    // a result the round would drop (old step, a node already in, not this worker's) is
    // dropped without reading its slot, exactly as a frame would be
    if (!this.machine.wantsResult(c.id, ref.step, ref.nodeLo, ref.nodeSize)) {
      const { slot: _slot, seq: _seq, type: _type, ...fields } = ref;
      this.onResult(c, { ...fields, type: 'result', grad: new Float32Array(0) });
      return true;
    }
    // read straight into a reduction buffer: no copy between the file and the tree
    const buf = this.machine.takeResultBuffer();
    const got = this.shm.readResult(c, ref, buf);
    if (got instanceof ProtocolError) {
      this.machine.giveResultBuffer(buf);
      this.closeForShm(c, got.message);
      return false;
    }
    this.onResult(c, got, true);
    return true;
  }

  /**
   * A worker's E_SHM report: the transport's failure, not a bad result. A fatal one comes
   * with the worker's close (4006): its nodes move on as for a lost worker and it rejoins.
   * A non-fatal one says it skipped a task whose params slot was rewritten before it read
   * it, which means that step is over; should it not be (a slot damaged by something
   * else), the worker is closed (4006) so that its nodes move on now.
   */
  private onShmError(c: Connection, msg: ErrorMessage, now: number): void {
    if (msg.fatal) return this.shm.drop(c);
    if (msg.step !== undefined && msg.step === this.machine.step && this.isMember(c.id)) {
      return this.closeForShm(c, `step ${msg.step} is still in progress but its params could not be read: ${msg.message}`);
    }
    this.machine.workerCaughtUp(c.id, now);
  }

  /** Close `c` for a shared-memory failure (E_SHM, 4006): its nodes move on, it rejoins. */
  private closeForShm(c: Connection, message: string): void {
    this.countBad('E_SHM');
    this.o.log(`worker ${c.id}: ${message}; closing, it rejoins`);
    this.shm.drop(c);
    c.endReason = `E_SHM: ${message}`;
    c.fail('E_SHM', message, CLOSE_CODES.SHM_FAILED, true);
  }

  /** The worker ends its session (bye or a fatal error): close, and move its nodes on at once. */
  private leave(c: Connection, reason: string): void {
    c.endReason = reason;
    c.close(1000, reason, false);
    if (this.isMember(c.id) && !this.settled) {
      this.o.log(`worker ${c.id} left: ${reason}`);
      this.machine.workerLeft(c.id, reason);
    }
  }

  private isMember(id: string): boolean {
    return this.machine.workerInfos().some((w) => w.workerId === id);
  }

  private onClose(c: Connection, code: number): void {
    const reason = c.endReason ?? `connection closed (code ${code})`;
    const dead = c.endReason === undefined ? true : c.endDead;
    c.phase = 'closed';
    this.conns.delete(c.id);
    if (c.shmOffered) this.shm.drop(c);
    if (this.isMember(c.id)) {
      this.gone.set(c.id, c);
      for (const [id, old] of this.gone) {
        if (this.gone.size <= KEEP_GONE) break;
        this.framesOfForgotten += old.framesIn;
        this.gone.delete(id);
      }
    } else this.framesOfForgotten += c.framesIn;
    if (this.settled || !this.isMember(c.id)) return;
    const before = this.machine.workerInfos().find((w) => w.workerId === c.id)?.state;
    if (before === 'left' || before === 'dead') return;
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

  /**
   * Run a machine input; an exception there is a bug: fail the run instead of crashing the
   * process. Every input may start a step or hand out nodes: the deadline timer follows.
   */
  private guard(fn: () => void): void {
    try {
      fn();
      this.armDeadline();
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.o.log(`internal error: ${err.stack ?? err.message}`);
      this.machine.abort(err);
    }
  }

  /**
   * Keep a timer armed for the machine's earliest step deadline, so a deadline shorter than
   * the heartbeat interval is enforced on time (the heartbeat tick checks it too). A timer
   * already due earlier is kept: firing with nothing due just re-arms.
   */
  private armDeadline(): void {
    if (this.settled || this.closing || !this.timer) return this.clearDeadline();
    const ms = this.machine.msToDeadline();
    if (ms === undefined) return;
    const at = performance.now() + ms;
    if (this.deadlineTimer !== undefined && this.deadlineAt <= at + 1) return;
    this.clearDeadline();
    this.deadlineAt = at;
    // +1 ms: the deadline is passed only once more than its ms have elapsed
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.deadlineAt = Infinity;
      this.guard(() => this.machine.checkDeadlines());
    }, Math.ceil(ms) + 1);
    this.deadlineTimer.unref();
  }

  private clearDeadline(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlineAt = Infinity;
  }

  private workerList() {
    return this.machine.workerInfos().map((w) => {
      const c = this.conns.get(w.workerId) ?? this.gone.get(w.workerId);
      // bytes exchanged with the worker by either path: frames on the socket, payloads in shared memory
      return { ...w, bytesIn: (c?.bytesIn ?? 0) + (c?.shmBytesIn ?? 0), bytesOut: (c?.bytesOut ?? 0) + (c?.shmBytesOut ?? 0), transport: c?.shm ? ('shm' as const) : ('socket' as const) };
    });
  }

  // ---- machine outputs ---------------------------------------------------------------------

  private output(): MachineOutput {
    return {
      sendParams: (ids, version, params) => {
        const senders: FrameSender[] = [];
        for (const id of ids) {
          const c = this.conns.get(id);
          if (!c) continue;
          this.payloads.paramsOut++;
          if (this.shm.sendParams(c, version, params)) continue;
          senders.push((bytes, done) => c.sendBytes(bytes, done));
        }
        if (senders.length === 0) return;
        this.paramsOut ??= new ParamsBroadcast(params.length);
        this.paramsOut.send(version, params, senders);
      },
      sendTask: (id: string, task: TaskInit) => {
        this.firstTaskAt ??= performance.now();
        const c = this.conns.get(id);
        if (!c) return;
        // params just given through shared memory travel with the task: one message, one wake-up
        const paramsRef = this.shm.takeRef(c, task.version);
        c.send({ type: 'task', ...task, ...(paramsRef ? { paramsRef } : {}), ...(c.shm ? { resultsRead: c.resultsRead } : {}) });
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
      stepDone: (step) => this.periodicCheckpoint(step),
      runFinished: () => {
        this.finalizing = this.finalize().catch((err) => this.failRun(err instanceof Error ? err : new Error(String(err))));
      },
      runFailed: (err) => this.failRun(err),
    };
  }

  /** After a step: a resume checkpoint every checkpointEvery steps / checkpointEverySec seconds (not at the last step: final.safetensors follows). */
  private periodicCheckpoint(step: number): void {
    if (step >= this.machine.totalSteps || step === this.lastCheckpoint.step) return;
    const byStep = this.o.checkpointEvery > 0 && step % this.o.checkpointEvery === 0;
    const bySec = this.o.checkpointEverySec > 0 && performance.now() - this.lastCheckpoint.at >= this.o.checkpointEverySec * 1000;
    if (!byStep && !bySec) return;
    this.checkpointNow().catch((e: Error) => {
      this.o.log(`checkpoint of step ${step} failed: ${e.message}`);
      this.events.emit({ kind: 'error', code: 'E_CHECKPOINT', message: `checkpoint of step ${step} failed: ${e.message}` });
    });
  }

  /** Write the final checkpoint, say bye to every worker (close 4004), resolve done(). */
  private async finalize(): Promise<void> {
    const m = this.machine;
    const bytes = m.checkpointBytes();
    const params = Float32Array.from(m.params);
    const path = await this.store.saveFinal(bytes);
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

  /**
   * The run cannot go on: every worker gets the error (close 1011) and done() rejects.
   * A bad result under nonFinitePolicy 'stop' (E_NONFINITE / E_WORKER) first gets a
   * checkpoint of the last good state, named in the rejection.
   */
  private failRun(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.o.log(`run failed: ${err.message}`);
    const code = err instanceof DptrainError ? err.code : 'E_INTERNAL';
    // closed before the end: the workers may come back to a resumed run (1001); anything else is an error (1011)
    for (const c of this.conns.values()) {
      if (code === 'E_CLOSED') c.bye('coordinator closed', 1001);
      else c.fail(code, `run failed: ${err.message}`, 1011);
    }
    if (code !== 'E_NONFINITE' && code !== 'E_WORKER') return this.rejectDone(err);
    this.failing = this.checkpointNow().then(
      (ck) => this.rejectDone(new DptrainError(code, `${err.message}; the last good state (step ${ck.step}) is in ${ck.path}`, { cause: err })),
      (e: Error) => {
        this.o.log(`checkpoint of the last good state failed: ${e.message}`);
        this.rejectDone(err);
      },
    );
  }

  private async stopNow(reason: string): Promise<void> {
    if (this.finalizing) await this.finalizing;
    if (this.failing) await this.failing;
    if (!this.settled && !this.closing) {
      this.machine.stop(reason);
      this.settled = true;
      let where = '';
      try {
        const ck = await this.checkpointNow();
        where = `; resume from ${ck.path}`;
      } catch (e) {
        this.o.log(`stop: the checkpoint failed: ${(e as Error).message}`);
      }
      for (const c of this.conns.values()) c.bye('coordinator stopping', 1001);
      const m = this.machine;
      this.rejectDone(new DptrainError('E_STOPPED', `run ${this.runId} stopped at step ${m.step} of ${m.totalSteps} (${reason})${where}`));
    }
    await this.close();
  }

  /** Wait (at most `ms`) for the close handshakes in flight, so bye and close frames reach the workers. */
  private async drain(wss: WebSocketServer, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (wss.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  private async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clearDeadline();
    if (this.finalizing) await this.finalizing;
    if (!this.settled) {
      this.machine.abort(new DptrainError('E_CLOSED', `coordinator closed at step ${this.machine.step} of ${this.machine.totalSteps}, before the run finished`));
    }
    if (this.failing) await this.failing;
    for (const c of this.conns.values()) c.bye('shutdown', 1001);
    await this.store.idle();
    this.shm.close();
    this.observer?.unmount();
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

// Compile-time check that the real Coordinator can be mounted (kept here, not in http/mount.ts,
// so http/ never imports server.ts).
const coordinatorFits: Coordinator extends ObservableCoordinator ? true : never = true;
void coordinatorFits;
