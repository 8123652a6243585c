import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint } from '@dptrain/core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runCli } from './testing/cli-process.js';

// THE promise of the design: the same seeded run gives byte-identical final checkpoints
// whether it ran in this process (core alone) or on 1, 2, 3 or 4 worker processes.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-det-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('workers 0, 1, 2, 3, 4: byte-identical final checkpoints', async () => {
  const config = join(dir, 'run.json');
  await writeFile(
    config,
    JSON.stringify({
      data: 'spirals:600;seed=3',
      model: {
        inputSize: 2,
        layers: [
          { units: 24, activation: 'tanh', dropout: 0.1 },
          { units: 16, activation: 'relu' },
          { units: 2, activation: 'softmax' },
        ],
        loss: 'softmax_cross_entropy',
      },
      optimizer: 'momentum',
      lr: 0.05,
      batchSize: 64,
      leafSize: 8,
      steps: 30,
      seed: 7,
    }),
  );
  const counts = [0, 1, 2, 3, 4];
  const runs = await Promise.all(counts.map((n) => runCli(['train', '--config', config, '--workers', String(n), '--checkpoint-dir', join(dir, `w${n}`), '--json'], { timeoutMs: 50_000 })));
  const files: Buffer[] = [];
  runs.forEach((r, i) => {
    expect(r.code, `--workers ${counts[i]} failed:\n${r.stderr}`).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const steps = events.filter((e) => e.kind === 'step');
    expect(steps).toHaveLength(30);
    // the distributed runs really used that many workers (the last batch of an epoch is 4 leaves)
    if (counts[i] > 0) expect(Math.max(...steps.map((s) => s.workers))).toBe(counts[i]);
    const summary = events[events.length - 1];
    expect(summary).toMatchObject({ kind: 'summary', steps: 30, checkpoint: join(dir, `w${counts[i]}`, 'final.safetensors') });
  });
  for (const n of counts) files.push(await readFile(join(dir, `w${n}`, 'final.safetensors')));
  const ck = decodeCheckpoint(files[0]);
  expect(ck.training).toMatchObject({ step: 30, seed: 7 });
  expect(ck.params.some((v) => v !== 0)).toBe(true);
  for (let i = 1; i < files.length; i++) expect(files[i].equals(files[0]), `--workers ${counts[i]} differs from --workers 0`).toBe(true);
});

test('kernel wasm-fma (fused multiply-add): workers 0, 1 and 3 give byte-identical final checkpoints too', async () => {
  const config = join(dir, 'fma.json');
  await writeFile(
    config,
    JSON.stringify({
      data: 'spirals:600;seed=3',
      model: { inputSize: 2, layers: [{ units: 24, activation: 'relu' }, { units: 2, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
      optimizer: 'adam',
      lr: 0.01,
      batchSize: 64,
      leafSize: 8,
      steps: 20,
      seed: 9,
      kernel: 'wasm-fma',
    }),
  );
  const counts = [0, 1, 3];
  const runs = await Promise.all(counts.map((n) => runCli(['train', '--config', config, '--workers', String(n), '--checkpoint-dir', join(dir, `fma${n}`), '--json'], { timeoutMs: 50_000 })));
  runs.forEach((r, i) => expect(r.code, `--workers ${counts[i]} failed:\n${r.stderr}`).toBe(0));
  const files = await Promise.all(counts.map((n) => readFile(join(dir, `fma${n}`, 'final.safetensors'))));
  expect((decodeCheckpoint(files[0]).training?.config as { kernel?: string }).kernel).toBe('wasm-fma');
  for (let i = 1; i < files.length; i++) expect(files[i].equals(files[0]), `--workers ${counts[i]} differs from --workers 0`).toBe(true);
});
