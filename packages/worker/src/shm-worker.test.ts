import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeafComputer, alignedNodes, blobs, fingerprint, initParams, leafCount, paramLayout, runSeeds, splitDataset, validateModelSpec } from '@dptrain/core';
import { type Message, type MessageInit, type ShmOffer, type SlotIo, SlotReader, SlotWriter, fileHeader, slotFileBytes } from '@dptrain/protocol';
import { afterEach, describe, expect, test } from 'vitest';
import { type FakeConn, FakeCoordinator } from './testing/fake-coordinator.js';
import { Worker, type WorkerOptions } from './worker.js';

// The worker's side of the shared-memory data plane against a fake coordinator that builds
// the slot files itself: taking an offer, params_ref in, result_ref out, declining an offer
// it cannot or must not use, and the E_SHM path (4006, reconnect, give up after 3).

const spec = validateModelSpec({ inputSize: 3, layers: [{ units: 8, activation: 'tanh', dropout: 0.25 }, { units: 4, activation: 'softmax' }], loss: 'softmax_cross_entropy' });
const P = paramLayout(spec).total;
const split = splitDataset(blobs(200, { seed: 5, centers: 4, dims: 3 }), { testCount: 40 });
const leafSize = 16;
const B = 70; // 5 leaves: 16,16,16,16,6
const L = leafCount(B, leafSize);
const indices = new Int32Array(B).map((_, i) => (i * 37) % split.train.n);
const params = initParams(spec, 3);
const NONCE = '0123456789abcdef'.repeat(2);
const RESULT_SLOTS = 4;
const PARAMS_SLOTS = 2;

const welcome = (shm?: ShmOffer): MessageInit => ({
  type: 'welcome',
  workerId: 'w1',
  runId: 'run-1',
  model: spec,
  data: 'blobs-test',
  fingerprint: fingerprint(split.train),
  run: { seed: 11, leafSize, kernel: 'js', dropout: true },
  paramCount: P,
  ...(shm ? { shm } : {}),
});
/** Leaves [1, 5) of step 4: nodes (1, 1), (2, 2), (4, 4). */
const task = (version: number): MessageInit => ({ type: 'task', step: 4, version, epoch: 0, leafLo: 1, leafHi: 5, leafCount: L, batchSize: B, indices: indices.slice(leafSize) });
const NODES = alignedNodes(1, 5, L);
/** The same leaves for another step (dropout masks, and so gradients, differ by step), with more fields. */
const taskAt = (step: number, version: number, over: Record<string, unknown> = {}): MessageInit => ({ ...task(version), step, ...over }) as MessageInit;
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** pread/pwrite of whole ranges on a file descriptor. */
function fdIo(fd: number): SlotIo {
  return {
    read: (dst, pos) => readSync(fd, dst, 0, dst.byteLength, pos),
    write: (src, pos) => writeSync(fd, src, 0, src.byteLength, pos),
  };
}

/** The fake coordinator's slot files: `params` (2 slots) and `w1.res` (4 slots), both with NONCE. */
class SlotFiles {
  readonly dir = mkdtempSync(join(tmpdir(), 'dpt-shm-worker-'));
  readonly offer: ShmOffer = { dir: this.dir, nonce: NONCE, resultSlots: RESULT_SLOTS };
  private readonly fds: number[] = [];
  readonly params: SlotWriter;
  readonly results: SlotReader;

  constructor() {
    this.params = new SlotWriter(fdIo(this.create('params', PARAMS_SLOTS)), P, PARAMS_SLOTS);
    this.results = new SlotReader(fdIo(this.create('w1.res', RESULT_SLOTS)), P, RESULT_SLOTS);
  }

  private create(name: string, slots: number): number {
    const fd = openSync(join(this.dir, name), 'wx+', 0o600);
    this.fds.push(fd);
    const h = fileHeader(NONCE, P, slots);
    writeSync(fd, h, 0, h.byteLength, 0);
    ftruncateSync(fd, slotFileBytes(P, slots));
    return fd;
  }

