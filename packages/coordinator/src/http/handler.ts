import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkToken, requestUrl, TOKEN_COOKIE } from './auth.js';
import type { MetricsRegistry } from './metrics.js';
import { defaultDashboardDir, readStatic } from './static.js';

/** Options of createHttpHandler. */
export interface HttpHandlerOptions {
  /** Snapshot of the run served as JSON at GET /api/run (called per request). */
  runInfo: () => object;
  /** Registry exposed at GET /metrics. */
  metrics: MetricsRegistry;
  /** Directory of the built dashboard; default: apps/dashboard/dist of this repository. */
  staticDir?: string;
  /** Further read-only JSON endpoints by exact path, e.g. `{ '/api/workers': () => … }` (same auth). */
  api?: Record<string, () => unknown>;
  /** When set (non-empty), every request needs `Authorization: Bearer TOKEN` or `?token=TOKEN`. */
  token?: string;
}

/** For the dashboard page: same-origin scripts, styles, images and the /events WebSocket only. */
const PAGE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}, head = false): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(buf.length), ...extra });
  res.end(head ? undefined : buf);
}

/** JSON without surprises: non-finite numbers become null, typed arrays plain arrays. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return null;
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
    return v;
  }) ?? 'null';
}

const text = (res: ServerResponse, status: number, msg: string, extra: Record<string, string> = {}, head = false) =>
  send(res, status, 'text/plain; charset=utf-8', msg + '\n', { 'Cache-Control': 'no-store', ...extra }, head);

/**
 * The coordinator's read-only HTTP endpoints, as a plain `request` listener:
 *
 * - `GET /` and static files: the built dashboard (503 with instructions if it is not built);
 * - `GET /api/run`: `runInfo()` as JSON (and each path of `api` likewise);
 * - `GET /metrics`: Prometheus text exposition of `metrics`;
 * - anything else: 404; methods other than GET/HEAD: 405.
 *
 * With a token, all of them answer 401 unless the request carries it (Bearer header,
 * `?token=` or the `dptrain_token` cookie). A valid `?token=` sets that cookie (HttpOnly,
 * SameSite=Strict) so the page's scripts and styles, fetched without the query, load too.
 * The WebSocket endpoints are separate (see createEventStream).
 */
export function createHttpHandler(opts: HttpHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const staticDir = opts.staticDir ?? defaultDashboardDir();
  const token = opts.token === '' ? undefined : opts.token;
  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) text(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return text(res, 405, 'method not allowed: this endpoint is read-only (GET)', { Allow: 'GET, HEAD' });
    const head = method === 'HEAD';
    const url = requestUrl(req);
    const auth = checkToken(req, url, token);
    if (!auth.ok) {
      return text(res, 401, 'unauthorized: pass the run token as "Authorization: Bearer TOKEN" or "?token=TOKEN"', { 'WWW-Authenticate': 'Bearer realm="dptrain"' }, head);
    }
    const extra: Record<string, string> = {};
    if (token !== undefined && auth.source === 'query') {
      extra['Set-Cookie'] = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
    }
    const path = url.pathname;
    const route = path === '/api/run' ? opts.runInfo : opts.api && Object.prototype.hasOwnProperty.call(opts.api, path) ? opts.api[path] : undefined;
    if (route) return send(res, 200, 'application/json; charset=utf-8', toJson(route()), { 'Cache-Control': 'no-store', ...extra }, head);
    if (path === '/metrics') {
      const body = await opts.metrics.registry.metrics();
      return send(res, 200, opts.metrics.contentType, body, { 'Cache-Control': 'no-store', ...extra }, head);
    }
    if (path === '/events' || path.startsWith('/api/')) return text(res, 404, `not found: ${path}${path === '/events' ? ' is a WebSocket endpoint' : ''}`, extra, head);
    const file = readStatic(staticDir, path);
    if (file.kind === 'not_built') {
      return text(res, 503, `dashboard not built: run "npm run build -w apps/dashboard" (looked in ${file.dir}). /api/run, /metrics and /events work without it.`, extra, head);
    }
    if (file.kind === 'missing') return text(res, 404, `not found: ${path}`, extra, head);
    const cache = file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache';
    const csp: Record<string, string> = file.type.startsWith('text/html') ? { 'Content-Security-Policy': PAGE_CSP } : {};
    send(res, 200, file.type, file.body, { 'Cache-Control': cache, ...csp, ...extra }, head);
  }
}
