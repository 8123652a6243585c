import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../testing/cli-process.js';
import { chartPath, parseWorkerList } from './bench.js';

describe('parseWorkerList', () => {
  test('distinct counts in [1, 256], ascending', () => {
    expect(parseWorkerList('1,2,4')).toEqual([1, 2, 4]);
    expect(parseWorkerList(' 4, 1 ')).toEqual([1, 4]);
    expect(parseWorkerList('3')).toEqual([3]);
  });
  test.each(['', '1,x', '0,1', '1,,2', '1.5', '257', '-1', '1,2,2'])('%j is a ConfigError naming --workers', (text) => {
    expect(() => parseWorkerList(text)).toThrow(ConfigError);
    expect(() => parseWorkerList(text)).toThrow(/^--workers: /);
  });
});

describe('chartPath', () => {
  test('defaults to bench-<timestamp>.html; --out must be .svg or .html', () => {
    expect(chartPath(undefined, new Date('2026-01-02T03:04:05Z'))).toBe('bench-20260102T030405.html');
    expect(chartPath('x/y.SVG')).toBe('x/y.SVG');
    expect(chartPath('r.html')).toBe('r.html');
    expect(() => chartPath('r.png')).toThrow(/^--out: expected a file name ending in \.svg or \.html/);
  });
});

