import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Name of the cookie the HTTP handler sets after a `?token=` login, so the page's assets load. */
export const TOKEN_COOKIE = 'dptrain_token';

/** Where a request's credential came from (`null`: none given). */
export type TokenSource = 'header' | 'query' | 'cookie' | null;

/** Constant-time string comparison (both sides hashed first, so lengths leak nothing). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The credential a request carries: `Authorization: Bearer T`, else `?token=T`, else the cookie. */
export function requestToken(req: IncomingMessage, url: URL): { token: string; source: TokenSource } {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return { token: m[1], source: 'header' };
  }
  const q = url.searchParams.get('token');
  if (q !== null) return { token: q, source: 'query' };
  const cookie = req.headers.cookie;
  if (typeof cookie === 'string') {
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
        try {
          return { token: decodeURIComponent(part.slice(eq + 1).trim()), source: 'cookie' };
        } catch {
          break;
        }
      }
    }
  }
  return { token: '', source: null };
}

/**
 * Whether the request is authorized: always when no token is configured, otherwise when it
 * carries the token (header, query or cookie). Returns the source it was found in.
 */
export function checkToken(req: IncomingMessage, url: URL, token: string | undefined): { ok: boolean; source: TokenSource } {
  if (token === undefined || token === '') return { ok: true, source: null };
  const got = requestToken(req, url);
  if (got.source === null) return { ok: false, source: null };
  return { ok: tokensEqual(got.token, token), source: got.source };
}

/** Parse a request's URL against a dummy origin (the Host header is not trusted). */
export function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return new URL('http://localhost/');
  }
}
