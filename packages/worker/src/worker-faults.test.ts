import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, blobs, fingerprint, initParams, leafCount, paramLayout, splitDataset, validateModelSpec } from '@dptrain/core';
import type { MessageInit, TaskMessage, WelcomeMessage } from '@dptrain/protocol';
import { afterEach, describe, expect, test } from 'vitest';
import { TaskRunner } from './compute.js';
import { FakeCoordinator, type FakeConn } from './testing/fake-coordinator.js';
import { FaultInjector, parseTestFault } from './test-fault.js';
import { Worker, type WorkerOptions } from './worker.js';

// Faults on the worker's side: non-finite gradients are reported (not fatal), a bye ends
// the worker, a failed run ends it with an error, and wss:// with a private CA.

const spec = validateModelSpec({ inputSize: 3, layers: [{ units: 8, activation: 'tanh' }, { units: 4, activation: 'softmax' }], loss: 'softmax_cross_entropy' });
const P = paramLayout(spec).total;
const split = splitDataset(blobs(200, { seed: 5, centers: 4, dims: 3 }), { testCount: 40 });
const leafSize = 16;
const B = 64; // 4 leaves
const L = leafCount(B, leafSize);
const welcome: MessageInit = {
  type: 'welcome',
  workerId: 'w1',
  runId: 'run-1',
  model: spec,
  data: 'blobs-test',
  fingerprint: fingerprint(split.train),
  run: { seed: 3, leafSize, kernel: 'js', dropout: false },
  paramCount: P,
};
const indices = new Int32Array(B).map((_, i) => (i * 13) % split.train.n);
const task = (step: number, version: number): MessageInit => ({ type: 'task', step, version, epoch: 0, leafLo: 1, leafHi: 4, leafCount: L, batchSize: B, indices: indices.slice(leafSize) });

const servers: FakeCoordinator[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const s of servers.splice(0)) await s.kill().catch(() => {});
});

async function session(over: Partial<WorkerOptions> = {}, tls?: { cert: string; key: string }): Promise<{ conn: FakeConn; done: Promise<unknown>; w: Worker }> {
  const s = tls ? await FakeCoordinator.listenTls(tls) : await FakeCoordinator.listen();
  s.paramCount = P;
  servers.push(s);
  const w = new Worker({ url: s.url, name: 'wk', loadData: async () => split, reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 0 }, ...over });
  workers.push(w);
  const done = w.start();
  done.catch(() => {});
  const conn = await s.accept();
  expect((await conn.next()).type).toBe('hello');
  conn.send(welcome);
  expect((await conn.next()).type).toBe('ready');
  return { conn, done, w };
}

