import { hostname } from 'node:os';
import * as core from '@dptrain/core';
import { ConfigError, type DatasetSplit, DptrainError } from '@dptrain/core';
import {
  CLOSE_CODES,
  COORDINATOR_MESSAGE_TYPES,
  type DecodeContext,
  type ErrorMessage,
  type HeartbeatMessage,
  type HelloMessage,
  LIMITS,
  type Message,
  type MessageInit,
  ProtocolError,
  StaleSlotError,
  type WelcomeMessage,
  decode,
  encode,
  maxFrameBytes,
  toErrorMessage,
  truncateUtf8,
} from '@dptrain/protocol';
import WebSocket from 'ws';
import { Backoff, type ReconnectOptions, validateReconnect } from './backoff.js';
import { DataCache } from './data-cache.js';
import { type NodeResult, TaskRunner } from './compute.js';
import { SerialDispatch } from './dispatch.js';
import { ShmClient } from './shm-client.js';

/** Shared-memory failures after which a worker declines further offers. */
const SHM_MAX_FAILURES = 3;
import { FaultInjector, type TestFault } from './test-fault.js';

export interface WorkerOptions {
  /** Coordinator address, ws://host:port. */
  url: string;
  /** Name shown by the coordinator (default `worker-<pid>`). */
  name?: string;
  /** Shared secret, if the coordinator requires one. */
  token?: string;
  /** Loads a dataset by the reference the coordinator names (the train split is used). */
  loadData: (ref: string) => Promise<DatasetSplit>;
  reconnect?: ReconnectOptions;
  log?: (line: string) => void;
  /** Trust this CA certificate (PEM) for wss:// instead of the system's (e.g. the coordinator's self-signed certificate). */
  ca?: string | Buffer;
  /** TEST-ONLY fault hook (see test-fault.ts): inert unless given. */
  testFault?: TestFault;
  /**
   * Take a coordinator's offer of the shared-memory data plane when it runs on this host
   * (default true): params and gradients then travel through files in /dev/shm, the
   * socket carries only small messages. After 3 failures of it the worker declines it.
   */
  sharedMemory?: boolean;
}

/** What a worker did, returned when the run is over or the worker was closed. */
export interface WorkerSummary {
  /** Why the worker stopped: the coordinator's bye reason, 'run finished' or 'closed'. */
  reason: string;
  workerId?: string;
  runId?: string;
  /** Tasks computed and result messages sent. */
  tasks: number;
  results: number;
  samples: number;
  computeMs: number;
  /** Connections opened (1 + successful reconnects). */
  connections: number;
}

/** A fatal failure reported by the coordinator (or found by the worker): `code` is the error code, `closeCode` the WebSocket close code. */
export class WorkerError extends DptrainError {
  readonly closeCode: number | undefined;
  constructor(code: string, message: string, closeCode?: number) {
    super(code, message);
    this.closeCode = closeCode;
  }
}

type SessionEnd = { kind: 'finished'; reason: string } | { kind: 'fatal'; error: Error } | { kind: 'lost'; welcomed: boolean; reason: string; opened: boolean };

/** Close codes after which the worker gives up instead of reconnecting, with the error code used when no error message came first. */
const FATAL_CLOSE: Record<number, string> = {
  [CLOSE_CODES.PROTOCOL_ERROR]: 'E_PROTOCOL',
  [CLOSE_CODES.VERSION_MISMATCH]: 'E_VERSION',
  [CLOSE_CODES.DATA_MISMATCH]: 'E_DATA_MISMATCH',
  [CLOSE_CODES.AUTH_FAILED]: 'E_AUTH',
  [CLOSE_CODES.NOT_NEEDED]: 'E_NOT_NEEDED',
  [CLOSE_CODES.TOO_BIG]: 'E_TOO_LARGE',
  // the coordinator's run failed (or it hit an internal error): there is nothing to rejoin
  1011: 'E_RUN_FAILED',
};

/** Kernel names this runtime can run: core's availableKernels() when it exists, else ['js']. */
/** Masking key generator for ws: all zeros (see the comment where the socket is opened). */
export function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

function kernelNames(): string[] {
  const f = (core as Record<string, unknown>).availableKernels;
  return typeof f === 'function' ? (f as () => string[])() : ['js'];
}

/**
 * A worker process's connection to a coordinator: handshake, data check, one result per
 * canonical tree node of every task, heartbeats, reconnection with backoff. start()
 * resolves when the run is over (or close() was called) and rejects on a fatal error.
 */
