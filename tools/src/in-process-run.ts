import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeFinalCheckpoint, samplerStateAfter, writeFileAtomic } from '@dptrain/coordinator';
import { train } from '@dptrain/core';
import type { Progress } from './progress.js';
import type { RunPlan } from './run-options.js';

/** Train with core's train() in this process and write the same final checkpoint bytes a distributed run writes. */
export async function trainInProcess(plan: RunPlan, progress: Progress): Promise<number> {
  const { config } = plan;
  const t0 = performance.now();
  let epoch = 0;
  let samples = 0;
  const r = train({
    spec: config.model,
    data: plan.data.split,
    optimizer: config.optimizer,
    batchSize: config.batchSize,
    leafSize: config.leafSize,
    epochs: config.epochs,
    steps: config.steps,
    seed: config.seed,
    shuffle: config.shuffle,
    kernel: config.kernel,
    evalEvery: config.evalEvery,
    initParams: plan.initParams,
    onStep: (s) => {
      epoch = s.epoch;
      samples += s.samples;
      progress.step({ step: s.step, epoch: s.epoch, loss: s.loss, accuracy: s.accuracy, samples: s.samples, samplesPerSec: s.samplesPerSec, workers: 0 });
    },
    onEval: (step, e) => progress.eval({ step, epoch, loss: e.loss, accuracy: e.accuracy }),
    onEpoch: (e) => {
      if (e.test && (config.evalEvery === 0 || e.step % config.evalEvery !== 0)) progress.eval({ step: e.step, epoch: e.epoch, loss: e.test.loss, accuracy: e.test.accuracy });
    },
  });
  const bytes = encodeFinalCheckpoint({
    config,
    params: r.params,
    optimizer: r.optimizer.state,
    step: r.steps,
    epoch: r.epochs,
    sampler: samplerStateAfter(config, plan.data.split.train.n, r.steps),
  });
  await mkdir(plan.checkpointDir, { recursive: true });
  const path = join(plan.checkpointDir, 'final.safetensors');
  await writeFileAtomic(path, bytes);
  const wallMs = performance.now() - t0;
  progress.summary({
    runId: plan.runName,
    steps: r.steps,
    epochs: r.epochs,
    test: { loss: r.test.loss, accuracy: r.test.accuracy, samples: r.test.samples },
    checkpoint: path,
    wallMs,
    samplesPerSec: samples / (wallMs / 1000),
    workers: 0,
  });
  return 0;
}
