import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type DatasetSplit,
  LeafComputer,
  type RunConfig,
  Rng,
  alignedNodes,
  blobs,
  fingerprint,
  runSeeds,
  splitDataset,
  train,
  validateRunConfig,
} from '@dptrain/core';
import { type ErrorMessage, type Message, type RunEvent, decode, encode, encodeResult, writeFrame } from '@dptrain/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import { fingerprintFast } from './coordinator-api.js';
import { Coordinator } from './server.js';

const data: DatasetSplit = splitDataset(blobs(200, { seed: 3, centers: 3 }), { testCount: 40 });
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 8, activation: 'relu', dropout: 0.1 }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:200',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 16,
  leafSize: 8,
  steps: 12,
  seed: 5,
});

interface Ended {
  code: number;
  reason: string;
  errors: ErrorMessage[];
  byes: string[];
  results: number;
}

/** Bound a promise in time so a broken run fails the test instead of hanging it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const t = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * An in-process fake worker: hello → welcome → ready → params/tasks → one result per
 * canonical node, heartbeats answered. `first` replaces the hello frame; `fp` the
 * fingerprint it reports. Resolves when the socket closes.
 */
function fakeWorker(url: string, opts: { name: string; first?: Uint8Array; fp?: string; onOpen?: (ws: WebSocket) => void }): { ended: Promise<Ended>; ws: WebSocket } {
  const ws = new WebSocket(url);
  const out: Ended = { code: 0, reason: '', errors: [], byes: [], results: 0 };
  let computer: LeafComputer | undefined;
  const ended = new Promise<Ended>((resolve) => {
    ws.on('open', () => {
      ws.send(opts.first ?? encode({ type: 'hello', workerName: opts.name, host: 'test', pid: process.pid, kernels: ['js'] }));
      opts.onOpen?.(ws);
    });
    ws.on('message', (raw: Buffer) => {
      const m: Message = decode(raw);
      switch (m.type) {
        case 'welcome':
          computer = new LeafComputer(m.model, data.train, { leafSize: m.run.leafSize, seed: runSeeds(m.run.seed).dropout });
          ws.send(encode({ type: 'ready', fingerprint: opts.fp ?? fingerprint(data.train), loadMs: 1 }));
          break;
        case 'params':
          computer!.setParams(m.data);
          break;
        case 'task': {
          const batch = { step: m.step, leafCount: m.leafCount, batchSize: m.batchSize, indices: m.indices, indexBase: m.leafLo };
          for (const node of alignedNodes(m.leafLo, m.leafHi, m.leafCount)) {
            const grad = new Float32Array(computer!.paramCount);
            const t0 = performance.now();
            const st = computer!.computeNode(batch, node, grad);
            const computeMs = performance.now() - t0;
            ws.send(encodeResult({ step: m.step, nodeLo: node.lo, nodeSize: node.size, samples: st.samples, lossSum: st.lossSum, correct: st.correct, computeMs }, grad));
            out.results++;
          }
          break;
        }
        case 'heartbeat':
          ws.send(encode({ type: 'heartbeat', t: Date.now() }));
          break;
        case 'error':
          out.errors.push(m);
          break;
        case 'bye':
          out.byes.push(m.reason);
          break;
      }
    });
    ws.on('error', () => {});
    ws.on('close', (code: number, reason: Buffer) => resolve({ ...out, code, reason: reason.toString() }));
  });
  return { ended, ws };
}

