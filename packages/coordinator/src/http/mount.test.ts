import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobs, splitDataset, validateRunConfig } from '@dptrain/core';
import type { RunEvent } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Coordinator } from '../server.js';
import { mountObserver } from './mount.js';

describe('mountObserver on a real Coordinator', () => {
  it('serves /api/run, /metrics and /events (with the token) next to the worker endpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dptrain-mount-'));
    const config = validateRunConfig({
      model: { inputSize: 2, layers: [{ units: 4, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
      data: 'blobs:100',
      optimizer: { name: 'sgd', lr: 0.1 },
      batchSize: 8,
      leafSize: 4,
      steps: 3,
    });
    const coord = new Coordinator({ config, data: splitDataset(blobs(100, { seed: 1, centers: 3 }), { testCount: 20 }), checkpointDir: dir, runId: 'mount-test' });
    const obs = mountObserver(coord, { token: 'tk', staticDir: join(dir, 'no-dashboard') });
    try {
      const { port } = await coord.start();
      const base = `http://127.0.0.1:${port}`;
      const auth = { headers: { Authorization: 'Bearer tk' } };
      expect((await fetch(base + '/api/run')).status).toBe(401);
      const run = (await (await fetch(base + '/api/run', auth)).json()) as Record<string, unknown>;
      expect(JSON.stringify(run)).toContain('mount-test');
      const metrics = await (await fetch(base + '/metrics', auth)).text();
      expect(metrics).toContain('dptrain_run_info{run_id="mount-test"} 1');
      expect(metrics).toContain('dptrain_param_count 27');
      expect((await fetch(base + '/?token=tk')).status).toBe(503);
      const first = await new Promise<RunEvent>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/events?token=tk`);
        ws.on('message', (d) => {
          resolve((JSON.parse(String(d)) as RunEvent[])[0]);
          ws.close();
        });
        ws.on('error', reject);
      });
      expect(first).toMatchObject({ seq: 0, kind: 'run_started', runId: 'mount-test', paramCount: 27 });
      expect(obs.stream.clientCount()).toBeLessThanOrEqual(1);
    } finally {
      obs.unmount();
      await coord.close();
      coord.done().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});
