import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '@dptrain/coordinator';
import { ConfigError, blobs, decodeCheckpoint, splitDataset, train, validateRunConfig } from '@dptrain/core';
import { Worker } from '@dptrain/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { ipcSocketDir } from './ipc-dir.js';

// Local workers reach the coordinator over a Unix socket (CoordinatorOptions.ipcPath,
// ws+unix:// URLs): the same protocol and handlers as ws://, the same bits, the same token.
const data = splitDataset(blobs(160, { seed: 2, centers: 3 }), { testCount: 32 });
const config = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 6, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:160',
  optimizer: { name: 'sgd', lr: 0.1 },
  batchSize: 16,
  leafSize: 4,
  steps: 6,
  seed: 3,
  kernel: 'js',
});
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function coordinator(opts: { token?: string } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'dptrain-ipc-test-'));
  const ipc = ipcSocketDir();
  const c = new Coordinator({ config, data, checkpointDir: dir, minWorkers: 2, observer: false, ipcPath: ipc.path, ...opts });
  cleanup.push(() => rm(dir, { recursive: true, force: true }), () => ipc.remove(), () => c.close());
  return { c, dir, ipc };
}

const worker = (url: string, over: { token?: string } = {}) =>
  new Worker({ url, name: 'ipc-worker', loadData: async () => data, reconnect: { initialMs: 10, maxMs: 20, maxAttempts: 1 }, ...over });

describe.runIf(process.platform !== 'win32')('coordinator over a Unix socket', () => {
  it('two workers over ws+unix finish the run with the bits of train()', async () => {
    const { c, dir, ipc } = await coordinator();
    const { ipcUrl } = await c.start();
    expect(ipcUrl).toBe(`ws+unix://${ipc.path}:/`);
    expect(existsSync(ipc.path!)).toBe(true);
    const ws = [worker(ipcUrl!), worker(ipcUrl!)];
    await Promise.all([c.done(), ...ws.map((w) => w.start())]);
    const ck = decodeCheckpoint(await readFile(join(dir, 'final.safetensors')));
    const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 16, leafSize: 4, steps: 6, seed: 3, kernel: 'js' });
    expect(Buffer.from(ck.params.buffer, ck.params.byteOffset, ck.params.byteLength).equals(Buffer.from(ref.params.buffer, ref.params.byteOffset, ref.params.byteLength))).toBe(true);
  });

  it('asks the token over the socket as over TCP', async () => {
    const { c } = await coordinator({ token: 's3cret' });
    const { ipcUrl } = await c.start();
    await expect(worker(ipcUrl!).start()).rejects.toMatchObject({ code: 'E_AUTH' });
  });

  it('refuses a socket path it cannot use, naming ipcPath', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dptrain-ipc-test-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    expect(() => new Coordinator({ config, data, checkpointDir: dir, ipcPath: '/x'.repeat(60) })).toThrow(ConfigError);
    expect(() => new Coordinator({ config, data, checkpointDir: dir, ipcPath: '/x'.repeat(60) })).toThrow(/ipcPath: expected a socket path of 1–100 bytes/);
    const c = new Coordinator({ config, data, checkpointDir: dir, observer: false, ipcPath: join(dir, 'missing', 'c.sock') });
    cleanup.push(() => c.close());
    await expect(c.start()).rejects.toThrow(/ipcPath: cannot listen on .*missing/);
  });

  it('a worker accepts a ws+unix URL and still refuses other schemes', () => {
    expect(() => worker('ws+unix:///tmp/x.sock:/')).not.toThrow();
    expect(() => worker('http://127.0.0.1:1')).toThrow(/expected ws:\/\/host:port, wss:\/\/host:port or ws\+unix:\/\/SOCKET_PATH:\//);
  });
});
