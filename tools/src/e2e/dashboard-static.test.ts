import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startObserverServer, syntheticRun, type ObserverServer } from '@dptrain/coordinator';

/**
 * The built dashboard alone, in headless Chromium: served by the coordinator's HTTP
 * modules with a synthetic event sequence (no training), behind a token.
 */
const CHROMIUM = '/usr/bin/chromium';
const DIST = fileURLToPath(new URL('../../../apps/dashboard/dist/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const TOKEN = 'e2e-token';
const STEPS = 60;

let browser: Browser | undefined;
let srv: ObserverServer | undefined;
const problems: string[] = [];

function watch(page: Page): void {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); this test does not skip`);
  if (!existsSync(DIST + 'index.html')) throw new Error(`the dashboard is not built (${DIST}index.html missing): run "npm run build -w apps/dashboard" first`);
  srv = await startObserverServer({ staticDir: DIST, token: TOKEN });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});

afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

describe('dashboard page (static, synthetic events)', () => {
  it('shows history and live events: charts, workers, dead worker, reassignment, no console errors', async () => {
    const run = syntheticRun({ steps: STEPS, workers: 3, deathAt: 30, clock: Date.now() });
    const cut = run.findIndex((e) => e.kind === 'step' && e.step === 40);
    for (const e of run.slice(0, cut)) srv!.hub.emit(e);

    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    watch(page);
    await page.goto(`${srv!.url}/?token=${TOKEN}`);
    // history: 39 steps arrive on connect
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#chart-loss')?.dataset.seriesPoints?.split(',')[0] === '39', null, { timeout: 10_000 });
    // at step 39, w2 straggled 5 steps ago (step 34) and w3 is dead
    const marks = await page.$$eval('#workers tbody tr', (trs) => trs.map((tr) => `${(tr as HTMLElement).dataset.worker}:${(tr as HTMLElement).dataset.state}:${(tr as HTMLElement).dataset.straggler ?? '-'}`));
    expect(marks).toEqual(['w1:busy:-', 'w2:busy:true', 'w3:dead:-']);
    expect(await page.locator('#workers tr.straggler .tag-straggler').count()).toBe(1);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: ARTIFACTS + 'dashboard-running.png' });
    // live: the rest of the run
    for (const e of run.slice(cut)) srv!.hub.emit(e);
    await page.waitForFunction((n) => document.querySelector<HTMLElement>('#chart-loss')?.dataset.seriesPoints === `${n},${n / 10}`, STEPS, { timeout: 10_000 });
    await page.waitForFunction(() => document.getElementById('run-status')?.textContent === 'finished', null, { timeout: 10_000 });

    const plotted = await page.evaluate(() => {
      const d = window.__dptrain!.charts.loss.plot.data;
      return { x: d[0].length, train: d[1].filter((v) => v !== null && v !== undefined).length, test: d[2].filter((v) => v !== null && v !== undefined).length };
    });
    expect(plotted).toEqual({ x: STEPS, train: STEPS, test: STEPS / 10 });
    expect(await page.getAttribute('#chart-rate', 'data-series-points')).toBe(String(STEPS));
    expect(await page.getAttribute('#chart-phases', 'data-series-points')).toBe(Array(5).fill(STEPS).join(','));
    expect(await page.locator('#chart-loss canvas').count()).toBe(1);
    expect(await page.locator('.chart .empty:visible').count()).toBe(0);
    const legend = await page.$$eval('#chart-loss .u-legend .u-value', (els) => els.map((e) => e.textContent));
    expect(legend).toEqual([String(STEPS), expect.stringMatching(/^0\.\d+$/), expect.stringMatching(/^0\.\d+$/)]);

    const rows = await page.$$eval('#workers tbody tr', (trs) =>
      trs.map((tr) => ({ id: (tr as HTMLElement).dataset.worker, cls: tr.className, cells: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '') })),
    );
    expect(rows.map((r) => r.id)).toEqual(['w1', 'w2', 'w3']);
    const w1 = rows[0].cells;
    // the host, tagged "shm" for the worker on the coordinator's host
    expect(w1[1]).toBe('node-1.localshm');
    expect(rows[1].cells[1]).toBe('node-2.local');
    expect(await page.locator('#workers tr[data-worker="w1"] .tag-shm').getAttribute('title')).toMatch(/shared memory/);
    expect(await page.locator('#workers .tag-shm').count()).toBe(1);
    expect(w1[2]).toBe('busy');
    expect(w1[3]).toBe('4');
    expect(w1[4]).toMatch(/^\d+(\.\d+)? ms$/);
    expect(w1[5]).toMatch(/\/s$/);
    expect(w1[7]).toMatch(/KiB$/);
    expect(w1[8]).toMatch(/^(just now|\d+ s ago)$/);
    expect(rows[2].cls).toContain('dead');
    expect(rows[2].cells[0]).toContain('dead');
    expect(rows[2].cells[2]).toContain('heartbeat timeout');

    const log = await page.$$eval('#log li', (lis) => lis.map((li) => ({ kind: (li as HTMLElement).dataset.kind, text: li.textContent ?? '' })));
    expect(log.some((l) => l.kind === 'reassigned' && l.text.includes('reassigned from w3 to w1'))).toBe(true);
    expect(log.some((l) => l.kind === 'worker_dead' && l.text.includes('w3 died'))).toBe(true);
    expect(log[0].kind).toBe('run_finished');
    expect(await page.textContent('#kpi-step')).toBe(`${STEPS} / ${STEPS}`);
    expect(await page.textContent('#run-info')).toContain('runs/synthetic/final.safetensors');

    await page.screenshot({ path: ARTIFACTS + 'dashboard.png', fullPage: true });

    // a phone: one column, nothing wider than the screen, charts resized to fit
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => window.__dptrain!.charts.loss.plot.width <= 390, null, { timeout: 5_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: ARTIFACTS + 'dashboard-phone.png', fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  });

  it('reconnects when the coordinator restarts and shows the new run instead of mixing the two', async () => {
    const first = await startObserverServer({ staticDir: DIST });
    const port = Number(new URL(first.url).port);
    for (const e of syntheticRun({ steps: 20, finish: false })) first.hub.emit(e);
    const page = await browser!.newPage({ viewport: { width: 1024, height: 768 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (m) => {
      // a retry that hits the port while nothing listens is logged by Chromium itself
      if (m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text())) errors.push(m.text());
    });
    await page.goto(first.url + '/');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#chart-loss')?.dataset.seriesPoints?.startsWith('20,'), null, { timeout: 10_000 });
    await first.close();
    await page.waitForFunction(() => /reconnecting/.test(document.getElementById('conn')?.textContent ?? ''), null, { timeout: 10_000 });
    const second = await startObserverServer({ staticDir: DIST, port });
    try {
      for (const e of syntheticRun({ steps: 7, finish: false })) second.hub.emit(e);
      await page.waitForFunction(() => document.querySelector<HTMLElement>('#chart-loss')?.dataset.seriesPoints === '7,1', null, { timeout: 15_000 });
      expect(await page.textContent('#conn')).toBe('live');
      expect(await page.$$eval('#log li[data-kind=run_started]', (l) => l.length)).toBe(1);
      second.hub.emit({ kind: 'run_finished', step: 7 });
      await page.waitForFunction(() => document.getElementById('run-status')?.textContent === 'finished', null, { timeout: 10_000 });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await second.close();
    }
  });

  it('keeps the page and the stream closed without the token', async () => {
    const page = await browser!.newPage();
    const res = await page.goto(srv!.url + '/');
    expect(res?.status()).toBe(401);
    await page.close();
  });
});
