import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type DatasetSplit, type RunConfig, blobs, fingerprint, splitDataset, train, validateRunConfig } from '@dptrain/core';
import { type ErrorMessage, decode, encode, exampleMessages, maxFrameBytes } from '@dptrain/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { CoordinatorOptions } from './options.js';
import { Coordinator } from './server.js';
import { FakeWorker, until, within } from './testing/fake-worker.js';

const data: DatasetSplit = splitDataset(blobs(120, { seed: 8, centers: 3 }), { testCount: 20 });
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 5, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:120',
  optimizer: { name: 'sgd', lr: 0.1 },
  batchSize: 16,
  leafSize: 4,
  steps: 6,
  seed: 2,
});
const PARAMS = 2 * 5 + 5 + 5 * 3 + 3;
const FP = fingerprint(data.train);
const hello = (over: Record<string, unknown> = {}) => encode({ type: 'hello', workerName: 'x', host: 'h', pid: 1, kernels: ['js'], ...over });
const ready = () => encode({ type: 'ready', fingerprint: FP, loadMs: 1 });
const result = () => encode({ type: 'result', step: 0, nodeLo: 0, nodeSize: 1, samples: 4, lossSum: 1, correct: 1, computeMs: 1, grad: new Float32Array(PARAMS) });

interface RawEnd {
  code: number;
  errors: ErrorMessage[];
  types: string[];
}

/** Connect, send `frames` one by one (each after the previous reply when `paced`), collect what comes back until the close. */
function raw(url: string, frames: Array<Uint8Array | string>, opts: { headers?: Record<string, string>; ca?: string } = {}): Promise<RawEnd> {
  const ws = new WebSocket(url, { headers: opts.headers, ca: opts.ca });
  const out: RawEnd = { code: 0, errors: [], types: [] };
  return within(
    new Promise<RawEnd>((resolve, reject) => {
      ws.on('open', () => {
        for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
      });
      ws.on('message', (b: Buffer) => {
        const m = decode(b);
        out.types.push(m.type);
        if (m.type === 'error') out.errors.push(m);
      });
      ws.on('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.on('error', () => {});
      ws.on('close', (code: number) => resolve({ ...out, code }));
    }),
    5000,
    'raw client closed',
  );
}

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

async function coordinator(over: Partial<CoordinatorOptions> = {}): Promise<{ c: Coordinator; url: string; port: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'dptrain-hostile-'));
  const c = new Coordinator({ config, data, checkpointDir: dir, minWorkers: 3, observer: false, ...over });
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  cleanup.push(() => c.close());
  const { url, port } = await c.start();
  return { c, url, port };
}