  /** Write params of `version` into its slot; the reference (slot, seq) a task may carry. */
  ref(version: number, data: Float32Array): { slot: number; seq: number } {
    const slot = version % PARAMS_SLOTS;
    return { slot, seq: this.params.write(slot, version, data) };
  }

  /** Write params of `version` into its slot; the params_ref that names them. */
  paramsRef(version: number, data: Float32Array): MessageInit {
    const slot = version % PARAMS_SLOTS;
    return { type: 'params_ref', version, slot, seq: this.params.write(slot, version, data) };
  }

  remove(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const servers: FakeCoordinator[] = [];
const workers: Worker[] = [];
const files: SlotFiles[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const s of servers.splice(0)) await s.kill().catch(() => {});
  for (const f of files.splice(0)) f.remove();
});

/** Bound a wait so a broken worker fails the test instead of hanging it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const next = (conn: FakeConn, what: string) => within(conn.next(), 5000, what);
const accept = (s: FakeCoordinator, what: string) => within(s.accept(), 5000, what);

async function slotFiles(): Promise<SlotFiles> {
  const f = new SlotFiles();
  files.push(f);
  return f;
}

/** A fake coordinator and a started worker on it. */
async function start(over: Partial<WorkerOptions> = {}): Promise<{ s: FakeCoordinator; done: Promise<unknown>; logs: string[] }> {
  const s = await FakeCoordinator.listen();
  s.paramCount = P;
  servers.push(s);
  const logs: string[] = [];
  const w = new Worker({ url: s.url, name: 'shm-worker', loadData: async () => split, reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 5 }, log: (l) => logs.push(l), ...over });
  workers.push(w);
  const done = w.start();
  done.catch(() => {});
  return { s, done, logs };
}

/** Accept a connection, answer its hello with a welcome (offering `shm`), return the connection, the hello and the ready. */
async function joinSession(s: FakeCoordinator, shm?: ShmOffer): Promise<{ conn: FakeConn; hello: Message; ready: Message }> {
  const conn = await accept(s, 'connection');
  const hello = await next(conn, 'hello');
  expect(hello.type).toBe('hello');
  conn.send(welcome(shm));
  const ready = await next(conn, 'ready');
  expect(ready.type).toBe('ready');
  return { conn, hello, ready };
}

