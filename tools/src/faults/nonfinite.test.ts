import { existsSync } from 'node:fs';
import { decodeCheckpoint } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FaultLab, stepOfLine } from '../testing/fault-lab.js';

// NaN gradients from a worker (the test-only fault hook DPTRAIN_TEST_FAULT): the default
// policy stops the run naming the worker and the step; --non-finite skip recomputes the
// node elsewhere and the bytes are those of a clean run.
let shared: FaultLab;
let config: string;
let reference: Buffer;
beforeAll(async () => {
  shared = await FaultLab.create('faults-nan');
  config = await shared.config('run');
  reference = await shared.reference(config);
});
afterAll(async () => {
  await shared?.remove();
});

async function lab(onTestFinished: (fn: () => Promise<void>) => void): Promise<FaultLab> {
  const l = await FaultLab.create('faults-nan-t');
  onTestFinished(() => l.remove());
  return l;
}

const FAULT = { DPTRAIN_TEST_FAULT: 'nan-at-step:40@local-1' };

describe.concurrent('non-finite results', () => {
  test('default policy (stop): exit 1 naming the worker and the step; the last good state is checkpointed', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const t = l.start(['train', '--config', config, '--workers', '2', '--json', '--checkpoint-dir', l.path('run')], FAULT);
    expect(await t.exitWithin(60_000)).toBe(1);
    expect(t.stderr).toContain('[local-1] TEST FAULT HOOK ACTIVE');
    expect(t.stderr).toMatch(/error \(E_NONFINITE\): worker w\d \(local-1\) at step 40: reported E_NONFINITE: step 40, node \(\d+, \d+\): gradient\[0\] is NaN/);
    const last = l.path('run', 'latest.safetensors');
    expect(t.stderr).toContain(`the last good state (step 40) is in ${last}`);
    expect((decodeCheckpoint(await l.bytes('run', 'latest.safetensors')).training as { step: number }).step).toBe(40);
    expect(existsSync(l.path('run', 'final.safetensors'))).toBe(false);
    expect(Math.max(...t.lines.map((line) => stepOfLine(line) ?? 0))).toBe(40);
  });

  test('--non-finite skip: the bad node is recomputed elsewhere and the bytes equal the clean run', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const t = l.start(['train', '--config', config, '--workers', '2', '--json', '--non-finite', 'skip', '--checkpoint-dir', l.path('run')], FAULT);
    expect(await t.exitWithin(60_000), t.stderr).toBe(0);
    const errors = t.json().filter((e) => e.kind === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'E_NONFINITE', message: expect.stringMatching(/\(local-1\) at step 40: .*gradient\[0\] is NaN; dropped/) });
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });
});
