import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, initParams, createOptimizerState, validateRunConfig } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFinalCheckpoint, writeFileAtomic } from './checkpoint-io.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dptrain-atomic-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes, replaces and leaves no temporary file behind', async () => {
    const p = join(dir, 'f.bin');
    await writeFileAtomic(p, Uint8Array.from([1, 2, 3]));
    expect(Array.from(await readFile(p))).toEqual([1, 2, 3]);
    const big = new Uint8Array(1 << 20).map((_, i) => i & 255);
    await writeFileAtomic(p, big);
    expect((await readFile(p)).equals(Buffer.from(big))).toBe(true);
    expect(await readdir(dir)).toEqual(['f.bin']);
  });

  it('fails with the OS error when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f.bin'), new Uint8Array(4))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('encodeFinalCheckpoint', () => {
  const config = validateRunConfig({
    model: { inputSize: 2, layers: [{ units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
    data: 'blobs',
    optimizer: { name: 'adam', lr: 0.01 },
    batchSize: 4,
    leafSize: 2,
  });
  const params = initParams(config.model, 1);
  const state = createOptimizerState(config.optimizer, params.length);

  it('is deterministic, independent of the key order of the config, and decodes back', () => {
    const input = { config, params, optimizer: state, step: 3, epoch: 1, sampler: { epoch: 1, cursor: 4 } };
    const a = encodeFinalCheckpoint(input);
    const reordered = Object.fromEntries(Object.entries(config).reverse()) as typeof config;
    const b = encodeFinalCheckpoint({ ...input, config: reordered });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const back = decodeCheckpoint(a, { spec: config.model });
    expect(Array.from(back.params)).toEqual(Array.from(params));
    expect(back.training).toEqual({ step: 3, epoch: 1, seed: 0, sampler: { epoch: 1, cursor: 4 }, config });
    expect(back.optimizer?.config).toEqual(config.optimizer);
  });
});