export class Worker {
  private readonly opts: Required<Omit<WorkerOptions, 'token' | 'reconnect' | 'ca' | 'testFault'>> & { token?: string; ca?: string | Buffer };
  /** Sessions whose shared-memory data plane failed; from SHM_MAX_FAILURES on, offers are declined. */
  private shmFailures = 0;
  private readonly fault: FaultInjector | undefined;
  private readonly backoff: Backoff;
  private readonly data: DataCache;
  private readonly summary: WorkerSummary = { reason: '', tasks: 0, results: 0, samples: 0, computeMs: 0, connections: 0 };
  private ws: WebSocket | undefined;
  private closed = false;
  private running: Promise<WorkerSummary> | undefined;
  private wake: (() => void) | undefined;

  constructor(opts: WorkerOptions) {
    if (typeof opts?.url !== 'string' || !/^wss?:\/\//.test(opts.url)) throw new ConfigError('url', `expected ws://host:port or wss://host:port, got ${JSON.stringify(opts?.url)}`);
    if (typeof opts.loadData !== 'function') throw new ConfigError('loadData', 'expected a function (ref) => Promise<DatasetSplit>');
    const name = opts.name ?? `worker-${process.pid}`;
    if (typeof name !== 'string' || name.length < 1 || Buffer.byteLength(name) > LIMITS.workerName) {
      throw new ConfigError('name', `expected 1 to ${LIMITS.workerName} bytes, got ${JSON.stringify(name)}`);
    }
    if (opts.ca !== undefined && typeof opts.ca !== 'string' && !Buffer.isBuffer(opts.ca)) throw new ConfigError('ca', 'expected PEM text (a string or a Buffer)');
    if (opts.sharedMemory !== undefined && typeof opts.sharedMemory !== 'boolean') throw new ConfigError('sharedMemory', `expected true or false, got ${JSON.stringify(opts.sharedMemory)}`);
    this.opts = { url: opts.url, name, token: opts.token, ca: opts.ca, loadData: opts.loadData, log: opts.log ?? (() => {}), sharedMemory: opts.sharedMemory ?? true };
    this.fault = opts.testFault ? new FaultInjector(opts.testFault, name) : undefined;
    this.backoff = new Backoff(validateReconnect(opts.reconnect, process.pid >>> 0));
    this.data = new DataCache(opts.loadData);
  }

  /** Connect and work until the run ends. Calling it again returns the same promise. */
  start(): Promise<WorkerSummary> {
    this.running ??= this.loop();
    return this.running;
  }

  /**
   * Say bye (the coordinator moves this worker's leaves on at once) and disconnect;
   * start() then resolves with reason 'closed'. Safe to call twice.
   */
  close(reason = 'worker closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      this.send(ws, { type: 'bye', reason: truncate(reason) });
      ws.close(CLOSE_CODES.NORMAL, truncate(reason));
    } else if (ws && ws.readyState === WebSocket.CONNECTING) ws.terminate();
  }