describe('taking the offer', () => {
  test('params through params_ref, gradients through result_ref: bit-identical to the plain result frames of a worker without the offer', async () => {
    // the plain run: no offer, params and results as whole frames
    const plain = await start();
    const p = await joinSession(plain.s);
    expect(p.ready).not.toHaveProperty('shm');
    p.conn.send({ type: 'params', version: 7, data: params });
    p.conn.send(task(7));
    const want: Array<Extract<Message, { type: 'result' }>> = [];
    for (const _ of NODES) {
      const r = await next(p.conn, 'plain result');
      if (r.type !== 'result') throw new Error(`expected a result, got ${r.type}`);
      want.push(r);
    }

    // the shm run: the same task, params from the params file, gradients into w1.res
    const f = await slotFiles();
    const shm = await start();
    const { conn, ready } = await joinSession(shm.s, f.offer);
    expect(ready).toMatchObject({ type: 'ready', shm: true });
    conn.send(f.paramsRef(7, params));
    conn.send(task(7));
    for (const [i, node] of NODES.entries()) {
      const r = await next(conn, 'result_ref');
      if (r.type !== 'result_ref') throw new Error(`expected a result_ref, got ${r.type}`);
      expect(r).toMatchObject({ step: 4, nodeLo: node.lo, nodeSize: node.size, slot: i % RESULT_SLOTS });
      const { grad, type: _t, v: _v, ...header } = want[i];
      const { slot, seq, type: _t2, v: _v2, ...refHeader } = r;
      expect({ ...refHeader, computeMs: 0 }).toEqual({ ...header, computeMs: 0 });
      const got = new Float32Array(P);
      f.results.read(slot, seq, 4, got);
      expect(bits(got)).toEqual(bits(grad));
      expect(grad.some((x) => x !== 0)).toBe(true);
    }
    conn.ws.close(4004, 'run finished');
    expect(await within(shm.done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', results: NODES.length });
  });
});

describe('params carried by the task', () => {
  test('a task with paramsRef: params read from the slot first, then result_refs (no params_ref message needed)', async () => {
    const f = await slotFiles();
    const { s, done } = await start();
    const { conn, ready } = await joinSession(s, f.offer);
    expect(ready).toMatchObject({ shm: true });
    conn.send({ ...task(7), paramsRef: f.ref(7, params) } as MessageInit);
    for (const node of NODES) expect(await next(conn, 'result_ref')).toMatchObject({ type: 'result_ref', step: 4, nodeLo: node.lo, nodeSize: node.size });
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', tasks: 1, results: NODES.length });
  });

  test('a task whose paramsRef slot was rewritten: skipped and reported; a task with paramsRef to a worker without the offer is E_STATE', async () => {
    const f = await slotFiles();
    const { s, done } = await start();
    const { conn } = await joinSession(s, f.offer);
    const stale = f.ref(1, params);
    f.ref(3, params);
    conn.send({ ...task(1), paramsRef: stale } as MessageInit);
    expect(await next(conn, 'the skip report')).toMatchObject({ type: 'error', code: 'E_SHM', fatal: false, step: 4 });
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', tasks: 0 });

    const plain = await start({ sharedMemory: false });
    const second = await joinSession(plain.s, f.offer);
    second.conn.send({ ...task(1), paramsRef: f.ref(1, params) } as MessageInit);
    expect(await next(second.conn, 'error')).toMatchObject({ type: 'error', code: 'E_STATE', fatal: true, message: expect.stringMatching(/task\.paramsRef to a worker that did not take the shared-memory offer/) });
    await expect(within(plain.done, 5000, 'worker failed')).rejects.toMatchObject({ code: 'E_STATE' });
  });
});

describe('declining the offer', () => {
  test('a directory that does not exist: ready without shm, and params frames work', async () => {
    const { s, done } = await start();
    const missing = join(tmpdir(), `dpt-shm-worker-missing-${process.pid}`);
    const { conn, ready } = await joinSession(s, { dir: missing, nonce: NONCE, resultSlots: RESULT_SLOTS });
    expect(ready).not.toHaveProperty('shm');
    conn.send({ type: 'params', version: 1, data: params });
    conn.send(task(1));
    const r = await next(conn, 'result');
    expect(r).toMatchObject({ type: 'result', step: 4, nodeLo: 1, nodeSize: 1 });
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished' });
  });

  test('a worker with sharedMemory: false declines a good offer and refuses a params_ref with E_STATE', async () => {
    const f = await slotFiles();
    const { s, done } = await start({ sharedMemory: false });
    const { conn, ready } = await joinSession(s, f.offer);
    expect(ready).not.toHaveProperty('shm');
    conn.send({ type: 'params', version: 1, data: params });
    conn.send(task(1));
    expect(await next(conn, 'result')).toMatchObject({ type: 'result', step: 4, nodeLo: 1, nodeSize: 1 });
    for (const _ of NODES.slice(1)) expect((await next(conn, 'result')).type).toBe('result');
    conn.send(f.paramsRef(2, params));
    expect(await next(conn, 'error')).toMatchObject({ type: 'error', code: 'E_STATE', fatal: true, message: expect.stringMatching(/did not take the shared-memory offer/) });
    await expect(within(done, 5000, 'worker failed')).rejects.toMatchObject({ code: 'E_STATE' });
  });
});

describe('shared-memory failures', () => {
  test('a params_ref naming a slot never written: error E_SHM, close 4006, reconnect with resumeId; after 3 failures the offer is declined', async () => {
    const { s, done } = await start();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const f = await slotFiles();
      const { conn, hello, ready } = await joinSession(s, f.offer);
      if (attempt === 1) expect(hello).not.toHaveProperty('resumeId');
      else expect(hello).toMatchObject({ resumeId: 'w1' });
      expect(ready).toMatchObject({ shm: true });
      conn.send({ type: 'params_ref', version: attempt, slot: 1, seq: 2 });
      const err = await next(conn, 'E_SHM error');
      expect(err).toMatchObject({ type: 'error', code: 'E_SHM', fatal: true });
      expect((err as { message: string }).message).toMatch(/slot 1 was never written/);
      expect((await within(conn.closed, 5000, 'close')).code).toBe(4006);
    }
    // the 4th session: offered again, declined; the socket carries everything
    const f = await slotFiles();
    const { conn, hello, ready } = await joinSession(s, f.offer);
    expect(hello).toMatchObject({ resumeId: 'w1' });
    expect(ready).not.toHaveProperty('shm');
    conn.send({ type: 'params', version: 9, data: params });
    conn.send(task(9));
    expect(await next(conn, 'result')).toMatchObject({ type: 'result', step: 4 });
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', connections: 4 });
  });

  test('params whose slot was rewritten before the read (a lagging worker): its task is skipped and reported, the session goes on', async () => {
    const f = await slotFiles();
    const { s, done, logs } = await start();
    const { conn, ready } = await joinSession(s, f.offer);
    expect(ready).toMatchObject({ shm: true });
    // version 1 goes to slot 1; version 3 rewrites it before the worker reads the ref of 1
    const stale = f.paramsRef(1, params);
    f.paramsRef(3, params);
    conn.send(stale);
    conn.send(task(1));
    // the next step: version 2 in slot 0, read and computed as usual; nothing came for version 1
    conn.send(f.paramsRef(2, params));
    conn.send(task(2));
    // the skip is reported (not fatal, naming the step) so a coordinator whose step is not over can move the nodes on
    expect(await next(conn, 'the skip report')).toMatchObject({ type: 'error', code: 'E_SHM', fatal: false, step: 4, message: expect.stringMatching(/version 1 .*skipped/) });
    const first = await next(conn, 'the first result after the stale task');
    expect(first).toMatchObject({ type: 'result_ref', step: 4, nodeLo: NODES[0].lo });
    for (const _ of NODES.slice(1)) expect((await next(conn, 'result_ref')).type).toBe('result_ref');
    expect(logs.join('\n')).toMatch(/params version 1 were replaced before this worker read them/);
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', connections: 1, tasks: 1 });
  });

  test('the coordinator closing with 4006 counts as a failure too: the worker rejoins, and declines after 3', async () => {
    const f = await slotFiles();
    const { s, done } = await start();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const { conn, ready } = await joinSession(s, f.offer);
      expect(ready).toMatchObject({ shm: true });
      conn.send({ type: 'error', code: 'E_SHM', message: 'slot 0 was never written', fatal: true });
      conn.ws.close(4006, 'E_SHM: slot 0 was never written');
      await within(conn.closed, 5000, 'close');
    }
    const { conn, hello, ready } = await joinSession(s, f.offer);
    expect(hello).toMatchObject({ resumeId: 'w1' });
    expect(ready).not.toHaveProperty('shm');
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', connections: 4 });
  });
});