describe('hostile input', () => {
  it('refuses messages out of order and coordinator-only types with E_STATE / E_TYPE and close 4000, and counts them', async () => {
    const { c, url } = await coordinator();
    const cases: Array<[string, Array<Uint8Array | string>, string, string]> = [
      ['result before hello', [result()], 'E_STATE', "'result' is not expected now (session is at 'hello')"],
      ['heartbeat before hello', [encode({ type: 'heartbeat', t: 1 })], 'E_STATE', "'heartbeat' is not expected now (session is at 'hello')"],
      ['hello twice', [hello(), hello()], 'E_STATE', "'hello' is not expected now (session is at 'loading')"],
      ['result before ready', [hello(), result()], 'E_STATE', "'result' is not expected now (session is at 'loading')"],
      ['ready twice', [hello(), ready(), ready()], 'E_STATE', "'ready' is not expected now (session is at 'ready')"],
      ['params from a worker', [encode(exampleMessages().params)], 'E_TYPE', "message type 'params' is not accepted from this peer"],
      ['task from a worker', [hello(), encode(exampleMessages().task)], 'E_TYPE', "message type 'task' is not accepted from this peer"],
      ['a text frame', ['{"type":"hello"}'], 'E_DECODE', 'text frames are not accepted: dptrain frames are binary'],
      ['a result of the wrong length', [hello(), ready(), encode({ ...exampleMessages().result, v: undefined })], 'E_LENGTH', ''],
    ];
    for (const [what, frames, code, message] of cases) {
      const e = await raw(url, frames);
      expect([what, e.code, e.errors.map((x) => x.code)]).toEqual([what, 4000, [code]]);
      if (message) expect(e.errors[0].message).toBe(message);
    }
    const bad = c.stats().badFrames;
    expect(bad).toEqual({ E_STATE: 5, E_TYPE: 2, E_DECODE: 1, E_LENGTH: 1 });
    expect(c.stats().step).toBe(0);
  });

  it('refuses a frame one byte over maxFrameBytes with close 1009 before reading it, and accepts the limit itself', async () => {
    const { c, url } = await coordinator();
    const limit = maxFrameBytes(PARAMS, 0);
    const over = await raw(url, [new Uint8Array(limit + 1)]);
    expect(over.code).toBe(1009);
    expect(c.stats().badFrames.E_TOO_LARGE).toBe(1);
    const at = await raw(url, [new Uint8Array(limit)]);
    expect(at.code).toBe(4000); // read, then refused as not a dptrain frame
    expect(at.errors[0].code).toBe('E_DECODE');
  });

  it('closes a connection that floods frames (1008, E_RATE) and refuses connections beyond maxConnections (503)', async () => {
    const { c, url } = await coordinator({ maxFramesPerSec: 20, maxConnections: 2 });
    const beats = Array.from({ length: 40 }, () => encode({ type: 'heartbeat', t: 1 }));
    const flood = await raw(url, [hello(), ...beats]);
    expect(flood.code).toBe(1008);
    expect(flood.errors[0]).toMatchObject({ code: 'E_RATE', message: 'more than 20 frames per second' });
    expect(c.stats().badFrames.E_RATE).toBe(1);
    expect(c.stats().framesIgnored).toBeGreaterThan(0);
    const held = [new WebSocket(url), new WebSocket(url)];
    await Promise.all(held.map((w) => new Promise((r) => w.once('open', r))));
    await expect(raw(url, [hello()])).rejects.toThrow('HTTP 503');
    for (const w of held) w.close();
    await Promise.all(held.map((w) => new Promise((r) => w.once('close', r))));
  });

  it('drops a connection that never says hello', async () => {
    const { c, url } = await coordinator({ heartbeatMs: 20 });
    const e = await raw(url, []);
    expect(e.code).toBe(4000);
    expect(e.errors[0]).toMatchObject({ code: 'E_TIMEOUT', message: 'no hello within 100 ms of connecting' });
    expect(c.stats().badFrames.E_TIMEOUT).toBe(1);
  });
});

