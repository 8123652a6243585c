import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli } from '../testing/cli-process.js';
import { jsonLines, LineProcess, until } from './process-helpers.js';

/**
 * The dashboard of a real run, in headless Chromium: `dptrain coordinator` waiting for two
 * `dptrain worker` processes, MNIST on a 784-256-10 net. The loss chart grows, the workers
 * table shows both workers with live figures; one worker is SIGKILLed mid-step: the table
 * marks it dead, the log records the death and the reassignment of its leaves, and the run
 * finishes with no console error.
 */
const CHROMIUM = '/usr/bin/chromium';
const DIST = fileURLToPath(new URL('../../../apps/dashboard/dist/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const STEPS = 150;
const KILL_AT = 40;
const RUN = ['--data', 'mnist', '--model', '784-256-10', '--batch-size', '128', '--leaf-size', '32', '--steps', String(STEPS), '--eval-every', '20', '--seed', '3'];

let browser: Browser | undefined;
let dir = '';
const procs: LineProcess[] = [];

/** Console errors and warnings, page errors, failed requests; `at` = ms since the page opened. */
interface Problem {
  at: number;
  text: string;
}

function watch(page: Page, problems: Problem[]): void {
  const t0 = Date.now();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push({ at: Date.now() - t0, text: `console.${m.type()}: ${m.text()}` });
  });
  page.on('pageerror', (err) => problems.push({ at: Date.now() - t0, text: `page error: ${err.message}` }));
  page.on('requestfailed', (r) => problems.push({ at: Date.now() - t0, text: `request failed: ${r.url()} ${r.failure()?.errorText ?? ''}` }));
}

/** The workers table as data: id, state, class and cell texts. */
function workerRows(page: Page): Promise<{ id: string; state: string; cls: string; cells: string[] }[]> {
  return page.$$eval('#workers tbody tr[data-worker]', (trs) =>
    trs.map((tr) => {
      const e = tr as HTMLElement;
      return { id: e.dataset.worker ?? '', state: e.dataset.state ?? '', cls: e.className, cells: [...e.querySelectorAll('td')].map((td) => td.textContent ?? '') };
    }),
  );
}

/** Points of the training-loss line. */
async function lossPoints(page: Page): Promise<number> {
  return (await seriesPoints(page))[0];
}

/** Points per line of the loss chart: [train, test]. */
async function seriesPoints(page: Page): Promise<number[]> {
  const attr = await page.getAttribute('#chart-loss', 'data-series-points');
  return (attr ?? '0,0').split(',').map(Number);
}

/** A figure like "12.3 ms", "0.42 ms", "1.25 s", "812/s", "1.23k/s" as a number (NaN if it is none). */
function figure(text: string): number {
  const m = /^(-?\d+(?:\.\d+)?)(k|M)?/.exec(text.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'M' ? 1e6 : 1);
}

