import type { IncomingMessage, ServerResponse } from 'node:http';

/** A GET route: returns a JSON-able value. */
export type JsonRoute = () => unknown;

/** Replace non-finite numbers by null (JSON has none) and typed arrays by plain arrays. */
function replacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return null;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  return v;
}

/**
 * Plain HTTP on the coordinator's port: GET of a known path answers its JSON, anything
 * else is 404 (or 405 for another method). WebSocket upgrades never reach this handler.
 */
export function httpHandler(routes: Record<string, JsonRoute>, log: (line: string) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = Object.prototype.hasOwnProperty.call(routes, path) ? routes[path] : undefined;
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body, replacer);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (!route) return reply(404, { error: 'E_NOT_FOUND', message: `no route ${path}; known: ${Object.keys(routes).join(', ')}` });
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'E_METHOD', message: `${req.method} ${path}: only GET is allowed` });
    try {
      reply(200, route());
    } catch (e) {
      log(`http ${path}: ${(e as Error)?.message ?? String(e)}`);
      reply(500, { error: 'E_INTERNAL', message: (e as Error)?.message ?? String(e) });
    }
  };
}
