import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DatasetSplit, DptrainError, type RunConfig, blobs, splitDataset, train, validateRunConfig } from '@dptrain/core';
import { type RunEvent, encode } from '@dptrain/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import type { CoordinatorOptions } from './options.js';
import { Coordinator } from './server.js';
import { FakeWorker, type FakeWorkerOptions, until, within } from './testing/fake-worker.js';

const data: DatasetSplit = splitDataset(blobs(200, { seed: 3, centers: 3 }), { testCount: 40 });
// 160 training samples, batches of 24 → 3 leaves of 8 (the last batch of an epoch: 16 samples, 2 leaves)
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 8, activation: 'relu', dropout: 0.1 }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:200',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 24,
  leafSize: 8,
  steps: 12,
  seed: 5,
});
const trainOf = (steps: number) => train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 24, leafSize: 8, steps, seed: 5, shuffle: true });
const ref = trainOf(12);
const same = (a: Float32Array, b: Float32Array) => expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);

/** The checkpoint bytes of core's train() after `steps` steps, as the coordinator writes them for this config. */
function checkpointOfTrain(steps: number): Buffer {
  const r = steps === 12 ? ref : trainOf(steps);
  const sampler = samplerStateAfter(config, data.train.n, steps);
  return Buffer.from(encodeFinalCheckpoint({ config, params: r.params, optimizer: r.optimizer.state, step: steps, epoch: sampler.epoch, sampler }));
}

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

/** A started coordinator on a fresh directory, closed (and the directory removed) after the test. */
async function coordinator(over: Partial<CoordinatorOptions> = {}): Promise<{ c: Coordinator; url: string; dir: string; logs: string[]; events: RunEvent[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'dptrain-faults-'));
  const logs: string[] = [];
  const c = new Coordinator({ config, data, checkpointDir: dir, heartbeatMs: 50, observer: false, log: (l) => logs.push(l), ...over });
  const events: RunEvent[] = [];
  c.onEvent((e) => events.push(e));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  cleanup.push(() => c.close());
  const { url } = await c.start();
  return { c, url, dir, logs, events };
}

function worker(url: string, name: string, over: Partial<FakeWorkerOptions> = {}): FakeWorker {
  const w = new FakeWorker({ url, name, train: data.train, ...over });
  cleanup.push(() => within(w.ended, 5000, `${name} closed`).catch(() => w.ws.terminate()));
  return w;
}

const kinds = (events: RunEvent[], k: RunEvent['kind']) => events.filter((e) => e.kind === k);

