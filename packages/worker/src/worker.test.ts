import { afterEach, expect, test } from 'vitest';
import { LeafComputer, alignedNodes, blobs, fingerprint, initParams, leafCount, paramLayout, runSeeds, splitDataset, validateModelSpec } from '@dptrain/core';
import { Worker, type WorkerOptions } from './worker.js';
import { encode, type MessageInit } from '@dptrain/protocol';
import { type FakeConn, FakeCoordinator } from './testing/fake-coordinator.js';

// ---------------------------------------------------------------------------------------

const spec = validateModelSpec({ inputSize: 3, layers: [{ units: 8, activation: 'tanh', dropout: 0.25 }, { units: 4, activation: 'softmax' }], loss: 'softmax_cross_entropy' });
const P = paramLayout(spec).total;
const split = splitDataset(blobs(200, { seed: 5, centers: 4, dims: 3 }), { testCount: 40 });
const otherSplit = splitDataset(blobs(200, { seed: 6, centers: 4, dims: 3 }), { testCount: 40 });
const seed = 11;
const leafSize = 16;

function welcome(fp = fingerprint(split.train)): MessageInit {
  return { type: 'welcome', workerId: 'w1', runId: 'run-1', model: spec, data: 'blobs-test', fingerprint: fp, run: { seed, leafSize, kernel: 'js', dropout: true }, paramCount: P };
}

const servers: FakeCoordinator[] = [];
const workers: Worker[] = [];
async function server(port = 0): Promise<FakeCoordinator> {
  const s = await FakeCoordinator.listen(port);
  s.paramCount = P;
  servers.push(s);
  return s;
}
function worker(url: string, over: Partial<WorkerOptions> = {}): Worker {
  const w = new Worker({ url, name: 'test-worker', loadData: async () => split, reconnect: { initialMs: 20, maxMs: 50, maxAttempts: 3 }, ...over });
  workers.push(w);
  return w;
}
afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const s of servers.splice(0)) await s.kill().catch(() => {});
});

async function handshake(conn: FakeConn, fp?: string): Promise<void> {
  const hello = await conn.next();
  expect(hello.type).toBe('hello');
  conn.send(welcome(fp));
}

test('handshake: hello names the worker, ready carries the fingerprint of the train split', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  const conn = await s.accept();
  const hello = await conn.next();
  expect(hello).toMatchObject({ type: 'hello', workerName: 'test-worker', pid: process.pid });
  expect((hello as { kernels: string[] }).kernels).toContain('js');
  conn.send(welcome());
  const ready = await conn.next();
  expect(ready).toMatchObject({ type: 'ready', fingerprint: fingerprint(split.train) });
  // heartbeats are answered
  conn.send({ type: 'heartbeat', t: Date.now() });
  expect((await conn.next({ heartbeats: true })).type).toBe('heartbeat');
  conn.send({ type: 'bye', reason: 'run finished' });
  conn.ws.close(4004, 'run finished');
  const summary = await done;
  expect(summary).toMatchObject({ reason: 'run finished', workerId: 'w1', runId: 'run-1', tasks: 0, connections: 1 });
});

test('a task gives one result per canonical node, bit-identical to core LeafComputer', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  const conn = await s.accept();
  await handshake(conn);
  expect((await conn.next()).type).toBe('ready');

  const params = initParams(spec, 3);
  const B = 70; // 5 leaves: 16,16,16,16,6
  const L = leafCount(B, leafSize);
  const batch = new Int32Array(B).map((_, i) => (i * 37) % split.train.n);
  const step = 4;
  const [lo, hi] = [1, 5];
  conn.send({ type: 'params', version: 7, data: params });
  conn.send({ type: 'task', step, version: 7, epoch: 0, leafLo: lo, leafHi: hi, leafCount: L, batchSize: B, indices: batch.slice(lo * leafSize, B) });

  const ref = new LeafComputer(spec, split.train, { leafSize, seed: runSeeds(seed).dropout });
  ref.setParams(params);
  const nodes = alignedNodes(lo, hi, L);
  expect(nodes).toEqual([{ lo: 1, size: 1 }, { lo: 2, size: 2 }, { lo: 4, size: 4 }]);
  for (const node of nodes) {
    const r = await conn.next();
    if (r.type !== 'result') throw new Error(`expected a result, got ${r.type}`);
    const want = new Float32Array(P);
    const st = ref.computeNode({ step, leafCount: L, batchSize: B, indices: batch.slice(lo * leafSize), indexBase: lo }, node, want);
    expect({ step: r.step, nodeLo: r.nodeLo, nodeSize: r.nodeSize, samples: r.samples, lossSum: r.lossSum, correct: r.correct }).toEqual({ step, nodeLo: node.lo, nodeSize: node.size, ...st });
    expect(Buffer.from(r.grad.buffer, r.grad.byteOffset, r.grad.byteLength).equals(Buffer.from(want.buffer))).toBe(true);
  }
  // a task for a version the worker lacks is a clear error
  conn.send({ type: 'task', step: 5, version: 8, epoch: 0, leafLo: 0, leafHi: 1, leafCount: L, batchSize: B, indices: batch.slice(0, leafSize) });
  const err = await conn.next();
  expect(err).toMatchObject({ type: 'error', code: 'E_STATE', fatal: true });
  expect((err as { message: string }).message).toMatch(/version 8.*holds 7/);
  await expect(done).rejects.toMatchObject({ code: 'E_STATE' });
});

