/** Connection to the coordinator's `/events` WebSocket, with reconnection and backoff. */

/** Where the page finds the event stream: `events` next to the page, ws(s) scheme, `?token=` passed through. */
export function eventsUrl(page: { href: string }): string {
  const here = new URL(page.href);
  const url = new URL('events', here);
  url.protocol = here.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  const token = here.searchParams.get('token');
  if (token !== null) url.searchParams.set('token', token);
  return url.toString();
}

/** Delay before reconnection attempt `n` (0-based): 0.5 s doubling to at most 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, Math.min(attempt, 10)));
}

export type ConnectionStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** Callbacks of connectEvents. */
export interface ConnectionHandlers {
  /** A connection opened: the server is about to replay its history. */
  onOpen(): void;
  /** A batch of parsed events (unchecked JSON values). */
  onEvents(events: unknown[]): void;
  onStatus(status: ConnectionStatus, detail: { attempt: number; retryInMs?: number }): void;
}

/** Minimal WebSocket constructor shape (the browser's, or a fake in tests). */
export type WebSocketLike = new (url: string) => Pick<WebSocket, 'onopen' | 'onmessage' | 'onclose' | 'onerror' | 'close'>;

/** Timer functions (injectable for tests). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/**
 * Keep a connection to `url` open: each message (a JSON array of events) goes to
 * onEvents; on close, reconnect after backoffMs(attempt). Returns a stopper.
 */
export function connectEvents(url: string, h: ConnectionHandlers, WS: WebSocketLike, timers: Timers): { close(): void } {
  let attempt = 0;
  let stopped = false;
  let timer: unknown = null;
  let ws: InstanceType<WebSocketLike> | null = null;

  const open = (): void => {
    if (stopped) return;
    h.onStatus(attempt === 0 ? 'connecting' : 'reconnecting', { attempt });
    const sock = new WS(url);
    ws = sock;
    sock.onopen = () => {
      attempt = 0;
      h.onOpen();
      h.onStatus('live', { attempt });
    };
    sock.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(ev.data);
      } catch {
        return;
      }
      h.onEvents(Array.isArray(parsed) ? parsed : [parsed]);
    };
    sock.onerror = () => {
      // followed by onclose; nothing to do here
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (stopped) return;
      const wait = backoffMs(attempt);
      attempt++;
      h.onStatus('reconnecting', { attempt, retryInMs: wait });
      timer = timers.setTimeout(open, wait);
    };
  };
  open();
  return {
    close() {
      if (stopped) return;
      stopped = true;
      if (timer !== null) timers.clearTimeout(timer);
      ws?.close();
      ws = null;
      h.onStatus('closed', { attempt });
    },
  };
}