/** A heartbeat age cell ("just now", "3 s ago", "1 min 05 s ago") in seconds (Infinity if it is none). */
function ageSec(text: string): number {
  const t = text.trim();
  if (t === 'just now') return 0;
  const m = /^(\d+) s ago$/.exec(t);
  return m ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); this test does not skip`);
  if (!existsSync(DIST + 'index.html')) throw new Error(`the dashboard is not built (${DIST}index.html missing): run "npx nx run-many -t build" first`);
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'dptrain-dash-run-'));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(procs.map((p) => p.stop(1500)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('dashboard of a real run', () => {
  it('charts grow, workers show live figures, a killed worker is marked dead and its leaves reassigned, the run finishes', async () => {
    const t0 = Date.now();
    const env = { ...process.env };
    delete env.DPTRAIN_TOKEN;
    const cli = requireBuiltCli();
    const coord = new LineProcess('coordinator', process.execPath, [cli, 'coordinator', '--json', ...RUN, '--min-workers', '2', '--step-timeout', '3000', '--checkpoint-dir', join(dir, 'run')], { env });
    procs.push(coord);
    const url = JSON.parse(await coord.waitLine('stdout', (l) => l.includes('"listening"'), 'listening line', 20_000)).url as string;
    const dashLine = await coord.waitLine('stderr', (l) => /dashboard: https?:\/\//.test(l), '"dashboard: http://..." line', 5_000);
    const dashboard = /dashboard: (https?:\/\/\S+)/.exec(dashLine)![1];
    expect(new URL(dashboard).port).toBe(new URL(url).port);
    expect(new URL(dashboard).hostname).toBe('127.0.0.1');
    expect(JSON.parse(await coord.waitLine('stdout', (l) => l.includes('"dashboard"'), 'JSON dashboard line', 5_000)).url).toBe(dashboard);

    const problems: Problem[] = [];
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    watch(page, problems);
    const res = await page.goto(dashboard);
    expect(res?.status()).toBe(200);
    await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', null, { timeout: 10_000 });

    const workers = [1, 2].map((i) => {
      const p = new LineProcess(`worker ${i}`, process.execPath, [cli, 'worker', '--connect', url, '--name', `dash-w${i}`, '--max-retries', '0'], { env });
      procs.push(p);
      return p;
    });
    // "worker w1 (dash-w1 on HOST, pid N) joined": the coordinator's id of each worker process
    const ids: string[] = [];
    for (const [i, w] of workers.entries()) {
      const line = await coord.waitLine('stderr', (l) => l.includes(`(dash-w${i + 1} on `) && / joined/.test(l), `dash-w${i + 1} joining`, 15_000);
      expect(line).toContain(`pid ${w.pid})`);
      ids.push(/worker (\S+) \(/.exec(line)![1]);
    }
    expect(new Set(ids).size).toBe(2);

    // the loss chart gains points over time
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#chart-loss')?.dataset.seriesPoints?.split(',')[0] ?? 0) >= 3, null, { timeout: 20_000 });
    const before = await lossPoints(page);
    await new Promise((r) => setTimeout(r, 1500));
    const after = await lossPoints(page);
    expect(after).toBeGreaterThan(before);
    expect(await page.locator('#chart-loss canvas').count()).toBe(1);

    // both workers listed, working, with live figures: compute ms and samples/s of the last
    // step, a heartbeat a few seconds old at most (cells: id, host, state, leaves, compute,
    // samples/s, bytes in, bytes out, last heartbeat)
    const live = async () => {
      const rows = await workerRows(page);
      const ok = ids.every((id) => {
        const r = rows.find((x) => x.id === id);
        return r !== undefined && (r.state === 'busy' || r.state === 'idle') && figure(r.cells[4]) > 0 && figure(r.cells[5]) > 0 && ageSec(r.cells[8]) <= 3;
      });
      return { ok, rows };
    };
    let seen = await live();
    const liveDeadline = Date.now() + 6000;
    while (!seen.ok && Date.now() < liveDeadline) {
      await new Promise((r) => setTimeout(r, 250));
      seen = await live();
    }
    expect(seen.rows.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(seen.ok, `workers table without live figures (busy/idle, compute ms and samples/s > 0, heartbeat <= 3 s old) for ${ids.join(', ')}: ${JSON.stringify(seen.rows)}`).toBe(true);
    // and the figures move: the table is redrawn from a workers event after every step
    const figureCells = async () => (await workerRows(page)).map((r) => r.cells.slice(4, 8).join('|')).join(' / ');
    const cellsBefore = await figureCells();
    await page.waitForFunction(
      (before) => [...document.querySelectorAll('#workers tbody tr[data-worker]')].map((tr) => [...tr.querySelectorAll('td')].slice(4, 8).map((td) => td.textContent ?? '').join('|')).join(' / ') !== before,
      cellsBefore,
      { timeout: 5_000 },
    );

    // SIGKILL the second worker just after a step completed, so it is in the middle of its next task
    const stepsDone = () => jsonLines(coord.stdout).filter((e) => e.kind === 'step').length;
    await until(() => stepsDone() >= KILL_AT, () => `step ${KILL_AT} (at ${stepsDone()})\n${coord.output()}`, 20_000);
    const n = stepsDone();
    await until(() => stepsDone() > n, () => `one more step\n${coord.output()}`, 10_000);
    const [victim, survivor] = [ids[1], ids[0]];
    process.kill(workers[1].pid, 'SIGKILL');
    const killedAtStep = stepsDone();
    expect((await workers[1].waitExit(5000))?.signal).toBe('SIGKILL');

    await page.waitForFunction((id) => document.querySelector<HTMLElement>(`#workers tr[data-worker="${id}"]`)?.dataset.state === 'dead', victim, { timeout: 15_000 });
    const deadRow = (await workerRows(page)).find((r) => r.id === victim)!;
    expect(deadRow.cls).toContain('dead');
    expect(deadRow.cells[0]).toContain('dead');
    await page.waitForFunction(
      ([dead, to]) => [...document.querySelectorAll('#log li[data-kind=reassigned]')].some((li) => (li.textContent ?? '').includes(`reassigned from ${dead} to ${to}`)),
      [victim, survivor] as const,
      { timeout: 10_000 },
    );
    const log = await page.$$eval('#log li', (lis) => lis.map((li) => ({ kind: (li as HTMLElement).dataset.kind, text: li.textContent ?? '' })));
    expect(log.some((l) => l.kind === 'worker_dead' && l.text.includes(`worker ${victim} died`))).toBe(true);
    expect((await workerRows(page)).find((r) => r.id === survivor)?.state).not.toBe('dead');

    // the run finishes, on the page too
    await page.waitForFunction(() => document.getElementById('run-status')?.textContent === 'finished', null, { timeout: 40_000 });
    const problemsAtFinish = problems.map((p) => p.text);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: ARTIFACTS + 'dashboard-run.png', fullPage: true });
    expect(await page.textContent('#kpi-step')).toBe(`${STEPS} / ${STEPS}`);
    expect(await lossPoints(page)).toBe(STEPS);
    // the test line ends with the final evaluation (step STEPS), not at the last periodic one
    const evalSteps = jsonLines(coord.stdout).filter((e) => e.kind === 'eval').map((e) => e.step as number);
    expect(evalSteps.at(-1)).toBe(STEPS);
    expect(evalSteps.filter((s) => s % 20 === 0 && s < STEPS).length).toBe(Math.floor((STEPS - 1) / 20));
    expect((await seriesPoints(page))[1]).toBe(new Set(evalSteps).size);
    expect(Number((await page.textContent('#kpi-acc'))?.replace(/[^\d.]/g, ''))).toBeGreaterThan(80);
    const finalLog = await page.$$eval('#log li', (lis) => lis.map((li) => (li as HTMLElement).dataset.kind));
    expect(finalLog[0]).toBe('run_finished');

    const summary = JSON.parse(await coord.waitLine('stdout', (l) => l.includes('"summary"'), 'summary line', 10_000));
    expect(summary.steps).toBe(STEPS);
    expect((await coord.waitExit(10_000))?.code, coord.output()).toBe(0);
    expect((await workers[0].waitExit(10_000))?.code, workers[0].output()).toBe(0);
    expect(existsSync(join(dir, 'run', 'final.safetensors'))).toBe(true);

    // no console error while the run was served; once the coordinator has exited, the page's reconnect attempts may log failed WebSocket connections
    expect(problemsAtFinish).toEqual([]);
    expect(problems.map((p) => p.text).filter((t) => !/WebSocket connection to .*\/events.* failed/.test(t))).toEqual([]);
    await page.close();
    console.log(
      `[dashboard e2e] ${STEPS} steps; loss points ${before} -> ${after} in 1.5 s; killed ${victim} (pid ${workers[1].pid}) at step ${killedAtStep};` +
        ` finished ${Date.now() - t0} ms after start; ${summary.samplesPerSec?.toFixed?.(0)} samples/s; workers table: ${JSON.stringify(seen.rows.map((r) => r.cells.slice(0, 6)))}`,
    );
  }, 45_000);
});