test('parameters holding NaN are refused with E_NONFINITE naming the index, and nothing is computed with them', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  done.catch(() => {});
  const conn = await s.accept();
  await handshake(conn);
  expect((await conn.next()).type).toBe('ready');
  const params = initParams(spec, 3);
  params[5] = Number.NaN;
  conn.send({ type: 'params', version: 1, data: params });
  conn.send({ type: 'task', step: 1, version: 1, epoch: 0, leafLo: 0, leafHi: 1, leafCount: 1, batchSize: 16, indices: new Int32Array(16) });
  const err = await conn.next();
  expect(err).toMatchObject({ type: 'error', code: 'E_NONFINITE', fatal: true });
  expect((err as { message: string }).message).toMatch(/params\.data\[5\] is NaN/);
  expect((await conn.closed).code).toBeGreaterThanOrEqual(4000);
  await expect(done).rejects.toMatchObject({ code: 'E_NONFINITE' });
});

test('fingerprint mismatch: an E_DATA_MISMATCH error naming both fingerprints, close 4002, rejection', async () => {
  const s = await server();
  const w = worker(s.url, { loadData: async () => otherSplit });
  const done = w.start();
  done.catch(() => {});
  const conn = await s.accept();
  await handshake(conn);
  const err = await conn.next();
  const mine = fingerprint(otherSplit.train);
  const theirs = fingerprint(split.train);
  expect(err).toMatchObject({ type: 'error', code: 'E_DATA_MISMATCH', fatal: true });
  const text = (err as { message: string }).message;
  expect(text).toContain(mine);
  expect(text).toContain(theirs);
  expect(text).toContain('blobs-test');
  expect((await conn.closed).code).toBe(4002);
  await expect(done).rejects.toMatchObject({ code: 'E_DATA_MISMATCH', closeCode: 4002, message: expect.stringContaining(mine) });
});

test('a fatal close from the coordinator rejects with its code and message', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  done.catch(() => {});
  const conn = await s.accept();
  await conn.next();
  conn.send({ type: 'error', code: 'E_AUTH', message: 'wrong token', fatal: true });
  conn.ws.close(4003, 'auth failed');
  await expect(done).rejects.toMatchObject({ code: 'E_AUTH', closeCode: 4003, message: expect.stringContaining('wrong token') });
});

test('a coordinator speaking another protocol version is refused with E_VERSION', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  done.catch(() => {});
  const conn = await s.accept();
  await conn.next();
  const frame = encode({ type: 'bye', reason: 'x' });
  // rewrite the header's v: 1 into v: 2 (msgpack: a2 'v' 01)
  const at = Buffer.from(frame).indexOf(Buffer.from([0xa1, 0x76, 0x01]));
  expect(at).toBeGreaterThan(0);
  frame[at + 2] = 2;
  conn.ws.send(frame);
  const err = await conn.next();
  expect(err).toMatchObject({ type: 'error', code: 'E_VERSION' });
  expect((await conn.closed).code).toBe(4001);
  await expect(done).rejects.toMatchObject({ code: 'E_VERSION', message: expect.stringMatching(/v2.*v1/) });
});

test('reconnects after the coordinator restarts, reusing its loaded data', async () => {
  let loads = 0;
  const s1 = await server();
  const port = s1.port;
  const w = worker(s1.url, { loadData: async () => (loads++, split) });
  const done = w.start();
  const c1 = await s1.accept();
  await handshake(c1);
  expect((await c1.next()).type).toBe('ready');
  await s1.kill();
  const s2 = await server(port);
  const c2 = await s2.accept();
  const hello = await c2.next();
  expect(hello).toMatchObject({ type: 'hello', resumeId: 'w1' });
  c2.send(welcome());
  expect((await c2.next()).type).toBe('ready');
  c2.ws.close(4004, 'run finished');
  expect(await done).toMatchObject({ reason: 'run finished', connections: 2 });
  expect(loads).toBe(1);
});

