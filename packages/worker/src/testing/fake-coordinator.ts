import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type Message, type MessageInit, WORKER_MESSAGE_TYPES, decode, encode } from '@dptrain/protocol';
import { type WebSocket, WebSocketServer } from 'ws';

// A scripted stand-in for a coordinator, for the worker's tests: a WebSocket server on
// 127.0.0.1 (ws:// or wss://) whose connections the test drives message by message.

/** One worker connection as the fake coordinator sees it: decoded messages in arrival order. */
export class FakeConn {
  private readonly queue: Message[] = [];
  private waiting: ((m: Message) => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket, paramCount?: number) {
    ws.on('message', (raw: Buffer) => {
      const m = decode(new Uint8Array(raw), { accept: WORKER_MESSAGE_TYPES, paramCount, copyPayload: true });
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(m);
      } else this.queue.push(m);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** The next message (skipping heartbeats unless asked for). */
  async next(opts: { heartbeats?: boolean } = {}): Promise<Message> {
    for (;;) {
      const m = this.queue.shift() ?? (await new Promise<Message>((resolve) => (this.waiting = resolve)));
      if (m.type !== 'heartbeat' || opts.heartbeats) return m;
    }
  }

  send(m: MessageInit): void {
    this.ws.send(encode(m));
  }
}

/** A WebSocket server on 127.0.0.1 that hands each connection to the test. */
export class FakeCoordinator {
  readonly wss: WebSocketServer;
  private readonly conns: FakeConn[] = [];
  private waiting: ((c: FakeConn) => void) | undefined;
  paramCount: number | undefined;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws) => {
      const c = new FakeConn(ws, this.paramCount);
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(c);
      } else this.conns.push(c);
    });
  }

  private https: HttpsServer | undefined;

  static async listen(port = 0): Promise<FakeCoordinator> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeCoordinator(wss);
  }

  /** The same over TLS (wss://) with this certificate and key (PEM). */
  static async listenTls(tls: { cert: string; key: string }): Promise<FakeCoordinator> {
    const https = createHttpsServer(tls);
    await new Promise<void>((resolve, reject) => {
      https.once('error', reject);
      https.listen(0, '127.0.0.1', resolve);
    });
    const f = new FakeCoordinator(new WebSocketServer({ server: https }));
    f.https = https;
    return f;
  }

  get port(): number {
    return ((this.https ?? this.wss).address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.https ? 'wss' : 'ws'}://127.0.0.1:${this.port}`;
  }

  accept(): Promise<FakeConn> {
    const c = this.conns.shift();
    return c ? Promise.resolve(c) : new Promise((resolve) => (this.waiting = resolve));
  }

  /** Drop every connection abruptly and stop listening. */
  async kill(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    if (this.https) {
      this.https.closeAllConnections();
      await new Promise<void>((resolve) => this.https!.close(() => resolve()));
    }
  }
}
