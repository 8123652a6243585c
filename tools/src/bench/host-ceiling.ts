/**
 * How much compute this host gives two processes at once: a worker's share of a step of
 * workload W (LeafComputer.setParams, then computeNode over the root of its leaves, as
 * `dptrain worker` does; no update, no sockets) in one process at batch 2B, against two
 * processes at batch B running at the same time over the same wall-clock window. The
 * ratio of their summed samples/s to the single process's is the best speed-up two
 * workers can reach on this host before any communication or coordinator cost.
 */
import { spawn } from 'node:child_process';
import { EpochSampler, type KernelName, LeafComputer, getKernels, initParams, leafCount, nextPow2 } from '@dptrain/core';
import { type Summary, W_SPEC, summarize, syntheticClassification } from './util.js';

/**
 * In this process: warm up, wait until `startAt` (ms since the epoch), then step W at
 * `batchSize` for `durationMs`; returns samples/s.
 */
export async function computeRate(batchSize: number, leafSize: number, kernel: KernelName, startAt: number, durationMs: number): Promise<number> {
  const data = syntheticClassification(Math.max(4096, 2 * batchSize), 784, 10, 1);
  const computer = new LeafComputer(W_SPEC, data, { leafSize, seed: 1, kernels: getKernels(kernel) });
  const params = initParams(W_SPEC, 1);
  const grad = new Float32Array(params.length);
  const sampler = new EpochSampler({ n: data.n, batchSize, seed: 2, shuffle: true });
  let step = 0;
  const t = {
    step(): void {
      const b = sampler.next();
      const L = leafCount(b.indices.length, leafSize);
      computer.setParams(params);
      computer.computeNode({ step: step++, leafCount: L, batchSize: b.indices.length, indices: b.indices, indexBase: 0 }, { lo: 0, size: nextPow2(L) }, grad);
    },
  };
  for (let i = 0; i < 5; i++) t.step();
  const wait = startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  let steps = 0;
  while (performance.now() - t0 < durationMs) {
    t.step();
    steps++;
  }
  return (steps * batchSize * 1000) / (performance.now() - t0);
}

/** Run `node script ...args` and parse its stdout as JSON. */
function spawnJson<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${script} ${args.join(' ')} exited with ${code}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch (e) {
        reject(e);
      }
    });
  });
}

export interface HostCeiling {
  batchSize: number;
  /** One process at 2 × batchSize, samples/s. */
  alone: Summary;
  /** Two processes at batchSize at once, summed samples/s. */
  pair: Summary;
  /** pair / alone, per repeat. */
  ratio: Summary;
}

/**
 * Measure the ceiling `repeat` times (fresh processes each time). `script` must run
 * computeRate when given `--ceiling-batch B --ceiling-start T --ceiling-ms D` (and
 * `--leaf`) and print `{ "samplesPerSec": x }`.
 */
export async function hostCeiling(script: string, batchSize: number, leafSize: number, repeat: number, durationMs = 2000, extraArgs: string[] = []): Promise<HostCeiling> {
  const alone: number[] = [];
  const pair: number[] = [];
  const run = (b: number, startAt: number) =>
    spawnJson<{ samplesPerSec: number }>(script, ['--ceiling-batch', String(b), '--ceiling-start', String(startAt), '--ceiling-ms', String(durationMs), '--leaf', String(leafSize), ...extraArgs]).then((r) => r.samplesPerSec);
  for (let i = 0; i < repeat; i++) {
    alone.push(await run(2 * batchSize, Date.now() + 2000));
    const start = Date.now() + 2000;
    const [a, b] = await Promise.all([run(batchSize, start), run(batchSize, start)]);
    pair.push(a + b);
  }
  return { batchSize, alone: summarize(alone), pair: summarize(pair), ratio: summarize(pair.map((p, i) => p / alone[i])) };
}