test('gives up after maxAttempts when no coordinator answers', async () => {
  const s = await server();
  const url = s.url;
  await s.kill();
  const logs: string[] = [];
  const w = worker(url, { reconnect: { initialMs: 5, maxMs: 10, maxAttempts: 2 }, log: (l) => logs.push(l) });
  await expect(w.start()).rejects.toMatchObject({ code: 'E_CONNECTION', message: expect.stringContaining('2 reconnect attempt') });
  expect(logs.filter((l) => l.includes('retry'))).toHaveLength(2);
});

test('a coordinator that never answered is "cannot reach" with the next attempt, not a lost connection', async () => {
  // a port nothing listens on: bind one, note it, close it
  const s = await server();
  const url = s.url;
  await s.kill();
  const logs: string[] = [];
  const w = worker(url, { reconnect: { initialMs: 20, maxMs: 40, maxAttempts: 2 }, log: (l) => logs.push(l) });
  const t0 = Date.now();
  await expect(w.start()).rejects.toMatchObject({ code: 'E_CONNECTION', message: expect.stringMatching(/^cannot reach the coordinator at ws:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\) and gave up after 2 reconnect attempt\(s\)$/) });
  expect(Date.now() - t0).toBeLessThan(5000);
  const retries = logs.filter((l) => l.includes('retry'));
  expect(retries).toHaveLength(2);
  for (const [i, l] of retries.entries()) expect(l).toMatch(new RegExp(`^cannot reach ws://127\\.0\\.0\\.1:\\d+ \\(.*ECONNREFUSED.*\\); next attempt in \\d+ ms \\(retry ${i + 1} of 2; the wait doubles up to 40 ms\\)$`));
  expect(logs.some((l) => l.includes('lost'))).toBe(false);
});

test('close() says bye and resolves start(); calling it twice is harmless', async () => {
  const s = await server();
  const w = worker(s.url);
  const done = w.start();
  const conn = await s.accept();
  await conn.next();
  w.close();
  w.close();
  expect(await conn.next()).toMatchObject({ type: 'bye' });
  expect(await done).toMatchObject({ reason: 'closed' });
});

test('messages that come while the welcome loads its data are handled after it, in order; later ones as they come', async () => {
  let loaded!: () => void;
  const loading = new Promise<void>((resolve) => (loaded = resolve));
  const s = await server();
  const w = worker(s.url, { loadData: async () => (await loading, split) });
  const done = w.start();
  const conn = await s.accept();
  await handshake(conn);

  const B = 64;
  const L = leafCount(B, leafSize);
  const batch = new Int32Array(B).map((_, i) => (i * 29) % split.train.n);
  const versions = [initParams(spec, 1), initParams(spec, 2), initParams(spec, 3)];
  const task = (step: number, version: number): MessageInit => ({ type: 'task', step, version, epoch: 0, leafLo: 0, leafHi: 4, leafCount: L, batchSize: B, indices: batch });
  // params and tasks while the data is loading: a task handled before the welcome is done, or
  // before its params, would be an E_STATE error; params handled out of order, wrong bits
  conn.send({ type: 'params', version: 1, data: versions[0] });
  conn.send(task(4, 1));
  conn.send({ type: 'params', version: 2, data: versions[1] });
  conn.send(task(5, 2));
  // heartbeats are answered at once: when the reply comes, every message above has arrived
  conn.send({ type: 'heartbeat', t: Date.now() });
  expect((await conn.next({ heartbeats: true })).type).toBe('heartbeat');
  loaded();
  expect((await conn.next()).type).toBe('ready');

  const ref = new LeafComputer(spec, split.train, { leafSize, seed: runSeeds(seed).dropout });
  const expectResult = async (step: number, params: Float32Array) => {
    const r = await conn.next();
    if (r.type !== 'result') throw new Error(`expected the result of step ${step}, got ${r.type}`);
    ref.setParams(params);
    const want = new Float32Array(P);
    ref.computeNode({ step, leafCount: L, batchSize: B, indices: batch, indexBase: 0 }, { lo: 0, size: 4 }, want);
    expect(r.step).toBe(step);
    expect(Buffer.from(r.grad.buffer, r.grad.byteOffset, r.grad.byteLength).equals(Buffer.from(want.buffer)), `gradient of step ${step}`).toBe(true);
  };
  await expectResult(4, versions[0]);
  await expectResult(5, versions[1]);
  // nothing queued any more: the next messages are handled as they come
  conn.send({ type: 'params', version: 3, data: versions[2] });
  conn.send(task(6, 3));
  conn.send(task(7, 3));
  await expectResult(6, versions[2]);
  await expectResult(7, versions[2]);
  conn.ws.close(4004, 'run finished');
  expect(await done).toMatchObject({ reason: 'run finished', tasks: 4, results: 4 });
});