describe('faults over WebSockets', () => {
  it('re-executes the nodes of a hung worker after the step deadline, names it as a straggler, drops its late results, and matches train()', async () => {
    const { c, url, events } = await coordinator({ stepTimeoutMs: 300, minWorkers: 2 });
    const a = worker(url, 'a');
    // b hangs in step 3 (socket open, heartbeats answered, no results), and sends them late, once step 5 is done
    const b = worker(url, 'b', { onResult: (r) => (r.step === 3 ? 'hold' : r) });
    c.onEvent((e) => {
      if (e.kind === 'step' && e.step === 5) for (const r of b.held.splice(0)) b.sendResult(r);
    });
    const summary = await within(c.done(), 20_000, 'run finished');
    same(summary.params, ref.params);
    const st = kinds(events, 'straggler') as Array<{ workerId: string; step: number; computeMs: number }>;
    expect(st.map((e) => [e.workerId, e.step])).toEqual([[b.workerId, 3]]);
    expect(st[0].computeMs).toBeGreaterThan(300);
    const re = kinds(events, 'reassigned') as Array<{ step: number; from: string; to: string }>;
    // b held leaves [1, 3): nodes (1, 1) and (2, 1)
    expect(re.map((e) => [e.step, e.from, e.to])).toEqual([[3, b.workerId, a.workerId], [3, b.workerId, a.workerId]]);
    expect(c.stats().reexecuted).toBe(2);
    expect(c.stats().staleDropped).toBe(2); // the late results arrived during step 6
    // b sat out steps 4 and 5 (lagging) and took part again after its late delivery
    expect(b.tasks.map((t) => t.step).filter((s) => s > 3 && s <= 5)).toEqual([]);
    expect(b.tasks.some((t) => t.step > 6)).toBe(true);
  });

  it('enforces a step deadline shorter than the heartbeat on its own timer', async () => {
    // heartbeats every 10 s: only the deadline timer can move b's nodes on within the test's time
    const { c, url, events } = await coordinator({ stepTimeoutMs: 250, minWorkers: 2, heartbeatMs: 10_000 });
    const a = worker(url, 'a');
    let sentAt = 0;
    const b = worker(url, 'b', {
      onTask: (t) => {
        if (t.step === 2 && sentAt === 0) sentAt = performance.now();
      },
      onResult: (r) => (r.step === 2 ? 'drop' : r),
    });
    let tookOverAt = 0;
    c.onEvent((e) => {
      if (e.kind === 'reassigned' && tookOverAt === 0) tookOverAt = performance.now();
    });
    const summary = await within(c.done(), 5000, 'run finished');
    same(summary.params, ref.params);
    const re = kinds(events, 'reassigned') as Array<{ step: number; from: string; to: string }>;
    expect(re.map((e) => [e.step, e.from, e.to])).toEqual([[2, b.workerId, a.workerId], [2, b.workerId, a.workerId]]);
    // the deadline counts from the tasks going out (a little before b saw its task)
    const late = tookOverAt - sentAt;
    expect(late).toBeGreaterThan(200);
    expect(late).toBeLessThan(1000);
  });

  it('lets a worker that joins mid-run take leaves from the next step, and says it waits for minWorkers', async () => {
    const { c, url, logs } = await coordinator({ minWorkers: 2 });
    const a = worker(url, 'a');
    await until(() => logs.some((l) => l.startsWith('waiting for 1 more worker(s): 1 ready, minWorkers 2')), 5000, 'waiting announced');
    const b = worker(url, 'b');
    let joinedAt = -1;
    let third: FakeWorker | undefined;
    c.onEvent((e) => {
      if (e.kind === 'step' && e.step === 4 && !third) third = worker(url, 'c');
      if (e.kind === 'workers' && third?.workerId && joinedAt < 0 && e.list.some((w) => w.workerId === third!.workerId && w.state !== 'loading')) joinedAt = c.stats().step;
    });
    const summary = await within(c.done(), 20_000, 'run finished');
    same(summary.params, ref.params);
    expect(a.tasks[0].step).toBe(0);
    expect(b.tasks[0].step).toBe(0);
    expect(joinedAt).toBeGreaterThanOrEqual(4);
    expect(third!.tasks.length).toBeGreaterThan(0);
    expect(third!.tasks[0].step).toBeGreaterThan(joinedAt - 1);
    expect(third!.tasks[0].leafLo).toBe(2); // the third of three workers: leaf [2, 3)
  });

  it('moves the nodes of a worker that says bye mid-step on at once', async () => {
    // heartbeats every 10 s: only the bye itself can move the nodes on within the test's time
    const { c, url, events } = await coordinator({ heartbeatMs: 10_000, minWorkers: 2 });
    worker(url, 'a');
    const b = worker(url, 'b', {
      onTask: (t, w) => {
        if (t.step !== 2) return;
        w.bye('worker closed');
        return 'skip';
      },
    });
    const summary = await within(c.done(), 5000, 'run finished');
    same(summary.params, ref.params);
    expect(kinds(events, 'worker_left')).toEqual([expect.objectContaining({ workerId: b.workerId, reason: 'bye: worker closed' })]);
    expect((kinds(events, 'reassigned') as Array<{ step: number; from: string }>).map((e) => [e.step, e.from])).toEqual([[2, b.workerId], [2, b.workerId]]);
    expect((await b.ended).code).toBe(1000);
  });

  it('nonFinitePolicy stop: a NaN gradient ends the run naming the worker and the step, with a checkpoint of the last good state', async () => {
    const { c, url, dir } = await coordinator({ minWorkers: 2 });
    worker(url, 'a');
    const b = worker(url, 'b', {
      onResult: (r) => {
        if (r.step !== 5) return r;
        const grad = Float32Array.from(r.grad);
        grad[7] = Number.POSITIVE_INFINITY;
        return { ...r, grad };
      },
    });
    const err = (await within(c.done().then(() => undefined, (e: unknown) => e), 20_000, 'run failed')) as DptrainError;
    expect(err).toBeInstanceOf(DptrainError);
    expect(err.code).toBe('E_NONFINITE');
    expect(err.message).toMatch(new RegExp(`^worker ${b.workerId} \\(b\\) at step 5: node \\(\\d+, \\d+\\) of step 5: gradient element 7 is Infinity; the last good state \\(step 5\\) is in .*latest\\.safetensors$`));
    const saved = await readFile(join(dir, 'latest.safetensors'));
    expect(saved.equals(checkpointOfTrain(5))).toBe(true);
    expect(existsSync(join(dir, 'final.safetensors'))).toBe(false);
    expect(c.stats().step).toBe(5);
    const ended = await within(b.ended, 5000, 'b closed');
    expect(ended.code).toBe(1011);
    expect(ended.errors.at(-1)?.code).toBe('E_NONFINITE');
  });

  it('nonFinitePolicy stop: an error report from a worker ends the run with E_WORKER', async () => {
    const { c, url } = await coordinator({ minWorkers: 2 });
    worker(url, 'a');
    const b = worker(url, 'b', {
      onTask: (t, w) => {
        if (t.step !== 2) return;
        w.send(encode({ type: 'error', code: 'E_COMPUTE', message: 'kernel exploded', fatal: false }));
        return 'skip';
      },
    });
    const err = (await within(c.done().then(() => undefined, (e: unknown) => e), 20_000, 'run failed')) as DptrainError;
    expect(err.code).toBe('E_WORKER');
    expect(err.message).toMatch(new RegExp(`^worker ${b.workerId} \\(b\\) at step 2: reported E_COMPUTE: kernel exploded; the last good state \\(step 2\\) is in `));
  });

  it('nonFinitePolicy skip: bad results are dropped, counted and recomputed; the run matches train()', async () => {
    const { c, url } = await coordinator({ minWorkers: 2, nonFinitePolicy: 'skip' });
    worker(url, 'a');
    let bad = 0;
    const b = worker(url, 'b', {
      onResult: (r) => {
        if (r.step !== 3 && r.step !== 6) return r;
        if (bad >= 2) return r;
        bad++;
        const grad = Float32Array.from(r.grad);
        grad[0] = NaN;
        return { ...r, grad };
      },
    });
    const summary = await within(c.done(), 20_000, 'run finished');
    same(summary.params, ref.params);
    const st = c.stats();
    expect(st.badResults).toBe(2);
    expect(st.invalidResults).toBe(2);
    expect(b.tasks.some((t) => t.step > 6)).toBe(true); // b stayed in the run
  });
});
