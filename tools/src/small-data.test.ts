import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { clampToData } from './run-options.js';
import { runCli } from './testing/cli-process.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-small-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a data set smaller than the default batch', () => {
  test('defaults are clamped: the whole split as the batch, a leaf for every worker', () => {
    expect(clampToData({}, 4, 2)?.settings).toEqual({ batchSize: 4, leafSize: 2 });
    expect(clampToData({}, 4, 0)?.settings).toEqual({ batchSize: 4, leafSize: 4 });
    expect(clampToData({}, 100, 2)?.settings).toEqual({ batchSize: 100, leafSize: 32 });
    expect(clampToData({ leafSize: 1 }, 4, 2)?.settings).toEqual({ batchSize: 4, leafSize: 1 });
  });

  test('a batch the user set, or a data set that fits the default, is left alone', () => {
    expect(clampToData({ batchSize: 128 }, 4, 2)).toBeUndefined();
    expect(clampToData({}, 128, 2)).toBeUndefined();
  });

  test.each([['0'], ['2']])('dptrain train --data xor --workers %s trains with a note saying what was set', async (workers) => {
    const r = await runCli(['train', '--data', 'xor', '--workers', workers, '--steps', '3', '--no-dashboard', '--checkpoint-dir', join(dir, `w${workers}`)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('note: the data set has 4 training samples, fewer than the default batch of 128: --batch-size set to 4');
    expect(r.stdout).toMatch(/finished 3 steps/);
  });

  test('an explicit batch larger than the data is refused saying what to set', async () => {
    const r = await runCli(['train', '--data', 'xor', '--workers', '0', '--batch-size', '128']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--batch-size: expected an integer in [1, 4] (the training set size of xor), got 128; set --batch-size 4 or less');
  });
});