  private async loop(): Promise<WorkerSummary> {
    for (;;) {
      if (this.closed) return this.finish('closed');
      const end = await this.session();
      if (this.closed) return this.finish('closed');
      if (end.kind === 'finished') return this.finish(end.reason);
      if (end.kind === 'fatal') throw end.error;
      if (end.welcomed) this.backoff.reset();
      const delay = this.backoff.next();
      if (delay === undefined) {
        const what = end.opened || this.summary.connections > 0 ? 'lost the coordinator at' : 'cannot reach the coordinator at';
        throw new WorkerError('E_CONNECTION', `${what} ${this.opts.url} (${end.reason}) and gave up after ${this.backoff.attempts} reconnect attempt(s)`);
      }
      if (end.opened) this.opts.log(`connection to ${this.opts.url} lost (${end.reason}); retry ${this.backoff.attempts} in ${delay} ms`);
      else {
        // the connection never opened (nothing listens, refused, unreachable): not a lost connection
        const { maxAttempts, maxMs } = this.backoff.policy;
        const of = maxAttempts === Infinity ? '' : ` of ${maxAttempts}`;
        this.opts.log(`cannot reach ${this.opts.url} (${end.reason}); next attempt in ${waitText(delay)} (retry ${this.backoff.attempts}${of}; the wait doubles up to ${waitText(maxMs)})`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private finish(reason: string): WorkerSummary {
    this.summary.reason = reason;
    return { ...this.summary };
  }

  private send(ws: WebSocket, msg: MessageInit): void {
    ws.send(encode(msg), { binary: true });
  }

  /**
   * Send a result through shared memory: the gradient, straight from the kernels' memory
   * (no frame is made), into the next slot of the result file, a result_ref through the
   * socket. False if the write failed (the caller then sends the whole frame: the
   * coordinator accepts both).
   */
  private sendRef(ws: WebSocket, shm: ShmClient, r: NodeResult): boolean {
    let ref: { slot: number; seq: number } | undefined;
    try {
      ref = shm.writeResult(r.header.step, r.grad);
    } catch (e) {
      this.opts.log(`writing a result to shared memory failed (${(e as Error).message}); sent through the socket`);
      return false;
    }
    // every slot still holds a result the coordinator has not read yet: this one goes as a frame
    if (!ref) return false;
    this.send(ws, { type: 'result_ref', ...r.header, ...ref });
    return true;
  }

  /** One connection, from connect to close. Never rejects. */
  private session(): Promise<SessionEnd> {
    const { url, name, token, ca, log } = this.opts;
    return new Promise<SessionEnd>((resolve) => {
      // An all-zero masking key: RFC 6455 requires clients to mask, and masking exists to stop
      // browser scripts from poisoning proxy caches; it protects nothing for this non-browser
      // client. ws skips the XOR for a zero key, which saves ~7 ms per 1 MB gradient in
      // pure JS (measured in bench:scaling); frames stay valid for any server.
      const ws = new WebSocket(url, {
        maxPayload: maxFrameBytes(LIMITS.maxParamCount, 0),
        perMessageDeflate: false,
        generateMask: zeroMask,
        ...(ca !== undefined ? { ca } : {}),
      });
      this.ws = ws;
      let welcome: WelcomeMessage | undefined;
      let runner: TaskRunner | undefined;
      let shm: ShmClient | undefined;
      /** Why the shared-memory data plane failed in this session (the session then ends as lost, and is retried). */
      let shmBroken: string | undefined;
      /** A params version whose slot was rewritten before this worker read it: its task is stale and is dropped. */
      let staleVersion: number | undefined;
      let ctx: DecodeContext = { accept: COORDINATOR_MESSAGE_TYPES };
      let bye: string | undefined;
      let peerError: ErrorMessage | undefined;
      let fatal: Error | undefined;
      let lastError = '';
      /** Whether this session's connection opened (else nothing answered at the address). */
      let opened = false;
      let lastStep: number | undefined;

      /** Report a fatal error to the coordinator, close, and end the session with it. */
      const fail = (err: Error, closeCode: number) => {
        if (fatal) return;
        fatal = err;
        if (ws.readyState === WebSocket.OPEN) {
          ws.send(encode(toErrorMessage(err, { fatal: true })), { binary: true }, () => ws.close(closeCode, truncate(err.message)));
        } else ws.terminate();
      };

      /** The shared-memory data plane failed: say so, close with 4006, and rejoin (over the socket alone after repeated failures). */
      const breakShm = (err: Error) => {
        if (fatal || shmBroken !== undefined) return;
        shmBroken = err.message;
        this.shmFailures++;
        log(`shared memory failed (${err.message}); reconnecting${this.shmFailures >= SHM_MAX_FAILURES ? ' without it' : ''}`);
        if (ws.readyState === WebSocket.OPEN) {
          this.send(ws, { type: 'error', code: 'E_SHM', message: truncateUtf8(err.message, LIMITS.errorMessage), fatal: true });
          ws.close(CLOSE_CODES.SHM_FAILED, truncate(`E_SHM: ${err.message}`));
        } else ws.terminate();
      };

      /**
       * Read params `version` from the slot `ref` names straight into the kernels' memory
       * (scanned there). False if the session cannot go on with them: the slot was rewritten
       * before the read (this worker lags at least two versions: the step of those params is
       * over, its task is skipped and reported) or shared memory failed (the session ends).
       */
      const readShmParams = (runner: TaskRunner, version: number, ref: { slot: number; seq: number }, what: string): boolean => {
        if (!shm) throw new ProtocolError('E_STATE', `${what} to a worker that did not take the shared-memory offer`);
        const from = shm;
        staleVersion = undefined;
        try {
          runner.setParamsWith(version, (dst) => from.readParams({ version, slot: ref.slot, seq: ref.seq }, dst));
          return true;
        } catch (e) {
          if (e instanceof StaleSlotError) {
            staleVersion = version;
            log(`params version ${version} were replaced before this worker read them (${e.message}); its task is stale and will be skipped`);
            return true;
          }
          if (e instanceof ProtocolError && e.code === 'E_SHM') {
            breakShm(e);
            return false;
          }
          throw e;
        }
      };

      const onWelcome = async (m: WelcomeMessage) => {
        welcome = m;
        this.summary.workerId = m.workerId;
        this.summary.runId = m.runId;
        log(`joined run ${m.runId} as ${m.workerId}; loading ${m.data}`);
        const loaded = await this.data.get(m.data);
        if (loaded.fingerprint !== m.fingerprint) {
          const err = new WorkerError(
            'E_DATA_MISMATCH',
            `dataset ${JSON.stringify(m.data)} differs: this worker's training split has fingerprint ${loaded.fingerprint}, the coordinator's is ${m.fingerprint}`,
            CLOSE_CODES.DATA_MISMATCH,
          );
          return fail(err, CLOSE_CODES.DATA_MISMATCH);
        }
        runner = new TaskRunner(m, loaded.split.train, this.fault);
        // params are scanned for NaN/±Infinity by TaskRunner.setParams, in kernel memory after its copy
        ctx = { accept: COORDINATOR_MESSAGE_TYPES, paramCount: m.paramCount, leafSize: m.run.leafSize, datasetSize: loaded.split.train.n, maxIndices: 1 << 24, receiverScansParams: true };
        // the connection may have closed while the data loaded: nothing to open files for
        if (ws.readyState !== WebSocket.OPEN) return;
        if (m.shm && this.opts.sharedMemory && this.shmFailures < SHM_MAX_FAILURES) {
          try {
            shm = ShmClient.open(m.shm, m.workerId, m.paramCount);
            log(`using the coordinator's shared memory (${m.shm.dir})`);
          } catch (e) {
            log(`not using the coordinator's shared memory: ${(e as Error).message}`);
          }
        }
        this.send(ws, { type: 'ready', fingerprint: loaded.fingerprint, loadMs: loaded.loadMs, ...(shm ? { shm: true } : {}) });
        log(`ready: ${loaded.split.train.n} training samples, fingerprint ${loaded.fingerprint.slice(0, 12)}…`);
      };

      /** Handle one message; a promise only for the welcome (its data loads asynchronously). */
      const handle = (m: Message): Promise<void> | undefined => {
        // after a shared-memory failure the session is closing: the queued task cannot run
        if (fatal || this.closed || shmBroken !== undefined) return;
        switch (m.type) {
          case 'welcome':
            if (welcome) throw new ProtocolError('E_STATE', 'a second welcome on the same connection');
            return onWelcome(m);
          case 'params':
            if (!runner) throw new ProtocolError('E_STATE', 'params before the worker is ready');
            runner.setParams(m.version, m.data);
            return;
          case 'params_ref':
            if (!runner) throw new ProtocolError('E_STATE', 'params_ref before the worker is ready');
            readShmParams(runner, m.version, m, 'params_ref');
            return;
          case 'task': {
            if (!runner) throw new ProtocolError('E_STATE', 'task before the worker is ready');
            if (m.resultsRead !== undefined) shm?.ack(m.resultsRead);
            // params given through shared memory may come with the task itself
            if (m.paramsRef && !readShmParams(runner, m.version, m.paramsRef, 'task.paramsRef')) return;
            if (m.version === staleVersion && runner.version === undefined) {
              log(`step ${m.step}: skipped (its params version ${m.version} was already replaced: the step is over)`);
              // said to the coordinator, which closes this session (4006) should the step not be over
              this.send(ws, { type: 'error', code: 'E_SHM', message: `params version ${m.version} were replaced before they were read; task of step ${m.step} skipped`, fatal: false, step: m.step });
              return;
            }
            lastStep = m.step;
            this.summary.tasks++;
            try {
              // each result is sent before the loop asks for the next node, whose computation
              // overwrites the result's gradient view (TaskRunner.run); a frame made from it
              // is the socket's to read until the send completes and releases it
              for (const r of runner.run(m)) {
                if (ws.readyState !== WebSocket.OPEN) return;
                if (!shm || !this.sendRef(ws, shm, r)) ws.send(r.frame(), { binary: true }, r.release);
                this.summary.results++;
                this.summary.samples += r.samples;
                this.summary.computeMs += r.computeMs;
              }
            } catch (e) {
              // NaN/Inf in a loss or gradient: not this worker's failure to die of, but a bad
              // result to report; the coordinator's non-finite policy stops the run or
              // recomputes the nodes elsewhere. The rest of the task is dropped.
              if (!(e instanceof DptrainError) || e.code !== 'E_NONFINITE') throw e;
              log(`step ${m.step}: ${e.message}; reported to the coordinator`);
              if (ws.readyState === WebSocket.OPEN) this.send(ws, { type: 'error', code: 'E_NONFINITE', message: truncateUtf8(e.message, LIMITS.errorMessage), fatal: false, step: m.step });
            }
            return;
          }
          case 'error':
            peerError = m;
            log(`coordinator reports ${m.code}${m.fatal ? ' (fatal)' : ''}: ${m.message}`);
            return;
          case 'bye':
            bye = m.reason;
            return;
          case 'heartbeat':
            return;
          default:
            throw new ProtocolError('E_TYPE', `message type '${m.type}' is not accepted from a coordinator`);
        }
      };

      /**
       * Messages in arrival order: at once when nothing is queued or running (no detour
       * through the promise queue), else after the welcome still loading its data and
       * whatever came before.
       */
      const dispatch = new SerialDispatch<Message>(handle, (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        const code = err instanceof DptrainError ? err.code : 'E_WORKER';
        const closeCode = err instanceof ProtocolError ? err.closeCode : CLOSE_CODES.PROTOCOL_ERROR;
        fail(err instanceof DptrainError ? err : new WorkerError(code, err.message, closeCode), closeCode);
      });

      ws.on('open', () => {
        opened = true;
        this.summary.connections++;
        const hello: Omit<HelloMessage, 'v'> = { type: 'hello', workerName: name, host: hostname().slice(0, LIMITS.host), pid: process.pid, kernels: kernelNames() };
        if (token !== undefined) hello.token = token;
        if (this.summary.workerId !== undefined) hello.resumeId = this.summary.workerId;
        this.send(ws, hello);
      });

      ws.on('message', (raw: Buffer, isBinary: boolean) => {
        if (fatal) return;
        let m: Message;
        try {
          if (!isBinary) throw new ProtocolError('E_DECODE', 'expected a binary frame, got a text frame');
          m = decode(raw, ctx);
        } catch (e) {
          const err = e as ProtocolError;
          return fail(new WorkerError(err.code, `bad message from the coordinator: ${err.message}`, err.closeCode), err.closeCode);
        }
        // heartbeats are answered at once, even while data is loading
        if (m.type === 'heartbeat') {
          const reply: Omit<HeartbeatMessage, 'v'> = { type: 'heartbeat', t: Date.now() };
          if (lastStep !== undefined) reply.step = lastStep;
          this.send(ws, reply);
          return;
        }
        dispatch.push(m);
      });

      ws.on('error', (e: Error) => {
        lastError = e.message;
      });

      ws.on('close', (code: number, reasonBuf: Buffer) => {
        this.ws = undefined;
        shm?.close();
        const reason = reasonBuf.toString() || lastError || `close code ${code}`;
        if (fatal) return resolve({ kind: 'fatal', error: fatal });
        if (shmBroken !== undefined) return resolve({ kind: 'lost', welcomed: true, reason: `E_SHM: ${shmBroken}`, opened });
        if (code === CLOSE_CODES.SHM_FAILED) this.shmFailures++;
        if (this.closed) return resolve({ kind: 'finished', reason: 'closed' });
        // a bye from the coordinator (run finished, coordinator stopping) ends this worker;
        // a connection lost without one (the coordinator crashed) is retried
        if (code === CLOSE_CODES.RUN_FINISHED || code === CLOSE_CODES.NORMAL || bye !== undefined) {
          log(`run over: ${bye ?? reason}`);
          return resolve({ kind: 'finished', reason: bye ?? (code === CLOSE_CODES.RUN_FINISHED ? 'run finished' : reason) });
        }
        const errCode = FATAL_CLOSE[code];
        if (errCode !== undefined) {
          const text = peerError ? peerError.message : reason;
          return resolve({ kind: 'fatal', error: new WorkerError(peerError?.code ?? errCode, `coordinator closed the connection (${code}): ${text}`, code) });
        }
        resolve({ kind: 'lost', welcomed: welcome !== undefined, reason, opened });
      });
    });
  }
}

/** A wait for people: 150 ms, 2.3 s. */
function waitText(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A WebSocket close reason must fit in 123 bytes. */
function truncate(s: string): string {
  let out = s;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}
