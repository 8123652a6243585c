import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DatasetSplit, type RunConfig, alignedNodes, blobs, fingerprint, paramLayout, splitDataset, train, validateRunConfig } from '@dptrain/core';
import { type ErrorMessage, type Message, SHM_FILE_HEADER_BYTES, type ShmOffer, decode, encode, slotStride } from '@dptrain/protocol';
import { Worker, type WorkerOptions, type WorkerSummary } from '@dptrain/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Coordinator, type CoordinatorOptions, type CoordinatorStats } from '@dptrain/coordinator';
import { until } from './process-helpers.js';

// The shared-memory data plane end to end: a Coordinator and in-process Workers (or raw
// protocol clients) on loopback, slot files in a temp directory instead of /dev/shm.

const data: DatasetSplit = splitDataset(blobs(200, { seed: 3, centers: 3 }), { testCount: 40 });
// a wide hidden layer so a gradient (35 KB) dwarfs the small messages on the socket
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 128, activation: 'relu', dropout: 0.1 }, { units: 64, activation: 'tanh' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:200',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 16,
  leafSize: 8,
  steps: 8,
  seed: 5,
});
const STEPS = 8;
const P = paramLayout(config.model).total;
const FP = fingerprint(data.train);

/** Bit patterns of floats (so -0/+0 and NaN payloads count as different). */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
/** dptrain-* entries under an shm root. */
const hostDirs = (root: string) => readdirSync(root).filter((n) => n.startsWith('dptrain-'));

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

interface Started {
  c: Coordinator;
  url: string;
  /** The test's stand-in for /dev/shm. */
  shmRoot: string;
  logs: string[];
}

async function coordinator(over: Partial<CoordinatorOptions> = {}): Promise<Started> {
  const checkpointDir = mkdtempSync(join(tmpdir(), 'dpt-shm-ckpt-'));
  const shmRoot = mkdtempSync(join(tmpdir(), 'dpt-shm-root-'));
  const logs: string[] = [];
  const c = new Coordinator({ config, data, checkpointDir, shmDir: shmRoot, heartbeatMs: 200, observer: false, log: (l) => logs.push(l), ...over });
  cleanup.push(() => rmSync(checkpointDir, { recursive: true, force: true }));
  cleanup.push(() => rmSync(shmRoot, { recursive: true, force: true }));
  cleanup.push(() => c.close());
  const { url } = await c.start();
  return { c, url, shmRoot, logs };
}

function worker(url: string, name: string, over: Partial<WorkerOptions> = {}): { w: Worker; done: Promise<WorkerSummary> } {
  const w = new Worker({ url, name, loadData: async () => data, reconnect: { initialMs: 20, maxMs: 50, maxAttempts: 2 }, ...over });
  const done = w.start();
  done.catch(() => {});
  cleanup.push(() => w.close());
  return { w, done };
}

interface RunOut {
  params: Float32Array;
  /** stats() at the last step's event, while every worker is still connected. */
  atEnd: CoordinatorStats;
  /** stats() after close(). */
  after: CoordinatorStats;
  summaries: WorkerSummary[];
  shmRoot: string;
}

/** A whole run with these workers; checks that close() leaves no dptrain-* directory behind. */
async function run(workers: Array<Partial<WorkerOptions>>, over: Partial<CoordinatorOptions> = {}): Promise<RunOut> {
  const { c, url, shmRoot } = await coordinator({ minWorkers: workers.length, ...over });
  let atEnd: CoordinatorStats | undefined;
  c.onEvent((e) => {
    if (e.kind === 'step' && e.step === STEPS) atEnd = c.stats();
  });
  const ws = workers.map((o, i) => worker(url, `w-${i}`, o));
  const summary = await within(c.done(), 20_000, 'run finished');
  const summaries = await within(Promise.all(ws.map((w) => w.done)), 5000, 'workers finished');
  await c.close();
  expect(hostDirs(shmRoot)).toEqual([]);
  return { params: summary.params, atEnd: atEnd!, after: c.stats(), summaries, shmRoot };
}

let single: Promise<RunOut> | undefined;
/** The 1-worker run (shared memory on), once per file. */
const oneWorker = () => (single ??= run([{}]));
const reference = () => train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 16, leafSize: 8, steps: STEPS, seed: 5, shuffle: true });