describe('authentication', () => {
  it('refuses a missing or wrong token with E_AUTH and close 4003, accepts the right one, and guards the HTTP endpoints', async () => {
    const dash = await mkdtemp(join(tmpdir(), 'dptrain-dash-'));
    cleanup.push(() => rm(dash, { recursive: true, force: true }));
    await writeFile(join(dash, 'index.html'), '<!doctype html><title>dash</title>');
    const { c, url, port } = await coordinator({ token: 's3cret', observer: true, dashboardDir: dash });
    const none = await raw(url, [hello()]);
    expect([none.code, none.errors[0].code]).toEqual([4003, 'E_AUTH']);
    expect(none.errors[0].message).toBe("authentication failed: this coordinator requires a token and the hello carried none; pass the run's token (--token or DPTRAIN_TOKEN)");
    const wrong = await raw(url, [hello({ token: 's3creT' })]);
    expect([wrong.code, wrong.errors[0].message]).toEqual([4003, "authentication failed: wrong token; pass the run's token (--token or DPTRAIN_TOKEN)"]);
    expect(c.stats().badFrames.E_AUTH).toBe(2);
    const w = new FakeWorker({ url, name: 'good', train: data.train, token: 's3cret' });
    await until(() => w.workerId !== undefined, 5000, 'worker welcomed');
    expect(c.history.filter((e) => e.kind === 'worker_joined').map((e) => (e as { workerId: string }).workerId)).toEqual([w.workerId]);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/api/run`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const info = (await (await fetch(`${base}/api/run`, { headers: { Authorization: 'Bearer s3cret' } })).json()) as { runId: string };
    expect(info.runId).toBe(c.runId);
    expect((await fetch(`${base}/`)).status).toBe(401);
    const page = await fetch(`${base}/?token=s3cret`);
    expect([page.status, await page.text()]).toEqual([200, '<!doctype html><title>dash</title>']);
    const metrics = await (await fetch(`${base}/metrics?token=s3cret`)).text();
    expect(metrics).toContain(`dptrain_run_info{run_id="${c.runId}"} 1`);
    await expect(raw(`ws://127.0.0.1:${port}/events`, [])).rejects.toThrow('HTTP 401');
    const events = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/events`, { headers: { Authorization: 'Bearer s3cret' } });
      ws.once('message', (d) => {
        resolve(String(d));
        ws.close();
      });
      ws.once('error', reject);
    });
    expect(JSON.parse(events)[0]).toMatchObject({ kind: 'run_started', runId: c.runId });
    w.ws.close();
  });

  it('needs a token to listen beyond loopback unless allowInsecure', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dptrain-hostile-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const open = new Coordinator({ config, data, checkpointDir: dir, host: '0.0.0.0', observer: false });
    cleanup.push(() => open.close());
    const err = await open.start().then(() => undefined, (e: unknown) => e as ConfigError);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toBe('token: required when host is not loopback (got 0.0.0.0); pass --token or set DPTRAIN_TOKEN');
    const insecure = new Coordinator({ config, data, checkpointDir: dir, host: '0.0.0.0', allowInsecure: true, observer: false });
    cleanup.push(() => insecure.close());
    expect((await insecure.start()).url).toMatch(/^ws:\/\/0\.0\.0\.0:\d+\/$/);
    expect(() => new Coordinator({ config, data, checkpointDir: dir, token: '' })).toThrow('token: expected a non-empty string');
    expect(() => new Coordinator({ config, data, checkpointDir: dir, periodicEvaluation: 1 as never })).toThrow('periodicEvaluation: expected true or false, got 1');
  });
});

describe('TLS', () => {
  let pem: { cert: string; key: string };
  let tlsDir: string;
  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'dptrain-tls-'));
    const [cert, key] = [join(tlsDir, 'cert.pem'), join(tlsDir, 'key.pem')];
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'pipe', timeout: 10_000 });
    } catch (e) {
      throw new Error(`the TLS test makes a self-signed certificate with the openssl command line tool, which failed or is missing: ${(e as Error).message}`);
    }
    pem = { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  });
  afterAll(async () => {
    await rm(tlsDir, { recursive: true, force: true });
  });

  it('serves wss:// and https:// with the given certificate; a worker trusting it trains to the same bits', async () => {
    const { c, url, port } = await coordinator({ tls: pem, minWorkers: 2, token: 't', observer: true });
    expect(url).toBe(`wss://127.0.0.1:${port}/`);
    const workers = ['a', 'b'].map((name) => new FakeWorker({ url, name, train: data.train, ca: pem.cert, token: 't' }));
    const summary = await within(c.done(), 20_000, 'run over TLS finished');
    const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 16, leafSize: 4, steps: 6, seed: 2, shuffle: true });
    expect(Array.from(summary.params)).toEqual(Array.from(ref.params));
    for (const w of workers) expect((await within(w.ended, 5000, 'worker closed')).code).toBe(4004);
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet(`https://127.0.0.1:${port}/api/run`, { ca: pem.cert, headers: { Authorization: 'Bearer t' } }, (res) => {
        let s = '';
        res.on('data', (d) => (s += d));
        res.on('end', () => resolve(s));
      }).on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ runId: c.runId, state: 'finished', step: 6 });
    // a client that does not trust the certificate cannot connect (TLS handshake fails: abnormal close, nothing received)
    expect(await raw(url, [hello({ token: 't' })])).toEqual({ code: 1006, errors: [], types: [] });
  });

  it('refuses a tls option that is not PEM', () => {
    expect(() => new Coordinator({ config, data, checkpointDir: '/tmp/x', tls: { cert: 'nope', key: 'nope' } })).toThrow(/^tls\.cert: expected PEM text/);
  });
});
