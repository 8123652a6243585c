import { type Dataset, LeafComputer, alignedNodes, fingerprint, runSeeds } from '@dptrain/core';
import { type ErrorMessage, type Message, type ResultMessage, type TaskMessage, decode, encode, encodeResult } from '@dptrain/protocol';
import { WebSocket } from 'ws';

/** One computed node result, as a fake worker is about to send it. */
export type FakeResult = Omit<ResultMessage, 'type' | 'v'>;

/** What a fake worker saw until its socket closed. */
export interface FakeEnd {
  code: number;
  reason: string;
  errors: ErrorMessage[];
  byes: string[];
  results: number;
}

export interface FakeWorkerOptions {
  /** ws:// or wss:// URL of the coordinator. */
  url: string;
  name: string;
  /** The training split (the worker computes on it). */
  train: Dataset;
  token?: string;
  /** CA certificate (PEM) to trust for wss://. */
  ca?: string;
  /** Sent instead of the hello. */
  first?: Uint8Array;
  /** Fingerprint reported in `ready` (default: the real one). */
  fingerprint?: string;
  /** Called for each task before it is computed; 'skip' computes nothing. */
  onTask?: (task: TaskMessage, w: FakeWorker) => 'skip' | void;
  /**
   * Decide per computed result: send it (possibly changed), 'hold' it (in `held`, for
   * sendResult later) or 'drop' it. May be async: results of a task go out in order.
   */
  onResult?: (r: FakeResult, w: FakeWorker) => FakeResult | 'hold' | 'drop' | Promise<FakeResult | 'hold' | 'drop'>;
  /** Sees every frame sent ('out') and received ('in'), e.g. to capture real traffic. */
  tap?: (dir: 'in' | 'out', bytes: Uint8Array) => void;
}

/**
 * An in-process test worker speaking the real protocol: hello → welcome → ready →
 * params/tasks → one result per canonical node (computed with core's LeafComputer, so
 * bit-identical to a real worker), heartbeats answered. Hooks let a test make it hang,
 * lie, leave or go slow. Not part of the package API.
 */
export class FakeWorker {
  readonly ws: WebSocket;
  readonly ended: Promise<FakeEnd>;
  readonly tasks: TaskMessage[] = [];
  readonly held: FakeResult[] = [];
  /** Frames this worker sent. */
  framesSent = 0;
  workerId: string | undefined;
  private computer: LeafComputer | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly out: FakeEnd = { code: 0, reason: '', errors: [], byes: [], results: 0 };

  constructor(readonly opts: FakeWorkerOptions) {
    this.ws = new WebSocket(opts.url, opts.ca ? { ca: opts.ca } : {});
    this.ended = new Promise<FakeEnd>((resolve) => {
      this.ws.on('open', () => {
        this.send(opts.first ?? encode({ type: 'hello', workerName: opts.name, host: 'test', pid: process.pid, kernels: ['js'], ...(opts.token !== undefined ? { token: opts.token } : {}) }));
      });
      this.ws.on('message', (raw: Buffer) => {
        this.opts.tap?.('in', new Uint8Array(raw));
        this.onMessage(decode(raw));
      });
      this.ws.on('error', () => {});
      this.ws.on('close', (code: number, reason: Buffer) => resolve({ ...this.out, code, reason: reason.toString() }));
    });
  }

  /** Send raw bytes (counted). */
  send(bytes: Uint8Array | string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.framesSent++;
    if (typeof bytes !== 'string') this.opts.tap?.('out', bytes);
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  sendResult(r: FakeResult): void {
    const { grad, ...header } = r;
    this.send(encodeResult(header, grad));
    this.out.results++;
  }

  bye(reason: string): void {
    this.send(encode({ type: 'bye', reason }));
  }

  private onMessage(m: Message): void {
    switch (m.type) {
      case 'welcome':
        this.workerId = m.workerId;
        this.computer = new LeafComputer(m.model, this.opts.train, { leafSize: m.run.leafSize, seed: runSeeds(m.run.seed).dropout });
        this.send(encode({ type: 'ready', fingerprint: this.opts.fingerprint ?? fingerprint(this.opts.train), loadMs: 1 }));
        break;
      case 'params':
        this.computer!.setParams(m.data);
        break;
      case 'task':
        this.onTaskMessage(m);
        break;
      case 'heartbeat':
        this.send(encode({ type: 'heartbeat', t: Date.now() }));
        break;
      case 'error':
        this.out.errors.push(m);
        break;
      case 'bye':
        this.out.byes.push(m.reason);
        break;
    }
  }

  private onTaskMessage(m: TaskMessage): void {
    this.tasks.push(m);
    if (this.opts.onTask?.(m, this) === 'skip') return;
    // compute now, with the params of this moment; sending may wait (hooks)
    const batch = { step: m.step, leafCount: m.leafCount, batchSize: m.batchSize, indices: m.indices, indexBase: m.leafLo };
    const results = alignedNodes(m.leafLo, m.leafHi, m.leafCount).map((node): FakeResult => {
      const grad = new Float32Array(this.computer!.paramCount);
      const st = this.computer!.computeNode(batch, node, grad);
      return { step: m.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs: 1, grad };
    });
    this.queue = this.queue.then(async () => {
      for (const r of results) {
        const what = this.opts.onResult ? await this.opts.onResult(r, this) : r;
        if (what === 'hold') this.held.push(r);
        else if (what !== 'drop') this.sendResult(what);
      }
    });
  }
}

/** Bound a promise in time so a broken run fails the test instead of hanging it. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Resolve once `cond()` holds (polled every 5 ms), or reject after `ms`. */
export function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t0 = Date.now();
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - t0 > ms) {
        clearInterval(t);
        reject(new Error(`timed out after ${ms} ms: ${what}`));
      }
    }, 5);
  });
}