describe('runs through shared memory', () => {
  it('2 workers with shm, 2 without, and 1 alone end with bit-identical weights; shm moves the gradients off the socket', async () => {
    const one = await oneWorker();
    const shm = await run([{}, {}]);
    const sock = await run([{}, {}], { sharedMemory: false });
    expect(bits(shm.params)).toEqual(bits(one.params));
    expect(bits(sock.params)).toEqual(bits(one.params));
    expect(bits(one.params)).toEqual(bits(reference().params));

    // with shm: every worker took it, gradients came through the files, the socket carried only small messages
    const s = shm.atEnd;
    expect(s.workers.map((w) => w.shm)).toEqual([true, true]);
    expect(s.shmBytesIn).toBeGreaterThanOrEqual(STEPS * P * 4);
    expect(s.shmBytesIn % (P * 4)).toBe(0);
    expect(s.shmBytesOut).toBeGreaterThanOrEqual(STEPS * P * 4);
    expect(s.bytesIn).toBeGreaterThan(0);
    expect(s.bytesIn * 20).toBeLessThan(s.shmBytesIn);
    expect(s.bytesOut * 20).toBeLessThan(s.shmBytesOut);
    for (const w of s.workers) expect(w.shmBytesIn).toBeGreaterThan(0);
    expect(s.workers.reduce((n, w) => n + w.shmBytesIn, 0)).toBe(s.shmBytesIn);
    expect(one.atEnd.workers.map((w) => w.shm)).toEqual([true]);
    expect(one.atEnd.shmBytesIn).toBe(STEPS * P * 4); // one node (the whole batch) per step
    // gradients are read from the files straight into the reduction pool's buffers, which
    // are reused: a step's worth (two results and their sum), however many steps ran
    expect(s.reductionBuffers).toBeGreaterThan(0);
    expect(s.reductionBuffers).toBeLessThanOrEqual(3);

    // without: nothing through shared memory, the gradients on the socket
    const t = sock.atEnd;
    expect(t.workers.map((w) => w.shm)).toEqual([false, false]);
    expect([t.shmBytesIn, t.shmBytesOut]).toEqual([0, 0]);
    expect(t.bytesIn).toBeGreaterThanOrEqual(STEPS * P * 4);
    // the byte counts stay in stats() after the run
    expect(shm.after.shmBytesIn).toBe(s.shmBytesIn);
  });

  it('a worker constructed with sharedMemory: false uses the socket next to one on shared memory, to the same weights', async () => {
    const one = await oneWorker();
    const out = await run([{ sharedMemory: false }, {}]);
    expect(bits(out.params)).toEqual(bits(one.params));
    const [plainId, shmId] = out.summaries.map((x) => x.workerId);
    const byId = new Map(out.atEnd.workers.map((w) => [w.id, w]));
    const plain = byId.get(plainId!)!;
    const shm = byId.get(shmId!)!;
    expect([plain.shm, shm.shm]).toEqual([false, true]);
    expect([plain.shmBytesIn, plain.shmBytesOut]).toEqual([0, 0]);
    expect(plain.bytesIn).toBeGreaterThanOrEqual(P * 4);
    expect(shm.shmBytesIn).toBeGreaterThanOrEqual(P * 4);
    expect(shm.bytesIn * 10).toBeLessThan(shm.shmBytesIn);
    for (const s of out.summaries) expect(s.results).toBeGreaterThan(0);
  });
});

interface RawEnd {
  code: number;
  errors: ErrorMessage[];
  types: string[];
  tasks: Message[];
  welcome?: ShmOffer;
}

/**
 * A raw protocol client: hello, ready (with `shm: true` if `takeOffer`, opening nothing), and
 * for its first task one result_ref naming slot 0 with seq 2, a slot it never wrote.
 */