describe('dptrain bench (built CLI, real worker processes)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dptrain-bench-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  // 1,024 training samples: 8 full batches of 128, so every timed step has both workers
  const tiny = ['bench', '--data', 'spirals:1280', '--model', '2-16-2', '--steps', '5', '--warmup', '2', '--repeat', '1'];
  // the host ceiling in short windows (hidden flags; 2 s windows by default)
  const shortCeiling = ['--ceiling-ms', '200', '--ceiling-lead-ms', '600'];

  test('measures each worker count, prints the table and writes the default chart in the cwd', async () => {
    const r = await runCli([...tiny, ...shortCeiling, '--workers', '1,2'], { cwd: dir, timeoutMs: 50_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^workers\s+samples\/s\s+speed-up\s+host ceiling\s+efficiency\s+bytes\/worker\/step/);
    const row = (w: number) => lines.find((l) => new RegExp(`^${w}\\s+[\\d,]+ \\(`).test(l));
    // the baseline has no ceiling; 2 workers: speed-up, then the host ceiling of 2 processes
    expect(row(1)).toMatch(/\s1\.00×\s+—\s+1\.00\s/);
    expect(row(2)).toMatch(/\s\d+\.\d\d×\s+\d+\.\d\d×\s+\d+\.\d\d\s/);
    expect(r.stdout).toMatch(/\nhost ceiling: the best speed-up N workers can reach on this host before any communication .*whole batch of 128, 200 ms windows, median of 1\n/);
    const files = (await readdir(dir)).filter((f) => /^bench-\d{8}T\d{6}\.html$/.test(f));
    expect(files).toHaveLength(1);
    expect(r.stdout).toContain(`chart written to ${files[0]}`);
    const html = await readFile(join(dir, files[0]), 'utf8');
    expect([...html.matchAll(/<circle class="pt-sps"/g)]).toHaveLength(2);
    expect(html).toContain('2-16-2 on spirals:1280');
    expect(html).toContain('<th>host ceiling</th>');
    expect(html).toContain('<p>host ceiling: the best speed-up N workers can reach');
    // and the chart marks it for 2 workers (the 1-worker baseline has none)
    expect([...html.matchAll(/<path class="pt-ceiling"/g)]).toHaveLength(1);
    expect(html).toMatch(/>2 workers: host ceiling [\d.]+× one process = [\d,]+ samples\/s</);
  });

  test('--json prints one JSON object and writes an SVG to --out', async () => {
    const out = join(dir, 'chart.svg');
    // the default even split: one tree node per worker per step, so the byte counts below are exact
    const r = await runCli([...tiny, ...shortCeiling, '--workers', '2', '--out', out, '--json'], { timeoutMs: 50_000 });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ kind: 'bench', chart: out, options: { workers: [2], steps: 5, warmup: 2, repeat: 1 } });
    expect(j.rows).toHaveLength(1);
    expect(j.rows[0].summary).toMatchObject({ workers: 2, runs: 1 });
    // the host ceiling of the row: 2 processes at 64 rows (2 of the 4 leaves) against 1 at 128
    expect(j.options.ceiling).toEqual({ durationMs: 200, leadMs: 600 });
    const h = j.rows[0].ceiling;
    expect(h).toMatchObject({ processes: 2, shareRows: 64, alone: { n: 1 }, together: { n: 1 }, ratio: { n: 1 } });
    expect(h.ratio.median).toBeGreaterThan(0);
    expect(h.ratio.median).toBeCloseTo(h.together.median / h.alone.median, 10);
    expect(j.runs['2'][0]).toMatchObject({ workers: 2, timedSteps: 5, participants: { min: 2, max: 2 } });
    expect(j.runs['2'][0].rawBytesPerStep).toBe(2 * 2 * 4 * j.runs['2'][0].paramCount);
    // local workers: params and gradients through shared memory, the socket carries the rest
    expect(j.options).toMatchObject({ sharedMemory: true, balance: 'even' });
    for (const w of j.runs['2'][0].traffic) expect(w.shmSent).toBe(4 * j.runs['2'][0].paramCount);
    expect((await readFile(out, 'utf8')).startsWith('<?xml')).toBe(true);
  });

  test('times every step even when every step ends an epoch: no evaluation before the last step', async () => {
    // the whole training split (1,024 samples) in one batch: each step is an epoch's last
    const r = await runCli(['bench', '--data', 'spirals:1280', '--model', '2-16-2', '--batch-size', '1024', '--leaf-size', '256', '--steps', '3', '--warmup', '1', '--repeat', '1', '--workers', '1,2', '--no-ceiling', '--json', '--out', join(dir, 'epochs.svg')], { timeoutMs: 50_000 });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim());
    for (const w of ['1', '2']) expect(j.runs[w][0].timedSteps, `${w} worker(s)`).toBe(3);
  });

  test('--no-shm keeps the payloads on the socket; --balance speed is taken; --no-ceiling skips the ceiling', async () => {
    const out = join(dir, 'noshm.html');
    const r = await runCli([...tiny, '--workers', '2', '--out', out, '--json', '--no-shm', '--balance', 'speed', '--no-ceiling'], { timeoutMs: 50_000 });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.options).toMatchObject({ sharedMemory: false, balance: 'speed', ceiling: null });
    expect(j.rows[0].ceiling).toBeNull();
    // the page's table (the same cells as the printed one): the ceiling column is —
    const html = await readFile(out, 'utf8');
    expect(html).toMatch(/<td>2<\/td><td>[\d,]+ \([\d,–]+\)<\/td><td>1\.00×<\/td><td>—<\/td>/);
    expect(html).toContain('<p>host ceiling: not measured (--no-ceiling)</p>');
    expect(html).not.toContain('class="pt-ceiling"');
    const run = j.runs['2'][0];
    for (const w of run.traffic) {
      expect(w.shmSent).toBe(0);
      expect(w.sent).toBeGreaterThan(4 * run.paramCount);
    }
  });

  test.each([
    [['--workers', '1,x'], /--workers: expected a comma-separated list of worker counts/],
    [['--workers', '1,8', '--batch-size', '32', '--leaf-size', '8'], /--workers: each worker needs at least one leaf: a batch of 32 has 4 leaves of 8, got 8/],
    [['--out', 'chart.png'], /--out: expected a file name ending in \.svg or \.html/],
    [['--steps', '0'], /--steps: expected an integer in \[1, 1000000\]/],
    [['--balance', 'fair'], /--balance: expected even or speed, got "fair"/],
    [['--batch-size', '0'], /--batch-size: expected an integer in \[1, 1048576\], got 0/],
    [['--ceiling-ms', '0'], /--ceiling-ms: expected an integer in \[1, 600000\], got "0"/],
  ])('usage error %j exits 2 naming the flag', async (args, message) => {
    const r = await runCli([...tiny, ...(args as string[])], { cwd: dir });
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });
});
