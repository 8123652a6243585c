import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachEventStream, type EventStream, type EventStreamOptions } from './events.js';
import { EventLog } from '../event-log.js';
import { createHttpHandler } from './handler.js';
import { createMetricsRegistry, metricsFromEvent, type MetricsRegistry } from './metrics.js';

/** A plain HTTP server on 127.0.0.1:0 with the handler, /events and metrics fed from a hub (tests, demos). */
export interface ObserverServer {
  server: Server;
  /** The event source: emit() here to feed /events and /metrics. */
  hub: EventLog;
  metrics: MetricsRegistry;
  stream: EventStream;
  /** http://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

/** Start an ObserverServer on 127.0.0.1 (`port`, default 0: any free one); `staticDir`/`token`/stream options are passed through. */
export async function startObserverServer(opts: { staticDir?: string; token?: string; port?: number; api?: Record<string, () => unknown>; stream?: Partial<EventStreamOptions> } = {}): Promise<ObserverServer> {
  const hub = new EventLog();
  const metrics = createMetricsRegistry({ processMetrics: false });
  hub.on((e) => metricsFromEvent(metrics, e));
  const runInfo = () => {
    const h = hub.history;
    const started = h.find((e) => e.kind === 'run_started');
    return { runId: started?.kind === 'run_started' ? started.runId : null, events: h.length };
  };
  const server = createServer(createHttpHandler({ runInfo, metrics, staticDir: opts.staticDir, token: opts.token, api: opts.api }));
  const stream = attachEventStream(server, { ...opts.stream, history: () => hub.history, onEvent: (l) => hub.on(l), token: opts.token });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    server,
    hub,
    metrics,
    stream,
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        stream.close();
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