function rawRefClient(url: string, takeOffer: boolean): Promise<RawEnd> {
  const ws = new WebSocket(url);
  const out: RawEnd = { code: 0, errors: [], types: [], tasks: [] };
  let answered = false;
  cleanup.push(() => ws.terminate());
  return within(
    new Promise<RawEnd>((resolve) => {
      ws.on('open', () => ws.send(encode({ type: 'hello', workerName: 'raw', host: 'test', pid: process.pid, kernels: ['js'] })));
      ws.on('message', (b: Buffer) => {
        const m: Message = decode(b);
        out.types.push(m.type);
        switch (m.type) {
          case 'welcome':
            out.welcome = m.shm;
            ws.send(encode({ type: 'ready', fingerprint: FP, loadMs: 1, ...(takeOffer ? { shm: true } : {}) }));
            break;
          case 'task': {
            out.tasks.push(m);
            if (answered) break;
            answered = true;
            const node = alignedNodes(m.leafLo, m.leafHi, m.leafCount)[0];
            ws.send(encode({ type: 'result_ref', step: m.step, nodeLo: node.lo, nodeSize: node.size, samples: 8, lossSum: 1, correct: 0, computeMs: 1, slot: 0, seq: 2 }));
            break;
          }
          case 'heartbeat':
            ws.send(encode({ type: 'heartbeat', t: Date.now() }));
            break;
          case 'error':
            out.errors.push(m);
            break;
        }
      });
      ws.on('error', () => {});
      ws.on('close', (code: number) => resolve({ ...out, code }));
    }),
    10_000,
    'raw client closed',
  );
}

describe('more results per task than result slots', () => {
  it('63 leaves of 1 over 2 workers (5 nodes for the first): the ring never overwrites an unread slot, the extra result goes as a frame; same bits, no E_SHM', async () => {
    const wide: RunConfig = validateRunConfig({ ...config, batchSize: 63, leafSize: 1 });
    const want = train({ spec: wide.model, data, optimizer: wide.optimizer, batchSize: 63, leafSize: 1, steps: STEPS, seed: 5, shuffle: true });
    const out = await run([{}, {}], { config: wide, balance: 'even' });
    expect(bits(out.params)).toEqual(bits(want.params));
    const s = out.atEnd;
    expect(s.badFrames.E_SHM).toBeUndefined();
    expect(s.workers.map((w) => w.shm)).toEqual([true, true]);
    expect(out.summaries.map((x) => x.connections)).toEqual([1, 1]);
    // 4 of worker 0's 5 results a step through its 4 slots, the fifth as a frame
    expect(s.shmBytesIn).toBeGreaterThanOrEqual(STEPS * 4 * P * 4);
    expect(s.bytesIn).toBeGreaterThanOrEqual(STEPS * P * 4);
  });
});

describe('hostile result_ref', () => {
  it('a result_ref naming a slot never written: E_SHM, close 4006, the run finishes on the other worker to the same bits', async () => {
    const one = await oneWorker();
    const { c, url, shmRoot, logs } = await coordinator({ minWorkers: 2 });
    const raw = rawRefClient(url, true);
    await until(() => c.stats().workers.some((w) => w.state !== 'loading'), () => 'raw client ready', 5000);
    const w = worker(url, 'good');
    const e = await raw;
    expect(e.welcome).toMatchObject({ resultSlots: expect.any(Number) });
    expect(e.welcome!.dir.startsWith(`${shmRoot}/dptrain-`)).toBe(true);
    // its params came by reference, with the task (no params frame, no separate params_ref)
    expect(e.tasks[0]).toMatchObject({ paramsRef: { slot: expect.any(Number), seq: expect.any(Number) } });
    expect(e.types).not.toContain('params');
    expect(e.types).not.toContain('params_ref');
    expect(e.code).toBe(4006);
    expect(e.errors.map((x) => x.code)).toEqual(['E_SHM']);
    expect(e.errors[0].message).toMatch(/slot 0 was never written/);
    expect(c.stats().badFrames.E_SHM).toBe(1);
    expect(logs.some((l) => l.includes('E_SHM') || /slot 0 was never written/.test(l))).toBe(true);

    const summary = await within(c.done(), 20_000, 'run finished after the raw client was closed');
    expect(bits(summary.params)).toEqual(bits(one.params));
    expect((await within(w.done, 5000, 'worker finished')).reason).toBe('run finished');
    expect(c.history.map((x) => x.kind)).toContain('reassigned');
    await c.close();
    expect(hostDirs(shmRoot)).toEqual([]);
  });

  it('a result_ref from a client that declined the offer: E_STATE, close 4000, the run finishes to the same bits', async () => {
    const one = await oneWorker();
    const { c, url, shmRoot } = await coordinator({ minWorkers: 2 });
    const raw = rawRefClient(url, false);
    await until(() => c.stats().workers.some((w) => w.state !== 'loading'), () => 'raw client ready', 5000);
    // declining the offer deletes the client's result file at once
    const dir = join(shmRoot, hostDirs(shmRoot)[0]);
    expect(readdirSync(dir).sort()).toEqual(['owner', 'params']);
    const w = worker(url, 'good');
    const e = await raw;
    expect(e.welcome).toBeDefined(); // it was offered
    expect(e.types).toContain('params');
    expect(e.types).not.toContain('params_ref');
    expect(e.code).toBe(4000);
    expect(e.errors.map((x) => x.code)).toEqual(['E_STATE']);
    expect(e.errors[0].message).toMatch(/did not take the shared-memory offer/);
    expect(c.stats().badFrames.E_STATE).toBe(1);
    expect(c.stats().badFrames.E_SHM).toBeUndefined();

    const summary = await within(c.done(), 20_000, 'run finished after the raw client was closed');
    expect(bits(summary.params)).toEqual(bits(one.params));
    expect((await within(w.done, 5000, 'worker finished')).reason).toBe('run finished');
    await c.close();
    expect(hostDirs(shmRoot)).toEqual([]);
  });
});

