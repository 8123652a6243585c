import type { RunEvent } from '@dptrain/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startObserverServer, type ObserverServer } from './observer-server.js';
import { syntheticRun } from './synthetic-run.js';

let srv: ObserverServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

/** Connect and collect every event until `until` says stop; also returns the batch sizes. */
function collect(url: string, until: (events: RunEvent[]) => boolean, headers?: Record<string, string>, onBatch?: (n: number) => void): Promise<{ events: RunEvent[]; batches: number[]; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const events: RunEvent[] = [];
    const batches: number[] = [];
    let done = false;
    ws.on('message', (data, isBinary) => {
      expect(isBinary).toBe(false);
      const batch = JSON.parse(String(data)) as RunEvent[];
      expect(Array.isArray(batch)).toBe(true);
      batches.push(batch.length);
      events.push(...batch);
      onBatch?.(batches.length);
      if (!done && until(events)) {
        done = true;
        resolve({ events, batches, ws });
      }
    });
    ws.on('error', reject);
  });
}

const wsUrl = (s: ObserverServer, q = '') => s.url.replace('http', 'ws') + '/events' + q;

describe('event stream', () => {
  it('gives a late client the whole (retained) history, then live events, each seq once', async () => {
    srv = await startObserverServer({ stream: { historyChunk: 100 } });
    const run = syntheticRun({ steps: 300 });
    const firstHalf = 400;
    for (const e of run.slice(0, firstHalf)) srv.hub.emit(e);
    const total = run.length;
    expect(total).toBeGreaterThan(firstHalf + 100);
    const hub = srv.hub;
    // only the latest `workers` snapshots are retained: the history has gaps, still in seq order
    const retained = hub.history.map((e) => e.seq);
    expect(retained.length).toBeLessThan(firstHalf);
    expect(hub.history.filter((e) => e.kind === 'workers').length).toBeLessThanOrEqual(128);
    // emit the rest while the client is still receiving its history (after the first chunk)
    const { events, batches, ws } = await collect(wsUrl(srv), (ev) => ev.length > 0 && ev[ev.length - 1].seq === total - 1, undefined, (n) => {
      if (n === 1) for (const e of run.slice(firstHalf)) hub.emit(e);
    });
    ws.close();
    expect(events.map((e) => e.seq)).toEqual([...retained, ...Array.from({ length: total - firstHalf }, (_, i) => firstHalf + i)]);
    expect(events.filter((e) => e.kind === 'step').map((e) => (e.kind === 'step' ? e.step : -1))).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(Math.max(...batches)).toBeLessThanOrEqual(100);
    expect(events[0]).toEqual(srv.hub.history[0]);
  });

  it('refuses a viewer without the token and accepts it with header or query', async () => {
    srv = await startObserverServer({ token: 'tok' });
    srv.hub.emit(syntheticRun()[0]);
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(wsUrl(srv!));
      ws.on('open', () => resolve('opened'));
      ws.on('error', (err) => resolve(err.message));
    });
    expect(refused).toMatch(/401/);
    const wrong = await new Promise<string>((resolve) => {
      const ws = new WebSocket(wsUrl(srv!, '?token=tik'));
      ws.on('open', () => resolve('opened'));
      ws.on('error', (err) => resolve(err.message));
    });
    expect(wrong).toMatch(/401/);
    const a = await collect(wsUrl(srv, '?token=tok'), (ev) => ev.length >= 1);
    const b = await collect(wsUrl(srv), (ev) => ev.length >= 1, { Authorization: 'Bearer tok' });
    expect(a.events[0].kind).toBe('run_started');
    expect(b.events[0].kind).toBe('run_started');
    a.ws.close();
    b.ws.close();
  });

  it('leaves other upgrade paths to another endpoint on the same server', async () => {
    srv = await startObserverServer();
    const workers = new WebSocketServer({ noServer: true });
    workers.on('connection', (ws) => ws.send('worker endpoint'));
    srv.server.on('upgrade', (req, socket, head) => {
      if (req.url === '/worker') workers.handleUpgrade(req, socket, head, (ws) => workers.emit('connection', ws, req));
    });
    expect(srv.stream.handleUpgrade({ url: '/worker', headers: {} } as never, null as never, Buffer.alloc(0))).toBe(false);
    const msg = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(srv!.url.replace('http', 'ws') + '/worker');
      ws.on('message', (d) => {
        resolve(String(d));
        ws.close();
      });
      ws.on('error', reject);
    });
    expect(msg).toBe('worker endpoint');
    srv.hub.emit(syntheticRun()[0]);
    const viewer = await collect(wsUrl(srv), (ev) => ev.length >= 1);
    viewer.ws.close();
    workers.close();
  });

  it('drops a viewer that stops reading instead of buffering without bound', async () => {
    srv = await startObserverServer({ stream: { maxBufferedBytes: 256 * 1024 } });
    const first = syntheticRun()[0];
    srv.hub.emit(first);
    const { ws } = await collect(wsUrl(srv), (ev) => ev.length >= 1);
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = { kind: 'error' as const, code: 'E_TEST', message: 'x'.repeat(64 * 1024) };
    const t0 = performance.now();
    for (let i = 0; i < 400 && srv.stream.droppedCount() === 0; i++) {
      srv.hub.emit(big);
      await new Promise((r) => setImmediate(r));
    }
    expect(srv.stream.droppedCount()).toBe(1);
    expect(srv.stream.clientCount()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await closed;
  });

  it('ignores small inbound messages and closes on a large one', async () => {
    srv = await startObserverServer();
    srv.hub.emit(syntheticRun()[0]);
    const { ws } = await collect(wsUrl(srv), (ev) => ev.length >= 1);
    ws.send('hello');
    const more = new Promise<RunEvent[]>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)) as RunEvent[])));
    srv.hub.emit({ kind: 'worker_joined', workerId: 'w9', host: 'h' });
    expect((await more)[0]).toMatchObject({ kind: 'worker_joined', seq: 1 });
    const code = await new Promise<number>((resolve) => {
      ws.on('close', (c) => resolve(c));
      ws.send('x'.repeat(4096));
    });
    expect(code).toBe(1009);
  });
});