describe('test-only fault hook', () => {
  test('parses nan-at-step:S[@NAME] and refuses anything else naming the variable', () => {
    expect(parseTestFault(undefined)).toBeUndefined();
    expect(parseTestFault('  ')).toBeUndefined();
    expect(parseTestFault('nan-at-step:5')).toEqual({ kind: 'nan-at-step', step: 5 });
    expect(parseTestFault('nan-at-step:0@local-1')).toEqual({ kind: 'nan-at-step', step: 0, worker: 'local-1' });
    for (const bad of ['nan-at-step', 'nan-at-step:-1', 'inf-at-step:3', 'nan-at-step:x']) {
      expect(() => parseTestFault(bad)).toThrow(ConfigError);
      expect(() => parseTestFault(bad)).toThrow(/DPTRAIN_TEST_FAULT: expected nan-at-step:STEP/);
    }
  });

  test('fires once, at its step, for the named worker only', () => {
    const g = new Float32Array(3).fill(1);
    const f = new FaultInjector({ kind: 'nan-at-step', step: 2 }, 'a');
    expect(f.corruptGradient(1, g)).toBe(false);
    expect([...g]).toEqual([1, 1, 1]);
    expect(f.corruptGradient(2, g)).toBe(true);
    expect(g.every(Number.isNaN)).toBe(true);
    g.fill(1);
    expect(f.corruptGradient(2, g)).toBe(false);
    expect(new FaultInjector({ kind: 'nan-at-step', step: 2, worker: 'b' }, 'a').corruptGradient(2, g)).toBe(false);
    expect([...g]).toEqual([1, 1, 1]);
    // a nan-at-step fault never slows a worker down
    expect(new FaultInjector({ kind: 'nan-at-step', step: 2 }, 'a').slowDown(50)).toBe(0);
  });

  test('parses slow:F[@NAME] with 1 < F <= 20 and refuses other factors naming the variable and the range', () => {
    expect(parseTestFault('slow:4')).toEqual({ kind: 'slow', factor: 4 });
    expect(parseTestFault(' slow:2.5@local-1 ')).toEqual({ kind: 'slow', factor: 2.5, worker: 'local-1' });
    expect(parseTestFault('slow:20')).toEqual({ kind: 'slow', factor: 20 });
    expect(parseTestFault('slow:1.01')).toEqual({ kind: 'slow', factor: 1.01 });
    for (const bad of ['slow:1', 'slow:0.5', 'slow:0', 'slow:20.5', 'slow:100', 'slow:abc', 'slow:', 'slow:-3', 'slow:NaN', 'slow:Infinity', 'slow:1e1', 'slow:@w']) {
      expect(() => parseTestFault(bad), bad).toThrow(ConfigError);
      expect(() => parseTestFault(bad), bad).toThrow(/^DPTRAIN_TEST_FAULT: slow:FACTOR expects a number > 1 and <= 20/);
    }
    expect(() => parseTestFault('slow')).toThrow(/DPTRAIN_TEST_FAULT: expected nan-at-step:STEP\[@WORKER-NAME\] or slow:FACTOR/);
    expect(() => parseTestFault('slow:x', 'fault')).toThrow(/^fault: slow:FACTOR .*got "x"/);
  });

  test('slow:F waits (F - 1) x the compute time on every node, for the named worker only, without using the CPU', () => {
    const f = new FaultInjector({ kind: 'slow', factor: 4 }, 'a');
    const g = new Float32Array(3).fill(1);
    expect(f.corruptGradient(0, g)).toBe(false);
    expect([...g]).toEqual([1, 1, 1]);
    for (let i = 0; i < 2; i++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const waited = f.slowDown(20);
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      expect(waited).toBeGreaterThanOrEqual(59);
      expect(waited).toBeLessThan(1000);
      expect(wall).toBeGreaterThanOrEqual(waited - 0.5);
      // a blocked wait, not a busy loop: far less CPU time than the 60 ms waited
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(30);
    }
    expect(f.armed).toBe(true);
    expect(f.slowDown(0)).toBe(0);
    const other = new FaultInjector({ kind: 'slow', factor: 4, worker: 'b' }, 'a');
    expect(other.armed).toBe(false);
    expect(other.slowDown(20)).toBe(0);
    expect(new FaultInjector(undefined, 'a').slowDown(20)).toBe(0);
  });

  test('TaskRunner: the slow-down is asked for after each node is computed, before it is yielded, and counted in its computeMs', () => {
    const asked: number[] = [];
    class Recording extends FaultInjector {
      override slowDown(computeMs: number): number {
        asked.push(computeMs);
        return 1000;
      }
    }
    const params = initParams(spec, 1);
    const runner = (fault?: FaultInjector) => {
      const r = new TaskRunner(welcome as WelcomeMessage, split.train, fault);
      r.setParams(1, params);
      return r;
    };
    const t = task(0, 1) as TaskMessage;
    const plain: number[][] = [];
    for (const r of runner().run(t)) plain.push(Array.from(r.grad));
    const got: Array<{ ms: number; grad: number[]; askedBefore: number }> = [];
    for (const r of runner(new Recording({ kind: 'slow', factor: 2 }, 'wk')).run(t)) got.push({ ms: r.computeMs, grad: Array.from(r.grad), askedBefore: asked.length });
    expect(got.map((x) => x.askedBefore)).toEqual([1, 2]); // leaves [1, 4): nodes (1, 1) and (2, 2)
    expect(got.map((x) => x.grad)).toEqual(plain);
    got.forEach((x, i) => {
      expect(asked[i]).toBeGreaterThan(0);
      expect(x.ms).toBe(asked[i] + 1000);
    });
  });
});