describe('slot files on disk', () => {
  it("a worker's result file (0600) is deleted when it leaves; the directory is deleted by close()", async () => {
    const { c, url, shmRoot } = await coordinator({ minWorkers: 3 });
    const a = worker(url, 'a');
    const b = worker(url, 'b');
    await until(() => c.stats().workers.filter((w) => w.shm).length === 2, () => 'two workers on shared memory', 5000);
    const names = hostDirs(shmRoot);
    expect(names.length).toBe(1);
    const dir = join(shmRoot, names[0]);
    const ids = c.stats().workers.map((w) => w.id);
    expect(readdirSync(dir).sort()).toEqual(['owner', 'params', ...ids.map((id) => `${id}.res`)].sort());
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);

    a.w.close('leaving');
    const aId = (await within(a.done, 5000, 'a closed')).workerId!;
    const bId = ids.find((id) => id !== aId)!;
    await until(() => !existsSync(join(dir, `${aId}.res`)), () => "a's result file deleted", 5000);
    expect(readdirSync(dir).sort()).toEqual(['owner', 'params', `${bId}.res`].sort());

    await c.close();
    expect(existsSync(dir)).toBe(false);
    expect(hostDirs(shmRoot)).toEqual([]);
    expect((await within(b.done, 5000, 'b closed by the shutdown')).reason).toBe('coordinator closed');
  });
});

describe('a failure the worker finds', () => {
  it('params rewritten under a worker (E_SHM on its side): it rejoins and the run finishes to the same bits', async () => {
    const one = await oneWorker();
    const { c, url, shmRoot, logs } = await coordinator({ minWorkers: 1 });
    let spoiled = false;
    // right after step 3 the params of version 3 are in the file and the params_ref is on its
    // way: spoil the seq of both params slots before the worker (same thread) can read them
    c.onEvent((e) => {
      if (e.kind !== 'workers' || e.step !== 3 || spoiled) return;
      spoiled = true;
      const fd = openSync(join(shmRoot, hostDirs(shmRoot)[0], 'params'), 'r+');
      const bad = new Uint8Array(new Uint32Array([0xfffffffe]).buffer);
      for (const slot of [0, 1]) writeSync(fd, bad, 0, 4, SHM_FILE_HEADER_BYTES + slot * slotStride(P));
      closeSync(fd);
    });
    const w = worker(url, 'victim', { reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 5 } });
    const summary = await within(c.done(), 10_000, 'run finished after the worker rejoined');
    expect(spoiled).toBe(true);
    expect(logs.some((l) => l.includes('E_SHM'))).toBe(true);
    expect(bits(summary.params)).toEqual(bits(one.params));
    // it rejoined (more than once if the spoiled slot is offered again: after 3 failures it keeps to the socket)
    const s = await within(w.done, 5000, 'worker finished');
    expect(s.reason).toBe('run finished');
    expect(s.connections).toBeGreaterThanOrEqual(2);
    await c.close();
    expect(hostDirs(shmRoot)).toEqual([]);
  });
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
