import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointError, ConfigError, type RunConfig, createOptimizerState, encodeCheckpoint, initParams, validateRunConfig } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, samplerStateAfter } from './checkpoint-io.js';
import { CheckpointStore, loadResumeCheckpoint } from './checkpoint-store.js';
import { jsonDiff, resumeStateFrom } from './resume.js';

const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 4, activation: 'tanh' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:100',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 16,
  leafSize: 4,
  epochs: 3,
  seed: 9,
});
const N = 80; // training samples: 5 batches per epoch

/** A checkpoint as the coordinator writes it after `step` steps (weights are arbitrary but finite). */
function checkpointAt(step: number, c: RunConfig = config, n = N, mutate?: (p: Float32Array) => void): Uint8Array {
  const params = initParams(c.model, step + 1);
  mutate?.(params);
  const optimizer = createOptimizerState(c.optimizer, params.length);
  optimizer.t = step;
  optimizer.slots.m.fill(0.5);
  const sampler = samplerStateAfter(c, n, step);
  return encodeFinalCheckpoint({ config: c, params, optimizer, step, epoch: sampler.epoch, sampler });
}

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('resumeStateFrom', () => {
  it('restores params, optimizer state, step, epoch and sampler', () => {
    const s = resumeStateFrom(checkpointAt(7), config, N);
    expect(s.step).toBe(7);
    expect(s.epoch).toBe(1);
    expect(s.sampler).toEqual({ epoch: 1, cursor: 32 });
    expect(s.optimizer.t).toBe(7);
    expect(s.optimizer.slots.m[0]).toBe(0.5);
    expect(Array.from(s.params)).toEqual(Array.from(initParams(config.model, 8)));
  });

  it('names the first differing setting of another run configuration', () => {
    const other = validateRunConfig({ ...config, optimizer: { name: 'adam', lr: 0.02 } });
    const e = thrown(() => resumeStateFrom(checkpointAt(3), other, N, 'run/latest.safetensors'));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).field).toBe('config.optimizer.lr');
    expect(e.message).toBe('config.optimizer.lr: run/latest.safetensors was written by a run with 0.01, this run has 0.02; resume with the same run settings (or start a new run)');
    const seed = thrown(() => resumeStateFrom(checkpointAt(3), validateRunConfig({ ...config, seed: 10 }), N));
    expect((seed as ConfigError).field).toBe('config.seed');
    const steps = thrown(() => resumeStateFrom(checkpointAt(3), validateRunConfig({ ...config, steps: 12 }), N));
    expect(steps.message).toMatch(/^config\.steps: checkpoint was written by a run with unset, this run has 12/);
  });

  it('refuses a checkpoint of a training set of another size', () => {
    const e = thrown(() => resumeStateFrom(checkpointAt(7, config, 96), config, N));
    expect((e as ConfigError).field).toBe('data');
    expect(e.message).toMatch(/after 7 steps of batch 16 over 80 training samples the sampler is at epoch 1, sample 32; the checkpoint says epoch 1, sample 16/);
  });

  it('refuses damaged, foreign and inconsistent files with a CheckpointError naming the file', () => {
    const good = checkpointAt(4);
    const flipped = good.slice();
    flipped[flipped.length - 3] ^= 1;
    expect(thrown(() => resumeStateFrom(flipped, config, N, 'x.safetensors')).message).toBe('x.safetensors: checkpoint: checksum mismatch (file corrupted)');
    expect(thrown(() => resumeStateFrom(good.subarray(0, 100), config, N))).toBeInstanceOf(CheckpointError);
    const plain = encodeCheckpoint({ spec: config.model, params: initParams(config.model, 1) });
    expect(thrown(() => resumeStateFrom(plain, config, N)).message).toMatch(/^checkpoint: no training state/);
    const nan = checkpointAt(4, config, N, (p) => (p[5] = NaN));
    expect(thrown(() => resumeStateFrom(nan, config, N)).message).toBe('checkpoint: parameter 5 is NaN');
  });

  it('jsonDiff finds the first difference with its path', () => {
    expect(jsonDiff({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] }, 'x')).toEqual({ path: 'x.a[1].b', a: 2, b: 3 });
    expect(jsonDiff({ a: 1 }, { a: 1 }, 'x')).toBeUndefined();
  });
});

describe('CheckpointStore and loadResumeCheckpoint', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dptrain-resume-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the previous checkpoint, writes atomically, and resumes from the latest', async () => {
    const store = new CheckpointStore(join(dir, 'a'));
    const [p1, p2] = await Promise.all([store.saveLatest(checkpointAt(2)), store.saveLatest(checkpointAt(4))]);
    expect(p1).toBe(join(dir, 'a', 'latest.safetensors'));
    expect(p2).toBe(p1);
    expect((await readdir(join(dir, 'a'))).sort()).toEqual(['latest.safetensors', 'previous.safetensors']);
    expect((await readFile(p1)).equals(Buffer.from(checkpointAt(4)))).toBe(true);
    expect((await readFile(join(dir, 'a', 'previous.safetensors'))).equals(Buffer.from(checkpointAt(2)))).toBe(true);
    const fin = await store.saveFinal(checkpointAt(15));
    expect(fin).toBe(join(dir, 'a', 'final.safetensors'));
    const logs: string[] = [];
    const { state, file } = loadResumeCheckpoint(join(dir, 'a'), config, N, (l) => logs.push(l));
    expect([state.step, file, logs]).toEqual([4, p1, []]);
    expect(loadResumeCheckpoint(join(dir, 'a', 'previous.safetensors'), config, N).state.step).toBe(2);
  });

  it('falls back to previous.safetensors when the latest is damaged, and names every file when none is usable', async () => {
    const d = join(dir, 'b');
    const store = new CheckpointStore(d);
    await store.saveLatest(checkpointAt(3));
    await store.saveLatest(checkpointAt(6));
    await writeFile(join(d, 'latest.safetensors'), checkpointAt(6).subarray(0, 200)); // torn file
    const logs: string[] = [];
    const { state, file } = loadResumeCheckpoint(d, config, N, (l) => logs.push(l));
    expect([state.step, file]).toEqual([3, join(d, 'previous.safetensors')]);
    expect(logs[0]).toMatch(/^resume: using .*previous\.safetensors \(.*latest\.safetensors: checkpoint: /);
    await writeFile(join(d, 'previous.safetensors'), 'junk');
    const e = thrown(() => loadResumeCheckpoint(d, config, N));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(/^resumeFrom: no usable checkpoint: .*latest\.safetensors: checkpoint: .*; .*previous\.safetensors: checkpoint: .*; .*final\.safetensors: missing$/);
  });

  it('does not fall back when the latest belongs to another configuration, and names a missing path', async () => {
    const d = join(dir, 'c');
    const store = new CheckpointStore(d);
    await store.saveLatest(checkpointAt(3));
    await store.saveLatest(checkpointAt(6, validateRunConfig({ ...config, batchSize: 8 })));
    expect((thrown(() => loadResumeCheckpoint(d, config, N)) as ConfigError).field).toBe('config.batchSize');
    const missing = thrown(() => loadResumeCheckpoint(join(dir, 'nope'), config, N));
    expect(missing.message).toBe(`resumeFrom: cannot read ${join(dir, 'nope')}: ENOENT`);
  });
});
