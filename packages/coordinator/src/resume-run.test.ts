import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type DatasetSplit, DptrainError, type RunConfig, blobs, splitDataset, train, validateRunConfig } from '@dptrain/core';
import type { RunEvent } from '@dptrain/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import type { CoordinatorOptions } from './options.js';
import { Coordinator } from './server.js';
import { FakeWorker, within } from './testing/fake-worker.js';

const data: DatasetSplit = splitDataset(blobs(200, { seed: 4, centers: 3 }), { testCount: 40 });
// 160 training samples, batch 32 → 5 steps per epoch; 3 epochs
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 6, activation: 'tanh', dropout: 0.2 }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:200',
  optimizer: { name: 'momentum', lr: 0.05, schedule: { type: 'cosine', totalSteps: 15 } },
  batchSize: 32,
  leafSize: 8,
  epochs: 3,
  seed: 21,
  evalEvery: 4,
});
const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 32, leafSize: 8, epochs: 3, seed: 21, shuffle: true, evalEvery: 4 });
const finalOfTrain = Buffer.from(
  encodeFinalCheckpoint({ config, params: ref.params, optimizer: ref.optimizer.state, step: ref.steps, epoch: ref.epochs, sampler: samplerStateAfter(config, data.train.n, ref.steps) }),
);

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dptrain-resume-run-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A started coordinator with two fake workers; `events` collects its events. */
async function session(dir: string, over: Partial<CoordinatorOptions> = {}) {
  const c = new Coordinator({ config, data, checkpointDir: dir, heartbeatMs: 100, observer: false, minWorkers: 2, ...over });
  const events: RunEvent[] = [];
  c.onEvent((e) => events.push(e));
  cleanup.push(() => c.close());
  const { url } = await c.start();
  const workers = ['a', 'b'].map((name) => new FakeWorker({ url, name, train: data.train }));
  for (const w of workers) cleanup.push(() => within(w.ended, 5000, 'worker closed').catch(() => w.ws.terminate()));
  return { c, events, workers };
}

const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as DptrainError);

describe('checkpoints and resume over WebSockets', () => {
  it('survives an abrupt end (no final checkpoint): a new coordinator resumes from latest.safetensors and ends with the same bytes as an uninterrupted run', async () => {
    const dir = await tempDir();
    const first = await session(dir, { checkpointEvery: 3 });
    // drop the coordinator as soon as step 8 is done, like a SIGKILL: no checkpoint of its own, no waiting
    const dropped = new Promise<void>((resolve) => first.c.onEvent((e) => e.kind === 'step' && e.step === 8 && resolve()));
    await within(dropped, 20_000, 'step 8');
    const closing = first.c.close();
    const err = await rejection(first.c.done());
    expect(err?.code).toBe('E_CLOSED');
    await closing;
    expect(existsSync(join(dir, 'final.safetensors'))).toBe(false);
    const cks = first.events.filter((e) => e.kind === 'checkpoint') as Array<{ step: number; path: string; bytes: number }>;
    expect(cks.map((e) => e.step)).toEqual([3, 6]);
    expect(cks.every((e) => e.path === join(dir, 'latest.safetensors') && e.bytes > 0)).toBe(true);
    for (const w of first.workers) expect((await within(w.ended, 5000, 'worker closed')).code).toBe(1001);

    const second = await session(dir, { resumeFrom: dir });
    expect(second.c.resumedFrom).toEqual({ file: join(dir, 'latest.safetensors'), step: 6 });
    const summary = await within(second.c.done(), 20_000, 'resumed run finished');
    expect(summary.steps).toBe(15);
    expect(second.events.filter((e) => e.kind === 'step').map((e) => (e as { step: number }).step)).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect((await readFile(join(dir, 'final.safetensors'))).equals(finalOfTrain)).toBe(true);
    expect(summary.test).toEqual(ref.test);
  });

  it('stop(): abandons the step, writes a checkpoint, says bye with 1001; resuming from it ends bit-identical', async () => {
    const dir = await tempDir();
    const first = await session(dir);
    const at7 = new Promise<void>((resolve) => first.c.onEvent((e) => e.kind === 'step' && e.step === 7 && resolve()));
    await within(at7, 20_000, 'step 7');
    await first.c.stop('SIGTERM');
    const err = await rejection(first.c.done());
    expect(err?.code).toBe('E_STOPPED');
    const step = first.c.stats().step;
    expect(step).toBeGreaterThanOrEqual(7);
    expect(err?.message).toBe(`run ${first.c.runId} stopped at step ${step} of 15 (SIGTERM); resume from ${join(dir, 'latest.safetensors')}`);
    for (const w of first.workers) {
      const end = await within(w.ended, 5000, 'worker closed');
      expect(end.byes).toEqual(['coordinator stopping']);
      expect(end.code).toBe(1001);
    }
    expect(first.events.at(-1)).toMatchObject({ kind: 'checkpoint', step, path: join(dir, 'latest.safetensors') });
    await first.c.stop('again'); // idempotent

    const second = await session(dir, { resumeFrom: join(dir, 'latest.safetensors') });
    await within(second.c.done(), 20_000, 'resumed run finished');
    expect((await readFile(join(dir, 'final.safetensors'))).equals(finalOfTrain)).toBe(true);
  });

  it('checkpoints every T seconds and on request, and refuses to resume with another configuration', async () => {
    const dir = await tempDir();
    const { c } = await session(dir, { checkpointEverySec: 1e-6 });
    const summary = await within(c.done(), 20_000, 'run finished');
    const steps = c.history.filter((e) => e.kind === 'checkpoint').map((e) => (e as { step: number }).step);
    // a resume checkpoint after every step but the last, then final.safetensors
    expect(steps).toEqual([...Array.from({ length: 14 }, (_, i) => i + 1), 15]);
    expect(c.stats().checkpoints).toBe(14);
    const now = await c.checkpointNow();
    expect(now).toEqual({ step: 15, path: join(dir, 'latest.safetensors'), bytes: (await readFile(summary.checkpointPath)).length });
    expect((await readFile(now.path)).equals(finalOfTrain)).toBe(true);
    const other = validateRunConfig({ ...config, seed: 22 });
    const e = (() => {
      try {
        new Coordinator({ config: other, data, checkpointDir: dir, resumeFrom: dir });
      } catch (x) {
        return x as ConfigError;
      }
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e!.message).toBe(`config.seed: ${join(dir, 'latest.safetensors')} was written by a run with 21, this run has 22; resume with the same run settings (or start a new run)`);
  });
});