describe('results: from the kernels\' memory, or as frames when the ring is full', () => {
  const computer = new LeafComputer(spec, split.train, { leafSize, seed: runSeeds(11).dropout });
  computer.setParams(params);
  /** The gradient of NODES[i] at `step`, as core computes it. */
  const want = (step: number, i: number): Float32Array => {
    const g = new Float32Array(P);
    computer.computeNode({ step, leafCount: L, batchSize: B, indices: indices.slice(leafSize), indexBase: 1 }, NODES[i], g);
    return g;
  };

  /** The gradients of the next NODES.length results of `step` (read from their slot or their frame), and how they came. */
  async function results(conn: FakeConn, f: SlotFiles, step: number): Promise<{ kinds: string[]; seqs: number[] }> {
    const kinds: string[] = [];
    const seqs: number[] = [];
    for (const [i, node] of NODES.entries()) {
      const r = await next(conn, `result ${i} of step ${step}`);
      expect(r).toMatchObject({ step, nodeLo: node.lo, nodeSize: node.size });
      let got: Float32Array;
      if (r.type === 'result_ref') {
        got = new Float32Array(P);
        f.results.read(r.slot, r.seq, step, got);
        seqs.push(r.seq);
      } else if (r.type === 'result') got = r.grad;
      else throw new Error(`expected a result, got ${r.type}`);
      expect(bits(got), `node ${i} of step ${step}`).toEqual(bits(want(step, i)));
      kinds.push(r.type);
    }
    return { kinds, seqs };
  }

  test('every slot unread: the next results go as frames with the same bits; result_refs again once the slots are read', async () => {
    const f = await slotFiles();
    const { s, done } = await start();
    const { conn } = await joinSession(s, f.offer);
    conn.send(f.paramsRef(7, params));
    conn.send(taskAt(4, 7));
    conn.send(taskAt(5, 7));
    expect((await results(conn, f, 4)).kinds).toEqual(['result_ref', 'result_ref', 'result_ref']);
    // slot 3 takes the first node of step 5; the ring is then full (nothing read): frames
    const second = await results(conn, f, 5);
    expect(second.kinds).toEqual(['result_ref', 'result', 'result']);
    conn.send(taskAt(6, 7, { resultsRead: second.seqs[0] }));
    expect((await results(conn, f, 6)).kinds).toEqual(['result_ref', 'result_ref', 'result_ref']);
    conn.ws.close(4004, 'run finished');
    expect(await within(done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', tasks: 3, results: 9 });
  });

  test("the fault hook's NaN is reported as E_NONFINITE on either path, and the next nodes are sent clean", async () => {
    const expectNaN = async (conn: FakeConn, step: number) =>
      expect(await next(conn, 'the E_NONFINITE report')).toMatchObject({ type: 'error', code: 'E_NONFINITE', fatal: false, step, message: `step ${step}, node (1, 1): gradient[0] is NaN` });

    // through shared memory: the ring has room
    const f1 = await slotFiles();
    const a = await start({ testFault: { kind: 'nan-at-step', step: 4 } });
    const s1 = await joinSession(a.s, f1.offer);
    s1.conn.send(f1.paramsRef(7, params));
    s1.conn.send(taskAt(4, 7));
    await expectNaN(s1.conn, 4);
    s1.conn.send(taskAt(4, 7));
    expect((await results(s1.conn, f1, 4)).kinds).toEqual(['result_ref', 'result_ref', 'result_ref']);
    s1.conn.ws.close(4004, 'run finished');
    await within(a.done, 5000, 'worker finished');

    // the fallback to frames: the ring is full when the fault fires
    const f2 = await slotFiles();
    const b = await start({ testFault: { kind: 'nan-at-step', step: 6 } });
    const s2 = await joinSession(b.s, f2.offer);
    s2.conn.send(f2.paramsRef(7, params));
    s2.conn.send(taskAt(4, 7));
    s2.conn.send(taskAt(5, 7));
    await results(s2.conn, f2, 4);
    expect((await results(s2.conn, f2, 5)).kinds).toEqual(['result_ref', 'result', 'result']);
    s2.conn.send(taskAt(6, 7));
    await expectNaN(s2.conn, 6);
    s2.conn.send(taskAt(6, 7));
    expect((await results(s2.conn, f2, 6)).kinds).toEqual(['result', 'result', 'result']);
    s2.conn.ws.close(4004, 'run finished');
    expect(await within(b.done, 5000, 'worker finished')).toMatchObject({ reason: 'run finished', results: 9 });
  });
});