describe('Coordinator over WebSockets', () => {
  let dir: string;
  let coord: Coordinator;
  let url: string;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dptrain-coord-'));
    coord = new Coordinator({ config, data, checkpointDir: dir, minWorkers: 2, heartbeatMs: 200, runId: 'test-run', observer: false });
    ({ url, port } = await coord.start());
  });

  afterAll(async () => {
    await coord?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('computes the fingerprint like core', () => {
    expect(coord.fingerprint).toBe(fingerprint(data.train));
    expect(fingerprintFast(data.test)).toBe(fingerprint(data.test));
  });

  it('refuses a hello of another protocol version with E_VERSION and close 4001', async () => {
    const hello = writeFrame({ type: 'hello', v: 2, workerName: 'old', host: 'h', pid: 1, kernels: ['js'] });
    const e = await within(fakeWorker(url, { name: 'old', first: hello }).ended, 5000, 'version mismatch');
    expect(e.code).toBe(4001);
    expect(e.errors.map((x) => x.code)).toEqual(['E_VERSION']);
    expect(e.errors[0].message).toMatch(/v2.*v1/);
    expect(coord.stats().badFrames.E_VERSION).toBe(1);
  });

  it('refuses a worker whose data differs with E_DATA_MISMATCH and close 4002', async () => {
    const bad = '0'.repeat(64);
    const e = await within(fakeWorker(url, { name: 'other-data', fp: bad }).ended, 5000, 'fingerprint mismatch');
    expect(e.code).toBe(4002);
    expect(e.errors[0].code).toBe('E_DATA_MISMATCH');
    expect(e.errors[0].message).toContain(bad);
    expect(e.errors[0].message).toContain(coord.fingerprint);
    expect(e.errors[0].message).toContain('blobs:200');
  });

  it('runs 2 workers to the same bits as train(), survives a malformed frame, refuses a third worker, and says bye', async () => {
    const steps: number[] = [];
    let garbage: Promise<Ended> | undefined;
    const off = coord.onEvent((e) => {
      if (e.kind === 'step') steps.push(e.step);
      if (e.kind === 'step' && e.step === 3 && !garbage) {
        const rng = new Rng(42);
        const junk = Uint8Array.from({ length: 64 }, () => rng.nextInt(256));
        garbage = fakeWorker(url, { name: 'junk', first: junk }).ended;
      }
    });
    const a = fakeWorker(url, { name: 'a' });
    const b = fakeWorker(url, { name: 'b' });
    // L = 2 leaves per batch: a third worker is not needed
    await within(
      new Promise<void>((res) => {
        const t = setInterval(() => {
          if (coord.stats().workers.filter((w) => w.state !== 'left' && w.state !== 'dead').length === 2) {
            clearInterval(t);
            res();
          }
        }, 5);
      }),
      5000,
      'two workers joined',
    );
    const third = await within(fakeWorker(url, { name: 'c' }).ended, 5000, 'third worker refused');
    expect(third.code).toBe(4005);
    expect(third.errors[0].code).toBe('E_STATE');
    expect(third.errors[0].message).toBe('batch of 16 samples has only 2 leaves of leafSize 8; 2 workers already assigned');

    const summary = await within(coord.done(), 20_000, 'run finished');
    off();
    const [ea, eb] = await within(Promise.all([a.ended, b.ended]), 5000, 'workers closed');
    const junk = await within(garbage!, 5000, 'junk client closed');

    const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 16, leafSize: 8, steps: 12, seed: 5, shuffle: true });
    expect(Array.from(summary.params)).toEqual(Array.from(ref.params));
    expect(summary.steps).toBe(12);
    expect(summary.test).toEqual(ref.test);
    expect(steps).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));

    // the final checkpoint has the bytes core's result gives
    const file = await readFile(summary.checkpointPath);
    const expected = encodeFinalCheckpoint({ config, params: ref.params, optimizer: ref.optimizer.state, step: ref.steps, epoch: ref.epochs, sampler: samplerStateAfter(config, data.train.n, ref.steps) });
    expect(file.equals(Buffer.from(expected))).toBe(true);
    expect(summary.checkpointPath).toBe(join(dir, 'final.safetensors'));

    // both workers worked, got bye and close 4004
    for (const e of [ea, eb]) {
      expect(e.results).toBeGreaterThan(0);
      expect(e.byes).toEqual(['run finished']);
      expect(e.code).toBe(4004);
    }
    // the malformed frame got an error and close 4000, and was counted
    expect(junk.code).toBe(4000);
    expect(junk.errors[0].code).toBe('E_DECODE');
    const st = coord.stats();
    expect(st.badFrames.E_DECODE).toBe(1);
    expect(st.bytesIn).toBeGreaterThan(0);
    expect(st.workers.find((w) => w.host === 'test' && w.computeMs > 0)).toBeDefined();

    // events: seq without gaps, run_started first, checkpoint then run_finished last
    const h = coord.history;
    expect(h.map((e) => e.seq)).toEqual(h.map((_, i) => i));
    expect(h[0].kind).toBe('run_started');
    expect(h.slice(-2).map((e) => e.kind)).toEqual(['checkpoint', 'run_finished']);
    // the final evaluation is an eval event too (step 12 is no periodic evaluation)
    expect(h.filter((e) => e.kind === 'eval').at(-1)).toMatchObject({ step: 12, loss: summary.test.loss, accuracy: summary.test.accuracy });
    // a live workers table after every step: compute figures, the transport's byte counts, the last message time
    const tables = h.filter((e): e is Extract<RunEvent, { kind: 'workers' }> => e.kind === 'workers' && e.step >= 1);
    expect([...new Set(tables.map((e) => e.step))]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    for (const e of tables) {
      const working = e.list.filter((w) => w.state === 'busy' || w.state === 'idle');
      expect(working.length).toBe(2);
      for (const w of working) {
        expect(w.computeMs).toBeGreaterThan(0);
        expect(w.samplesPerSec).toBeGreaterThan(0);
        expect(w.bytesIn).toBeGreaterThan(0);
        expect(w.bytesOut).toBeGreaterThan(0);
        expect(w.lastHeartbeat).toBeLessThanOrEqual(e.t);
        expect(w.lastHeartbeat).toBeGreaterThan(e.t - 5000);
      }
    }

    // GET /api/run on the same port
    const info = (await (await fetch(`http://127.0.0.1:${port}/api/run`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ runId: 'test-run', state: 'finished', step: 12, paramCount: ref.params.length });
    expect((info.workers as unknown[]).length).toBeGreaterThanOrEqual(2);
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
  });

  it('reassigns the leaves of a worker whose socket dies mid-run and still matches train()', async () => {
    const dir2 = await mkdtemp(join(tmpdir(), 'dptrain-coord-'));
    const c2 = new Coordinator({ config, data, checkpointDir: dir2, heartbeatMs: 200 });
    try {
      const { url: u } = await c2.start();
      const a = fakeWorker(u, { name: 'a' });
      const b = fakeWorker(u, { name: 'b' });
      // kill b's socket (no bye, no close handshake) as soon as step 4 has started
      const off = c2.onEvent((e) => {
        if (e.kind === 'step' && e.step === 4) b.ws.terminate();
      });
      const summary = await within(c2.done(), 20_000, 'run finished after a worker died');
      off();
      await within(Promise.all([a.ended, b.ended]), 5000, 'workers closed');
      const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 16, leafSize: 8, steps: 12, seed: 5, shuffle: true });
      expect(Array.from(summary.params)).toEqual(Array.from(ref.params));
      const kinds = c2.history.map((e) => e.kind);
      expect(kinds).toContain('worker_dead');
      expect(kinds).toContain('reassigned');
      expect(c2.stats().workers.map((w) => w.state).sort()).toEqual(['dead', 'idle']);
    } finally {
      await c2.close();
      await rm(dir2, { recursive: true, force: true });
    }
  });
});
