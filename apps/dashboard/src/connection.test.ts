import { describe, expect, it } from 'vitest';
import { backoffMs, connectEvents, eventsUrl, type ConnectionStatus, type WebSocketLike } from './connection.js';

class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  close(): void {
    this.closed = true;
  }
}

describe('connection', () => {
  it('derives the events URL from the page, keeping the token and the path prefix', () => {
    expect(eventsUrl({ href: 'http://host:8080/' })).toBe('ws://host:8080/events');
    expect(eventsUrl({ href: 'https://h/dptrain/index.html?token=a%20b&x=1#frag' })).toBe('wss://h/dptrain/events?token=a+b');
    expect(eventsUrl({ href: 'http://h/dptrain/' })).toBe('ws://h/dptrain/events');
  });

  it('backs off exponentially up to 10 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('reconnects after a close with growing delays, resets them once open, and delivers batches', () => {
    FakeSocket.all = [];
    const timers: { fn: () => void; ms: number }[] = [];
    const statuses: ConnectionStatus[] = [];
    const batches: unknown[][] = [];
    let opens = 0;
    const c = connectEvents(
      'ws://x/events',
      { onOpen: () => opens++, onEvents: (e) => batches.push(e), onStatus: (st) => statuses.push(st) },
      FakeSocket as unknown as WebSocketLike,
      { setTimeout: (fn, ms) => timers.push({ fn, ms }), clearTimeout: () => {} },
    );
    const s0 = FakeSocket.all[0];
    s0.onclose?.({});
    timers.shift()!.fn();
    FakeSocket.all[1].onclose?.({});
    expect(timers.map((t) => t.ms)).toEqual([1000]);
    timers.shift()!.fn();
    const s2 = FakeSocket.all[2];
    s2.onopen?.({});
    s2.onmessage?.({ data: '[{"seq":0},{"seq":1}]' });
    s2.onmessage?.({ data: 'not json' });
    s2.onmessage?.({ data: '{"seq":2}' });
    expect(opens).toBe(1);
    expect(batches).toEqual([[{ seq: 0 }, { seq: 1 }], [{ seq: 2 }]]);
    s2.onclose?.({});
    expect(timers.map((t) => t.ms)).toEqual([500]);
    c.close();
    expect(statuses).toEqual(['connecting', 'reconnecting', 'reconnecting', 'reconnecting', 'reconnecting', 'live', 'reconnecting', 'closed']);
    expect(FakeSocket.all.every((s) => s.url === 'ws://x/events')).toBe(true);
  });
});
