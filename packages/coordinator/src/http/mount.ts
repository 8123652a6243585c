import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RunEvent } from '@dptrain/protocol';
import { createEventStream, type EventStream } from './events.js';
import { createHttpHandler } from './handler.js';
import { createMetricsRegistry, metricsFromEvent, type MetricsRegistry } from './metrics.js';

/**
 * What mountObserver needs from a coordinator (structurally: the Coordinator class fits; the
 * compile-time check lives in ../server.ts so http/ never imports server.ts).
 */
export interface ObservableCoordinator {
  onEvent(listener: (e: RunEvent) => void): () => void;
  readonly history: readonly RunEvent[];
  runInfo(): object;
  addUpgradeHandler(h: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): () => void;
  setRequestHandler(h: ((req: IncomingMessage, res: ServerResponse) => void) | undefined): void;
}

/** Options of mountObserver. */
export interface MountOptions {
  /** Viewer token for the page, /api/*, /metrics and /events (none: open). */
  token?: string;
  /** Built dashboard directory (default: apps/dashboard/dist). */
  staticDir?: string;
  /** Extra JSON endpoints (see createHttpHandler). */
  api?: Record<string, () => unknown>;
  /** Registry to feed (default: a new one with process metrics). */
  metrics?: MetricsRegistry;
}

/**
 * Serve the dashboard, /api/run, /metrics and /events on a coordinator's port: feeds the
 * metrics from its events (history first), installs the HTTP handler and offers /events
 * upgrades. Call before or after start(). `unmount()` restores the default handler.
 */
export function mountObserver(c: ObservableCoordinator, opts: MountOptions = {}): { metrics: MetricsRegistry; stream: EventStream; unmount(): void } {
  const metrics = opts.metrics ?? createMetricsRegistry();
  let fed = -1;
  const feed = (e: RunEvent) => {
    if (e.seq <= fed) return;
    fed = e.seq;
    metricsFromEvent(metrics, e);
  };
  const offEvents = c.onEvent(feed);
  for (const e of c.history) feed(e);
  const stream = createEventStream({ history: () => c.history, onEvent: (l) => c.onEvent(l), token: opts.token });
  const offUpgrade = c.addUpgradeHandler((req, socket, head) => stream.handleUpgrade(req, socket, head));
  c.setRequestHandler(createHttpHandler({ runInfo: () => c.runInfo(), metrics, staticDir: opts.staticDir, token: opts.token, api: opts.api }));
  let mounted = true;
  return {
    metrics,
    stream,
    unmount() {
      if (!mounted) return;
      mounted = false;
      offEvents();
      offUpgrade();
      stream.close();
      c.setRequestHandler(undefined);
    },
  };
}
