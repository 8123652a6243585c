import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors } from '@dptrain/core';
import { afterAll, expect, test } from 'vitest';
import { runCli } from './testing/cli-process.js';

const dirP = mkdtemp(join(tmpdir(), 'dptrain-init-foreign-'));
afterAll(async () => rm(await dirP, { recursive: true, force: true }));
const small = ['--data', 'blobs:300', '--model', '2-8-3', '--batch-size', '32', '--leaf-size', '8', '--steps', '1', '--workers', '0'];
const z = (n: number) => new Float32Array(n).fill(0.01);

test('--init maps a torch-style state dict (no dptrain metadata) and prints the mapping', async () => {
  const p = join(await dirP, 'torch.safetensors');
  await writeFile(p, encodeSafetensors([
    { name: '0.weight', shape: [8, 2], data: z(16) }, { name: '0.bias', shape: [8], data: z(8) },
    { name: '2.weight', shape: [3, 8], data: z(24) }, { name: '2.bias', shape: [3], data: z(3) },
  ]));
  const r = await runCli(['train', ...small, '--init', p]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toContain('init: 0.weight [8,2] -> layers.0.weight');
  expect(r.stderr).toContain('init: 2.bias [3] -> layers.1.bias');
});

test('--init refuses unpaired tensors naming the cause', async () => {
  const p = join(await dirP, 'odd.safetensors');
  await writeFile(p, encodeSafetensors([{ name: '0.weight', shape: [8, 2], data: z(16) }]));
  const r = await runCli(['train', ...small, '--init', p]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--init: .*no dptrain metadata and .*do not pair up/);
});

test('eval --checkpoint with a torch-style file and --model evaluates it', async () => {
  const p = join(await dirP, 'torch-eval.safetensors');
  await writeFile(p, encodeSafetensors([
    { name: '0.weight', shape: [8, 2], data: z(16) }, { name: '0.bias', shape: [8], data: z(8) },
    { name: '2.weight', shape: [3, 8], data: z(24) }, { name: '2.bias', shape: [3], data: z(3) },
  ]));
  const r = await runCli(['eval', '--checkpoint', p, '--model', '2-8-3', '--data', 'blobs:300', '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toContain('0.weight [8,2] -> layers.0.weight');
  expect(JSON.parse(r.stdout.trim().split('\n').pop()!).samples).toBeGreaterThan(0);
});