describe('non-finite results', () => {
  test('a NaN gradient is reported as a non-fatal E_NONFINITE naming step and node; the worker goes on', async () => {
    const { conn, done } = await session({ testFault: { kind: 'nan-at-step', step: 4 } });
    conn.send({ type: 'params', version: 1, data: initParams(spec, 1) });
    conn.send(task(4, 1));
    const err = await conn.next();
    expect(err).toMatchObject({ type: 'error', code: 'E_NONFINITE', fatal: false, step: 4 });
    expect((err as { message: string }).message).toBe('step 4, node (1, 1): gradient[0] is NaN');
    // the rest of that task is dropped; the next task is computed normally: nodes (1, 1) and (2, 2)
    conn.send(task(5, 1));
    const next = await conn.next();
    expect(next).toMatchObject({ type: 'result', step: 5, nodeLo: 1, nodeSize: 1 });
    expect((await conn.next()).type).toBe('result');
    conn.ws.close(4004, 'run finished');
    expect(await done).toMatchObject({ reason: 'run finished', results: 2 });
  });

  test('a loss that overflows without the hook is reported the same way', async () => {
    const { conn } = await session();
    conn.send({ type: 'params', version: 1, data: new Float32Array(P).fill(3e38) });
    conn.send(task(0, 1));
    const err = await conn.next();
    expect(err).toMatchObject({ type: 'error', code: 'E_NONFINITE', fatal: false, step: 0 });
    expect((err as { message: string }).message).toMatch(/^step 0, node \(1, 1\): (gradient\[\d+\]|the loss sum) is (NaN|-?Infinity)$/);
  });
});

describe('how a session ends', () => {
  test("a bye from the coordinator ends the worker even with close 1001 (no reconnect)", async () => {
    const { conn, done } = await session({ reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 5 } });
    conn.send({ type: 'bye', reason: 'coordinator stopping' });
    conn.ws.close(1001, 'coordinator stopping');
    expect(await done).toMatchObject({ reason: 'coordinator stopping', connections: 1 });
  });

  test('a failed run (fatal error, close 1011) ends the worker with that error', async () => {
    const { conn, done } = await session({ reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 5 } });
    conn.send({ type: 'error', code: 'E_NONFINITE', message: 'run failed: worker w2 at step 5: NaN', fatal: true });
    conn.ws.close(1011, 'E_NONFINITE: run failed');
    await expect(done).rejects.toMatchObject({ code: 'E_NONFINITE', closeCode: 1011, message: expect.stringContaining('worker w2 at step 5') });
  });

  test('close(reason) says bye with the reason', async () => {
    const { conn, done, w } = await session();
    w.close('interrupted by SIGTERM');
    expect(await conn.next()).toMatchObject({ type: 'bye', reason: 'interrupted by SIGTERM' });
    expect(await done).toMatchObject({ reason: 'closed' });
  });
});

describe('wss:// with a private certificate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-worker-tls-'));
  const tls = (() => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const r = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
    rmSync(dir, { recursive: true, force: true });
    return r;
  })();

  test('connects when given the certificate as its CA', async () => {
    const { conn, done } = await session({ ca: tls.cert }, tls);
    conn.ws.close(4004, 'run finished');
    expect(await done).toMatchObject({ reason: 'run finished' });
  });

  test('refuses the connection without it', async () => {
    const s = await FakeCoordinator.listenTls(tls);
    servers.push(s);
    const w = new Worker({ url: s.url, loadData: async () => split, reconnect: { maxAttempts: 0 } });
    workers.push(w);
    await expect(w.start()).rejects.toMatchObject({ code: 'E_CONNECTION', message: expect.stringMatching(/self[- ]signed/i) });
  });
});
