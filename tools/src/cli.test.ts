import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from './testing/cli-process.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const small = ['--data', 'blobs:300', '--model', '2-8-3', '--batch-size', '32', '--leaf-size', '8'];

describe.concurrent('usage errors exit with code 2 and name the flag', () => {
  test.each([
    [['train', '--bogus'], /unknown option '--bogus'/],
    [['train', ...small, '--lr', '-1'], /--lr: expected a finite number > 0, got -1/],
    [['train', ...small, '--batch-size', '0'], /--batch-size: expected an integer in \[1, 1048576\], got 0/],
    [['train', ...small, '--leaf-size', '64'], /--leaf-size: must be at most batchSize \(32\), got 64/],
    [['train', ...small, '--optimizer', 'adamax'], /--optimizer: expected one of sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw/],
    [['train', ...small, '--epochs', 'two'], /--epochs: expected an integer, got "two"/],
    [['train', ...small, '--kernel', 'gpu'], /--kernel: expected js, wasm, wasm-fma, got "gpu"/],
    [['train', ...small, '--momentum', '0.5'], /--momentum: not used by adam \(only by momentum, nesterov\)/],
    [['train', ...small, '--model', '2-8-4'], /--model: the model maps 2 inputs to 4 outputs, but dataset blobs:300 has 2 inputs and 3 targets/],
    // more workers than leaves: a batch of 32 in leaves of 8 has 4
    [['train', ...small, '--workers', '5'], /--workers: expected an integer in \[0, 4\] \(a batch of 32 has 4 leaves of 8; a worker needs at least one leaf\), got 5/],
    [['coordinator', ...small, '--min-workers', '9'], /--min-workers: expected an integer in \[1, 4\]/],
    [['eval'], /required option '--checkpoint <path>' not specified/],
    [['worker', '--connect', 'http://x'], /--connect: expected ws:\/\/HOST:PORT/],
  ])('dptrain %j', async (args, message) => {
    const r = await runCli(args as string[]);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });

  test('a bad value in the config file names the file and the key', async () => {
    const cfg = join(dir, 'bad.json');
    await writeFile(cfg, JSON.stringify({ data: 'blobs:300', model: '2-8-3', batchSize: 32, leafSize: 8, evalEvery: -3 }));
    const r = await runCli(['train', '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${cfg}: evalEvery: expected an integer in [0, 1073741824], got -3`);
  });
});

test('config file + flag override, --json lines, then eval of the checkpoint', async () => {
  const cfg = join(dir, 'run.json');
  await writeFile(cfg, JSON.stringify({ data: 'blobs:400;seed=2', model: '2-16-3', optimizer: { name: 'adam', lr: 0.02 }, batchSize: 32, leafSize: 8, steps: 50, seed: 4, evalEvery: 20 }));
  const ckdir = join(dir, 'ck');
  const r = await runCli(['train', '--config', cfg, '--steps', '40', '--workers', '0', '--checkpoint-dir', ckdir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  expect(new Set(events.map((e) => e.kind))).toEqual(new Set(['step', 'eval', 'summary']));
  expect(events.filter((e) => e.kind === 'step').map((e) => e.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  expect(events.filter((e) => e.kind === 'eval').map((e) => e.step)).toEqual([10, 20, 30, 40]); // epoch ends (320 / 32 = 10 steps) and every 20
  const summary = events[events.length - 1];
  expect(summary).toMatchObject({ kind: 'summary', steps: 40, workers: 0, checkpoint: join(ckdir, 'final.safetensors') });
  expect(summary.test.accuracy).toBeGreaterThan(0.9);
  // flags override the file (steps 40), the rest comes from the file
  const ck = decodeCheckpoint(await readFile(summary.checkpoint));
  expect(ck.training).toMatchObject({ step: 40, seed: 4, config: { batchSize: 32, leafSize: 8, steps: 40, optimizer: { name: 'adam', lr: 0.02 } } });

  const ev = await runCli(['eval', '--checkpoint', summary.checkpoint]);
  expect(ev.code, ev.stderr).toBe(0);
  expect(ev.stdout).toContain(`accuracy: ${(100 * summary.test.accuracy).toFixed(2)}%`);
  expect(ev.stdout).toMatch(/confusion matrix[^\n]*\n\s+0\s+1\s+2\n\s+0\s+\d+/);
  const evj = JSON.parse((await runCli(['eval', '--checkpoint', summary.checkpoint, '--json'])).stdout);
  expect(evj.accuracy).toBe(summary.test.accuracy);
  expect(evj.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(evj.samples);
});

test('--init from a checkpoint of another model is refused naming the tensor', async () => {
  const ckdir = join(dir, 'other');
  const r = await runCli(['train', '--data', 'blobs:300', '--model', '2-5-3', '--batch-size', '32', '--leaf-size', '8', '--steps', '2', '--workers', '0', '--checkpoint-dir', ckdir]);
  expect(r.code, r.stderr).toBe(0);
  const lastLine = r.stdout.trim().split('\n').pop();
  expect(lastLine).toBe(`checkpoint: ${join(ckdir, 'final.safetensors')}`);
  const bad = await runCli(['train', ...small, '--steps', '2', '--workers', '0', '--init', join(ckdir, 'final.safetensors')]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/--init: .*final\.safetensors does not fit this run's model: .*tensor layers\.0\.weight has shape \[5,2\], expected \[8,2\]/);
});
