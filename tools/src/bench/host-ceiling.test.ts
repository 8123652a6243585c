import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, type KernelName, type ModelSpec, parseModelShorthand } from '@dptrain/core';
import { beforeAll, describe, expect, test } from 'vitest';
import { childExecArgv, computeRate, hostCeiling, largestShare } from './host-ceiling.js';

/** The built child (tools tests run against tools/dist, as the CLI tests do). */
const BUILT_CHILD = fileURLToPath(new URL('../../dist/bench/ceiling-child.js', import.meta.url));
const TINY = parseModelShorthand('4-8-3');
const base = { spec: TINY, leafSize: 16, kernel: 'js' as KernelName, childScript: BUILT_CHILD, durationMs: 200, leadMs: 500 };

describe('computeRate', () => {
  test.each([
    ['softmax output', TINY],
    ['one sigmoid output', parseModelShorthand('4-8-1')],
  ])('%s: a positive finite samples/s', async (_, spec: ModelSpec) => {
    const t0 = performance.now();
    const r = await computeRate({ spec, leafSize: 16, kernel: 'js', batchSize: 64, startAt: Date.now(), durationMs: 200 });
    expect(r).toBeGreaterThan(0);
    expect(Number.isFinite(r)).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
  });
});

describe('largestShare', () => {
  test('whole leaves of the largest even share, at most the batch', () => {
    expect(largestShare(512, 32, 2)).toBe(256);
    expect(largestShare(160, 32, 2)).toBe(96); // 5 leaves: 3 + 2
    expect(largestShare(70, 32, 2)).toBe(64); // 3 leaves, the last partial: 2 + 1
    expect(largestShare(20, 32, 2)).toBe(20);
  });
});

describe('childExecArgv', () => {
  test("keeps this process's node options but not code to run instead of the child's script", () => {
    expect(childExecArgv(['--experimental-wasm-relaxed-simd', '--conditions', 'node'])).toEqual(['--experimental-wasm-relaxed-simd', '--conditions', 'node']);
    expect(childExecArgv(['--input-type=module', '-e', 'code()', '--stack-size=2000'])).toEqual(['--stack-size=2000']);
    expect(childExecArgv(['-pe', 'code()', '--eval=code()', '--print', 'x', '-i', '--max-old-space-size=512'])).toEqual(['--max-old-space-size=512']);
  });
});

describe('hostCeiling (built child, real processes)', () => {
  beforeAll(() => {
    if (!existsSync(BUILT_CHILD)) throw new Error(`${BUILT_CHILD} does not exist: build first (cd /work/main && npx tsc -b tools)`);
  });

  test('per process count: alone (measured once per repeat), together and a finite ratio', async () => {
    const h = await hostCeiling({ ...base, batchSize: 128, processes: [2, 3], repeat: 1 });
    expect(h).toMatchObject({ batchSize: 128, leafSize: 16, kernel: 'js', durationMs: 200, repeat: 1 });
    expect(h.points.map((p) => [p.processes, p.shareRows])).toEqual([[2, 64], [3, 48]]);
    for (const p of h.points) {
      expect(p.alone).toEqual(h.points[0].alone);
      expect(p.together.n).toBe(1);
      expect(p.ratio.n).toBe(1);
      expect(Number.isFinite(p.ratio.median) && p.ratio.median > 0).toBe(true);
      expect(p.ratio.median).toBeCloseTo(p.together.median / p.alone.median, 10);
    }
  });

  test('a failing child rejects naming it', async () => {
    await expect(hostCeiling({ ...base, kernel: 'gpu' as KernelName, batchSize: 64, processes: [2], repeat: 1 })).rejects.toThrow(/host ceiling child \(64 rows per step, gpu\) exited with 2/);
  });

  test('refuses process counts below 2', async () => {
    await expect(hostCeiling({ ...base, batchSize: 64, processes: [1, 2], repeat: 1 })).rejects.toThrow(ConfigError);
    await expect(hostCeiling({ ...base, batchSize: 64, processes: [], repeat: 1 })).rejects.toThrow(/^processes: expected one or more integers >= 2/);
  });
});

describe('ceiling-child', () => {
  const good = { spec: TINY, leafSize: 16, kernel: 'js', batchSize: 32, startAt: 0, durationMs: 50 };
  const run = (arg: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = execFile(process.execPath, [BUILT_CHILD, arg], { timeout: 30_000 }, (_e, stdout, stderr) => resolve({ code: p.exitCode, stdout, stderr }));
    });

  test('prints {"samplesPerSec": x} for a good job', async () => {
    const r = await run(JSON.stringify(good));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).samplesPerSec).toBeGreaterThan(0);
  });

  test.each([
    ['missing spec', { ...good, spec: undefined }, /spec: expected a model spec/],
    ['a bad layer', { ...good, spec: { ...TINY, layers: [] } }, /spec\.layers: expected an array of 1 to 64 layers/],
    ['batchSize 0', { ...good, batchSize: 0 }, /batchSize: expected an integer in \[1, 1048576\], got 0/],
    ['an unknown kernel', { ...good, kernel: 'gpu' }, /kernel: expected one of js, wasm, wasm-fma, got "gpu"/],
    ['no durationMs', { ...good, durationMs: undefined }, /durationMs: expected an integer in \[1, 600000\], got nothing/],
  ])('refuses %s: exit 2, stderr names the field', async (_, job, message) => {
    const r = await run(JSON.stringify(job));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  test('refuses an argument that is not JSON', async () => {
    const r = await run('{spec');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/job: expected one JSON object argument/);
  });
});
