import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RunEvent } from '@dptrain/protocol';
import { WebSocket, WebSocketServer } from 'ws';
import { checkToken, requestUrl } from './auth.js';

/**
 * Wire format of the observer stream: every WebSocket text message is a JSON array of
 * RunEvent objects in ascending `seq`. A new client first gets the whole history (in
 * arrays of up to `historyChunk` events), then each live event as it happens (usually one
 * per message). The stream is read-only: inbound messages are ignored, and one larger than
 * 1 KiB closes the connection (1009).
 */
export const EVENTS_PATH = '/events';

/** Options of createEventStream / attachEventStream. */
export interface EventStreamOptions {
  /** Every event emitted so far, in seq order (may be the coordinator's own append-only array). */
  history: () => readonly RunEvent[];
  /** Subscribe to live events; returns the remover. Subscribed once per stream, not per client. */
  onEvent: (listener: (e: RunEvent) => void) => () => void;
  /** When set (non-empty), the upgrade needs the token (Bearer header, `?token=` or cookie); 401 otherwise. */
  token?: string;
  /** URL path served. Default '/events'. */
  path?: string;
  /** A client whose unsent data exceeds this many bytes is dropped (never waited for). Default 8 MiB. */
  maxBufferedBytes?: number;
  /** Live events queued while a client's history is still being sent, before it is dropped. Default 50 000. */
  maxPending?: number;
  /** Events per history message. Default 500. */
  historyChunk?: number;
  /** Concurrent viewers accepted (503 beyond). Default 64. */
  maxClients?: number;
  /** Ping interval; a client that has not answered the previous ping is dropped. 0 disables. Default 30 000 ms. */
  pingMs?: number;
}

const DEFAULTS = { token: '', path: EVENTS_PATH, maxBufferedBytes: 8 << 20, maxPending: 50_000, historyChunk: 500, maxClients: 64, pingMs: 30_000 };

/** A running observer endpoint. */
export interface EventStream {
  /**
   * Offer an HTTP upgrade request. Returns false (touching nothing) when its path is not
   * the stream's, so the caller can hand it to the worker endpoint; otherwise takes the
   * socket (accepting it, or answering 401/503) and returns true.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Number of connected viewers. */
  clientCount(): number;
  /** Viewers dropped so far for being too slow (buffer overflow or unanswered ping). */
  droppedCount(): number;
  /** Disconnect every viewer and unsubscribe. Safe to call twice. */
  close(): void;
}

interface Client {
  ws: WebSocket;
  /** Highest seq sent (or queued) so far. */
  lastSeq: number;
  /** Live events waiting until the history has been sent; null once live. */
  pending: RunEvent[] | null;
  alive: boolean;
}

function rejectUpgrade(socket: Duplex, status: number, reason: string, msg: string, extra = ''): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(msg)}\r\n${extra}\r\n${msg}`);
}

/** Create the `/events` WebSocket endpoint (not attached to any server: call handleUpgrade). */
export function createEventStream(options: EventStreamOptions): EventStream {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<EventStreamOptions>;
  for (const k of ['maxBufferedBytes', 'maxPending', 'historyChunk', 'maxClients'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`event stream option ${k}: expected an integer ≥ 1, got ${String(o[k])}`);
  }
  if (!Number.isFinite(o.pingMs) || o.pingMs < 0) throw new RangeError(`event stream option pingMs: expected a number ≥ 0, got ${String(o.pingMs)}`);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  const clients = new Set<Client>();
  let dropped = 0;
  let closed = false;

  const drop = (c: Client): void => {
    if (!clients.delete(c)) return;
    dropped++;
    c.ws.terminate();
  };

  /** Send an already serialized batch ending at `lastSeq`, or drop the client if it is behind. */
  const sendLive = (c: Client, json: string): void => {
    if (c.ws.readyState !== WebSocket.OPEN) return;
    if (c.ws.bufferedAmount > o.maxBufferedBytes) return drop(c);
    c.ws.send(json);
  };

  const unsubscribe = options.onEvent((e) => {
    let json: string | undefined;
    for (const c of clients) {
      if (e.seq <= c.lastSeq) continue;
      if (c.pending) {
        c.pending.push(e);
        c.lastSeq = e.seq;
        if (c.pending.length > o.maxPending) drop(c);
        continue;
      }
      json ??= JSON.stringify([e]);
      c.lastSeq = e.seq;
      sendLive(c, json);
    }
  });

  const sendHistory = (c: Client, events: readonly RunEvent[], from: number): void => {
    if (!clients.has(c) || c.ws.readyState !== WebSocket.OPEN) return;
    if (from >= events.length) {
      const rest = c.pending ?? [];
      c.pending = null;
      if (rest.length > 0) sendLive(c, JSON.stringify(rest));
      return;
    }
    const chunk = events.slice(from, from + o.historyChunk);
    // Pace the replay: the next chunk goes once this one has been handed to the socket.
    c.ws.send(JSON.stringify(chunk), (err) => {
      if (!err) sendHistory(c, events, from + o.historyChunk);
    });
  };

  wss.on('connection', (ws: WebSocket) => {
    const events = options.history().slice();
    const c: Client = { ws, lastSeq: events.length > 0 ? events[events.length - 1].seq : -1, pending: [], alive: true };
    clients.add(c);
    ws.on('message', () => {
      // read-only stream: inbound messages are ignored
    });
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', () => clients.delete(c));
    ws.on('close', () => clients.delete(c));
    sendHistory(c, events, 0);
  });

  const timer = o.pingMs > 0
    ? setInterval(() => {
        for (const c of clients) {
          if (!c.alive) {
            drop(c);
            continue;
          }
          c.alive = false;
          if (c.ws.readyState === WebSocket.OPEN) c.ws.ping();
        }
      }, o.pingMs)
    : undefined;
  timer?.unref();

  return {
    handleUpgrade(req, socket, head) {
      const url = requestUrl(req);
      if (url.pathname !== o.path) return false;
      if (closed) {
        rejectUpgrade(socket, 503, 'Service Unavailable', 'event stream closed\n');
        return true;
      }
      if (!checkToken(req, url, o.token).ok) {
        rejectUpgrade(socket, 401, 'Unauthorized', 'unauthorized: pass the run token as "Authorization: Bearer TOKEN" or "?token=TOKEN"\n', 'WWW-Authenticate: Bearer realm="dptrain"\r\n');
        return true;
      }
      if (clients.size >= o.maxClients) {
        rejectUpgrade(socket, 503, 'Service Unavailable', `too many viewers (${o.maxClients})\n`);
        return true;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return true;
    },
    clientCount: () => clients.size,
    droppedCount: () => dropped,
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      if (timer) clearInterval(timer);
      for (const c of clients) c.ws.terminate();
      clients.clear();
      wss.close();
    },
  };
}

/**
 * Create the event stream and listen for `upgrade` on `server`. Requests for other paths
 * are left to the server's other `upgrade` listeners (e.g. the worker endpoint); if there
 * is none, they are refused with 404. `close()` also removes the listener.
 */
export function attachEventStream(server: Server, options: EventStreamOptions): EventStream {
  const stream = createEventStream(options);
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (stream.handleUpgrade(req, socket, head)) return;
    if (server.listenerCount('upgrade') <= 1) rejectUpgrade(socket, 404, 'Not Found', 'no WebSocket endpoint at this path\n');
  };
  server.on('upgrade', listener);
  return {
    ...stream,
    close() {
      server.off('upgrade', listener);
      stream.close();
    },
  };
}
