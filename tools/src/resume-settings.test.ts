import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFinalCheckpoint } from '@dptrain/coordinator';
import { createOptimizerState, initParams, paramLayout, parseModelShorthand, validateRunConfig } from '@dptrain/core';
import { afterAll, expect, test } from 'vitest';
import { resumeDir, resumeSettings, settingsOf } from './resume-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'dptrain-resume-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = validateRunConfig({
  model: parseModelShorthand('2-5-3'),
  data: 'blobs:300',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 16,
  leafSize: 4,
  epochs: 2,
  steps: 7,
  seed: 9,
  shuffle: false,
  evalEvery: 3,
});
const bytes = encodeFinalCheckpoint({
  config,
  params: initParams(config.model, 1),
  optimizer: createOptimizerState(config.optimizer, paramLayout(config.model).total),
  step: 0,
  epoch: 0,
  sampler: { epoch: 0, cursor: 0 },
});

test('a checkpoint gives back the settings of its run', async () => {
  writeFileSync(join(dir, 'one.safetensors'), bytes);
  const s = await resumeSettings(join(dir, 'one.safetensors'));
  expect(s).toEqual(settingsOf(config));
  expect(s).toMatchObject({ data: 'blobs:300', batchSize: 16, leafSize: 4, steps: 7, seed: 9, shuffle: false, evalEvery: 3, optimizer: config.optimizer, model: config.model });
  expect(resumeDir(join(dir, 'one.safetensors'))).toBe(dir);
});

test('a run directory: latest, else (damaged or missing) previous, else final; none usable names every file', async () => {
  const run = join(dir, 'run');
  const empty = join(dir, 'empty');
  mkdirSync(run);
  mkdirSync(empty);
  writeFileSync(join(run, 'latest.safetensors'), 'damaged');
  writeFileSync(join(run, 'previous.safetensors'), bytes);
  expect((await resumeSettings(run)).seed).toBe(9);
  expect(resumeDir(run)).toBe(run);
  await expect(resumeSettings(empty)).rejects.toThrow(/^resume: no usable checkpoint: .*latest\.safetensors: ENOENT; .*previous\.safetensors: ENOENT; .*final\.safetensors: ENOENT$/);
  await expect(resumeSettings(join(dir, 'missing'))).rejects.toThrow(/^resume: cannot read .*missing: ENOENT$/);
});
