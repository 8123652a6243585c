import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Location of the built dashboard (apps/dashboard/dist). This file sits at
 * packages/coordinator/{src,dist}/http/, so the repository root is four levels up; as a
 * fallback the workspace package `@dptrain/dashboard` is resolved through node_modules.
 */
export function defaultDashboardDir(): string {
  const relative = fileURLToPath(new URL('../../../../apps/dashboard/dist/', import.meta.url));
  if (existsSync(join(relative, 'index.html'))) return relative;
  try {
    const pkg = createRequire(import.meta.url).resolve('@dptrain/dashboard/package.json');
    const viaPkg = join(dirname(pkg), 'dist');
    if (existsSync(join(viaPkg, 'index.html'))) return viaPkg;
  } catch {
    // not installed as a package: keep the relative guess
  }
  return relative;
}

/** A file to send, or why not. */
export type StaticResult =
  | { kind: 'file'; body: Buffer; type: string; immutable: boolean }
  | { kind: 'missing' }
  | { kind: 'not_built'; dir: string };

/**
 * Look up `pathname` under `dir` ('/' → index.html). Refuses anything that would leave
 * `dir` (.., encoded slashes, NUL) by answering 'missing'.
 */
export function readStatic(dir: string, pathname: string): StaticResult {
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) return { kind: 'not_built', dir: root };
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return { kind: 'missing' };
  }
  if (rel.includes('\0') || rel.includes('\\')) return { kind: 'missing' };
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = resolve(root, '.' + rel);
  if (!file.startsWith(root + sep)) return { kind: 'missing' };
  try {
    if (!statSync(file).isFile()) return { kind: 'missing' };
    const body = readFileSync(file);
    const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    // Vite puts content-hashed files under assets/: safe to cache forever.
    const immutable = rel.startsWith('/assets/');
    return { kind: 'file', body, type, immutable };
  } catch {
    return { kind: 'missing' };
  }
}
