import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { startObserverServer, type ObserverServer } from './observer-server.js';
import { syntheticRun } from './synthetic-run.js';

interface PromFamily { name: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] }
const parse = parsePrometheus as unknown as (text: string) => PromFamily[];

/** name{labels} → value for every counter sample of a scrape. */
function counters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of parse(text)) {
    if (f.type !== 'COUNTER') continue;
    for (const m of f.metrics) out.set(`${f.name}${JSON.stringify(m.labels ?? {})}`, Number(m.value));
  }
  return out;
}
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = parse(text).find((x) => x.name === name);
  const m = f?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  return m ? Number(m.value) : undefined;
}

/** Raw request (no URL normalisation, any method). */
function raw(url: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let srv: ObserverServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function fakeDist(): string {
  dir = mkdtempSync(join(tmpdir(), 'dptrain-dist-'));
  mkdirSync(join(dir, 'dist', 'assets'), { recursive: true });
  writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><title>dptrain</title>');
  writeFileSync(join(dir, 'dist', 'assets', 'app-1234.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'do not serve');
  return join(dir, 'dist');
}

describe('createHttpHandler', () => {
  it('serves /metrics whose counters only grow and track the events fed', async () => {
    srv = await startObserverServer({ staticDir: fakeDist() });
    const events = syntheticRun({ steps: 40, deathAt: 20 });
    const half = events.findIndex((e) => e.kind === 'step' && e.step === 21);
    for (const e of events.slice(0, half)) srv.hub.emit(e);
    const r1 = await raw(srv.url, '/metrics');
    expect(r1.status).toBe(200);
    expect(r1.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const e of events.slice(half)) srv.hub.emit(e);
    const scrape2 = await raw(srv.url, '/metrics');
    expect(scrape2.status).toBe(200);
    const r2 = scrape2.body;

    expect(sample(r1.body, 'dptrain_steps_total')).toBe(20);
    expect(sample(r2, 'dptrain_steps_total')).toBe(40);
    expect(sample(r2, 'dptrain_samples_total')).toBe(40 * 128);
    expect(sample(r2, 'dptrain_reassignments_total')).toBe(1);
    expect(sample(r2, 'dptrain_errors_total', { code: 'E_WORKER_LOST' })).toBe(1);
    expect(sample(r2, 'dptrain_workers', { state: 'dead' })).toBe(1);
    expect(sample(r2, 'dptrain_workers', { state: 'busy' })).toBe(2);
    const last = [...events].reverse().find((e) => e.kind === 'step');
    expect(sample(r2, 'dptrain_train_loss')).toBeCloseTo(last?.kind === 'step' ? (last.loss as number) : NaN, 9);
    expect(sample(r2, 'dptrain_step_phase_seconds', { phase: 'compute' })).toBeGreaterThan(0);
    // the dead worker's bytes stop growing but stay counted; the live ones grow
    expect(sample(r2, 'dptrain_worker_bytes_total', { worker: 'w3', direction: 'in' })).toBe(sample(r1.body, 'dptrain_worker_bytes_total', { worker: 'w3', direction: 'in' }));
    expect(sample(r2, 'dptrain_worker_bytes_total', { worker: 'w1', direction: 'out' })).toBe(40 * 5000);
    expect(sample(r2, 'dptrain_worker_compute_seconds', { worker: 'w3' })).toBeUndefined();

    const c1 = counters(r1.body);
    const c2 = counters(r2);
    expect(c1.size).toBeGreaterThan(5);
    for (const [k, v] of c1) expect(c2.get(k), k).toBeGreaterThanOrEqual(v);
  });

  it('serves /api/run as JSON, the dashboard files, and 404/405/503', async () => {
    srv = await startObserverServer({ staticDir: fakeDist(), api: { '/api/extra': () => ({ x: NaN, v: new Float32Array([0.5, 2]) }) } });
    for (const e of syntheticRun({ steps: 3 }).slice(0, 2)) srv.hub.emit(e);
    expect(await (await fetch(srv.url + '/api/extra')).json()).toEqual({ x: null, v: [0.5, 2] });
    expect((await raw(srv.url, '/api/other')).status).toBe(404);
    const run = await fetch(srv.url + '/api/run');
    expect(run.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await run.json()).toEqual({ runId: 'synthetic-0001', events: 2 });
    const index = await raw(srv.url, '/');
    expect([index.status, index.body]).toEqual([200, '<!doctype html><title>dptrain</title>']);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['content-security-policy']).toContain("default-src 'self'");
    const asset = await raw(srv.url, '/assets/app-1234.js');
    expect([asset.status, asset.headers['content-type'], asset.headers['cache-control']]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    expect((await raw(srv.url, '/nope')).status).toBe(404);
    expect((await raw(srv.url, '/../secret.txt')).status).toBe(404);
    expect((await raw(srv.url, '/%2e%2e/secret.txt')).status).toBe(404);
    expect((await raw(srv.url, '/assets/%2e%2e%2f..%2fsecret.txt')).status).toBe(404);
    const post = await raw(srv.url, '/metrics', 'POST');
    expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD']);
    expect((await raw(srv.url, '/api/run', 'DELETE')).status).toBe(405);
    const headReq = await raw(srv.url, '/api/run', 'HEAD');
    expect([headReq.status, headReq.body]).toEqual([200, '']);
    await srv.close();

    srv = await startObserverServer({ staticDir: join(tmpdir(), 'dptrain-no-such-dir') });
    const missing = await raw(srv.url, '/');
    expect(missing.status).toBe(503);
    expect(missing.body).toContain('npm run build -w apps/dashboard');
    expect((await raw(srv.url, '/metrics')).status).toBe(200);
  });

  it('requires the token when one is set, by header, query or the cookie a query login sets', async () => {
    srv = await startObserverServer({ staticDir: fakeDist(), token: 's3cret' });
    for (const p of ['/', '/api/run', '/metrics', '/assets/app-1234.js', '/nope']) {
      const r = await raw(srv.url, p);
      expect(r.status, p).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    expect((await raw(srv.url, '/metrics', 'GET', { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await raw(srv.url, '/metrics?token=s3cre')).status).toBe(401);
    expect((await raw(srv.url, '/metrics', 'GET', { Authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await raw(srv.url, '/api/run', 'GET', { Authorization: 'bearer s3cret' })).status).toBe(200);
    const login = await raw(srv.url, '/?token=s3cret');
    expect(login.status).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    expect(cookie).toBe('dptrain_token=s3cret');
    expect(String(login.headers['set-cookie'])).toMatch(/HttpOnly/);
    expect((await raw(srv.url, '/assets/app-1234.js', 'GET', { Cookie: cookie })).status).toBe(200);
    expect((await raw(srv.url, '/assets/app-1234.js', 'GET', { Cookie: 'dptrain_token=nope' })).status).toBe(401);
    expect((await raw(srv.url, '/nope?token=s3cret')).status).toBe(404);
  });
});
