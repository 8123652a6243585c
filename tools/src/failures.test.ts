import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLOSE_CODES, decode, writeFrame } from '@dptrain/protocol';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { loadDataset } from './data/index.js';
import { CliProcess, runCli } from './testing/cli-process.js';

// Failures across processes: each side must say clearly what went wrong.
let dir: string;
const procs: CliProcess[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-fail-'));
});
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A `dptrain coordinator --json` and its URL. */
async function coordinator(args: string[]): Promise<{ proc: CliProcess; url: string }> {
  const proc = new CliProcess(['coordinator', '--json', '--checkpoint-dir', join(dir, `c${procs.length}`), ...args]);
  procs.push(proc);
  const line = await proc.waitLine((l) => l.includes('"listening"'));
  return { proc, url: JSON.parse(line).url };
}

/** What a coordinator printed, without its step lines. */
const output = (p: CliProcess) => `${p.lines.filter((l) => !l.includes('"step"')).join('\n')}\n${p.stderr}`;

async function eventually(check: () => boolean, what: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a worker whose dataset differs: E_DATA_MISMATCH naming both fingerprints on both sides', async () => {
  const theirs = (await loadDataset('spirals:300')).fingerprints.train;
  const mine = (await loadDataset('spirals:300;seed=1')).fingerprints.train;
  const { proc, url } = await coordinator(['--data', 'spirals:300', '--model', '2-8-2', '--batch-size', '32', '--leaf-size', '8', '--steps', '5']);
  const w = await runCli(['worker', '--connect', url, '--name', 'odd', '--data', 'spirals:300;seed=1', '--max-retries', '0']);
  expect(w.code).toBe(1);
  expect(w.stderr).toMatch(/error \(E_DATA_MISMATCH\)/);
  expect(w.stderr).toContain(mine);
  expect(w.stderr).toContain(theirs);
  await eventually(
    () => /E_DATA_MISMATCH/.test(output(proc)) && output(proc).includes(mine),
    () => `the coordinator to report the mismatch; it printed:\n${output(proc)}`,
  );
});

test('more workers than leaves: the extra worker is refused with a clear error on both sides', async () => {
  // a batch of 8 in leaves of 8: one leaf, so one worker
  const { proc, url } = await coordinator(['--data', 'spirals:300', '--model', '2-4-2', '--batch-size', '8', '--leaf-size', '8', '--steps', '100000']);
  const ws = [0, 1].map((i) => runCli(['worker', '--connect', url, '--name', `w${i}`, '--max-retries', '0'], { timeoutMs: 20_000 }));
  const first = await Promise.race(ws);
  expect(first.code).toBe(1);
  expect(first.stderr).toMatch(/\(4005\).*only 1 leaves/);
  await eventually(
    () => /only 1 leaves/.test(output(proc)),
    () => `the coordinator to report the refusal; it printed:\n${output(proc)}`,
  );
  await proc.kill();
  await Promise.all(ws);
});

test('a worker speaking protocol v2 is refused with E_VERSION and close code 4001', async () => {
  const { proc, url } = await coordinator(['--data', 'spirals:300', '--model', '2-4-2', '--batch-size', '32', '--leaf-size', '8', '--steps', '5']);
  const sock = new WebSocket(url);
  const got: { msgs: ReturnType<typeof decode>[]; close?: number } = { msgs: [] };
  sock.on('message', (b: Buffer) => got.msgs.push(decode(new Uint8Array(b))));
  const closed = new Promise<number>((resolve) => sock.on('close', (code) => resolve(code)));
  await new Promise((resolve) => sock.on('open', resolve));
  sock.send(writeFrame({ type: 'hello', v: 2, workerName: 'future', host: 'h', pid: 1, kernels: ['js'] }));
  expect(await closed).toBe(CLOSE_CODES.VERSION_MISMATCH);
  expect(got.msgs[0]).toMatchObject({ type: 'error', code: 'E_VERSION', fatal: true });
  expect((got.msgs[0] as { message: string }).message).toMatch(/v2.*v1/);
  await eventually(
    () => /E_VERSION/.test(output(proc)),
    () => `the coordinator to report the version mismatch; it printed:\n${output(proc)}`,
  );
});
