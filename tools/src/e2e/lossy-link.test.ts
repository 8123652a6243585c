import { Rng } from '@dptrain/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireBuiltCli } from '../testing/cli-process.js';
import { LossyProxy } from './lossy-proxy.js';
import { finalCheckpointDifference, jsonLines, LineProcess, until } from './process-helpers.js';

/**
 * A lossy network without kernel support (no sch_netem needed): each worker reaches the
 * coordinator through a userspace relay that delays every chunk 10–40 ms, resets the
 * connection on a seeded schedule (the worker reconnects by itself, its leaves move on),
 * and finally cuts one worker's link for good. The run completes and its final checkpoint
 * is byte-identical to the same run trained in one process.
 */
const SEED = 20261127;
const STEPS = 200;
const RESETS = 3;
const CUT_AT = Math.round(STEPS * 0.7);
const ARGS = ['--data', 'spirals:800', '--model', '2-32-32-2', '--batch-size', '64', '--leaf-size', '8', '--seed', '7', '--steps', String(STEPS)];
const NAMES = ['lossy-w1', 'lossy-w2'];

const dir = mkdtempSync(join(tmpdir(), 'dptrain-lossy-'));
const procs: LineProcess[] = [];
const proxies: LossyProxy[] = [];

function cli(label: string, args: string[]): LineProcess {
  const p = new LineProcess(label, process.execPath, [requireBuiltCli(), ...args]);
  procs.push(p);
  return p;
}

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop(1500)));
  await Promise.all(proxies.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** A seeded schedule of resets: sorted distinct steps in [15%, 60%] of the run, each on a random relay. */
function resetSchedule(rng: Rng): { step: number; relay: number }[] {
  const lo = Math.round(STEPS * 0.15);
  const span = Math.round(STEPS * 0.45);
  const steps = new Set<number>();
  for (let i = 0; i < 100 && steps.size < RESETS; i++) steps.add(lo + rng.nextInt(span));
  return [...steps].sort((a, b) => a - b).map((step) => ({ step, relay: rng.nextInt(2) }));
}

describe('lossy links (userspace delay + reset relay)', () => {
  it('the relay delays both directions by 10–40 ms, keeps order, and reset() / cut() drop connections', async () => {
    const echo = createServer((s) => s.on('error', () => {}).pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    try {
      const proxy = await LossyProxy.start({ targetPort: (echo.address() as { port: number }).port, seed: 1 });
      proxies.push(proxy);
      const client = new Socket();
      await new Promise<void>((r) => client.connect(proxy.port, '127.0.0.1', () => r()));
      let got = '';
      client.on('data', (d) => (got += d));
      const want = Array.from({ length: 40 }, (_, i) => `<${i}>`).join('');
      const t0 = Date.now();
      client.write('<0>');
      await until(() => got.length >= 3, () => 'the first echo', 2000);
      const rtt = Date.now() - t0;
      expect(rtt, 'round trip through the relay').toBeGreaterThanOrEqual(19);
      for (let i = 1; i < 40; i++) {
        client.write(`<${i}>`);
        await new Promise((r) => setTimeout(r, 2));
      }
      await until(() => got.length >= want.length, () => `the echoes (got ${got.length} of ${want.length} chars)`, 3000);
      expect(got).toBe(want);
      expect(proxy.open).toBe(1);
      const closed = new Promise<void>((r) => client.on('close', () => r()));
      client.on('error', () => {});
      expect(proxy.reset()).toBe(1);
      await closed;
      proxy.cut();
      const again = new Socket();
      again.on('error', () => {});
      const refused = new Promise<void>((r) => again.on('close', () => r()));
      again.connect(proxy.port, '127.0.0.1');
      await refused;
      expect(proxy.refused).toBe(1);
      expect(proxy.accepted).toBe(1);
    } finally {
      await new Promise((r) => echo.close(r));
    }
  }, 10_000);

  it('delay, seeded resets and a cut link: workers reconnect, leaves move on, the checkpoint equals a one-process run', async () => {
    const t0 = Date.now();
    const rng = new Rng(SEED);
    const schedule = resetSchedule(rng);
    expect(schedule.length).toBe(RESETS);

    const reference = cli('reference', ['train', '--json', ...ARGS, '--workers', '0', '--checkpoint-dir', join(dir, 'ref')]);
    const coord = cli('coordinator', ['coordinator', '--json', ...ARGS, '--host', '127.0.0.1', '--port', '0', '--min-workers', '2', '--step-timeout', '1000', '--checkpoint-dir', join(dir, 'dist')]);
    const url = JSON.parse(await coord.waitLine('stdout', (l) => l.includes('"listening"'), 'listening line', 15_000)).url as string;
    const port = Number(/:(\d+)/.exec(url.replace(/^ws:\/\//, ''))?.[1]);
    expect(port).toBeGreaterThan(0);

    const relays: LossyProxy[] = [];
    for (let i = 0; i < 2; i++) relays.push(await LossyProxy.start({ targetPort: port, seed: rng.nextInt(2 ** 31) }));
    proxies.push(...relays);
    // --no-shm: the relays stand for remote links, so the payloads must cross them (on this
    // host the workers would otherwise take the coordinator's shared memory and only the small
    // messages would go through the relays)
    const workers = NAMES.map((name, i) => cli(name, ['worker', '--connect', `ws://127.0.0.1:${relays[i].port}`, '--name', name, '--max-retries', '3', '--no-shm']));

    // coordinator stderr: "worker ID (NAME on HOST, pid N) joined; ..." — once per (re)connection
    const joins = (name: string) => coord.stderr.filter((l) => l.includes(`(${name} on `) && / joined/.test(l)).map((l) => /worker (\S+) \(/.exec(l)![1]);
    const events = () => jsonLines(coord.stdout);
    const lastStep = () => Math.max(-1, ...events().filter((e) => e.kind === 'step').map((e) => e.step as number));
    const idsOf = (relay: number) => joins(NAMES[relay]);
    await until(() => NAMES.every((n) => joins(n).length >= 1), () => `both workers joining\n${coord.output()}`, 15_000);

    const resetIds: string[] = [];
    // a fault lands right after a step line: the next step's tasks are then on their way
    // through the relays (10–40 ms each way), so the worker owes leaves when its link goes
    const afterStep = (k: number) => {
      const at = Math.max(k, lastStep() + 1);
      return coord.waitLine('stdout', (l) => l.startsWith('{"kind":"step"') && (JSON.parse(l).step as number) >= at, `step ${at}`, 20_000);
    };
    for (const r of schedule) {
      await afterStep(r.step);
      const before = idsOf(r.relay);
      resetIds.push(before.at(-1)!);
      expect(relays[r.relay].reset(), `relay ${r.relay} had no open connection at step ${r.step}`).toBeGreaterThan(0);
      // the worker reconnects on its own, through the same relay, and gets a new id
      await until(() => idsOf(r.relay).length > before.length, () => `${NAMES[r.relay]} rejoining after the reset at step ${r.step}\n${coord.output()}`, 10_000);
    }
    // at least one reset connection held leaves that the coordinator moved to another worker
    await until(() => events().some((e) => e.kind === 'reassigned' && resetIds.includes(e.from as string)), () => `a reassignment from a reset connection (${resetIds.join(', ')})\n${coord.output()}`, 5000);
    const resetDeaths = events().filter((e) => (e.kind === 'worker_dead' || e.kind === 'worker_left') && resetIds.includes(e.workerId as string));
    expect(resetDeaths.length, `the coordinator did not see every reset connection go\n${coord.output()}`).toBe(RESETS);

    await afterStep(CUT_AT);
    const id1 = idsOf(0).at(-1)!;
    const id2 = idsOf(1).at(-1)!;
    relays[1].cut();
    const stepAtCut = lastStep();
    // the other worker takes over: the cut worker's leaves of the step in progress are
    // reassigned to it, or (when the cut worker had already delivered its part of that step)
    // it is declared dead and the next steps run on the other worker alone
    const takenOver = () =>
      events().some((e) => e.kind === 'reassigned' && e.from === id2 && e.to === id1 && (e.step as number) >= stepAtCut) ||
      (events().some((e) => (e.kind === 'worker_dead' || e.kind === 'worker_left') && e.workerId === id2) &&
        events().some((e) => e.kind === 'step' && (e.step as number) > stepAtCut + 2 && e.workers === 1));
    await until(takenOver, () => `${id1} taking over from ${id2} after the cut\n${coord.output()}`, 10_000);

    const summaryLine = await coord.waitLine('stdout', (l) => l.includes('"summary"'), 'summary line', 30_000);
    const cr = await coord.waitExit(10_000);
    expect(cr?.code, coord.output()).toBe(0);
    expect(JSON.parse(summaryLine).steps).toBe(STEPS);

    const rr = await reference.waitExit(20_000);
    expect(rr?.code, reference.output()).toBe(0);
    const diff = finalCheckpointDifference(dir);
    expect(diff.at, `checkpoints differ at byte ${diff.at} (sizes ${diff.sizes})`).toBe(-1);

    // the healthy worker ends with the run; the cut one gives up after its retries are refused
    const e1 = await workers[0].waitExit(10_000);
    expect(e1?.code, workers[0].output()).toBe(0);
    const e2 = await workers[1].waitExit(10_000);
    expect(e2, `the cut worker is still running 10 s after the run\n${workers[1].output()}`).toBeDefined();
    expect(relays[1].refused, 'the cut relay refused no reconnection').toBeGreaterThan(0);
    expect(idsOf(1).at(-1), 'the cut worker joined again through a cut link').toBe(id2);

    const reassigned = events().filter((e) => e.kind === 'reassigned');
    console.log(
      `[lossy e2e] ${STEPS} steps; resets at ${schedule.map((r) => `${r.step}→${NAMES[r.relay]}`).join(', ')}; cut ${NAMES[1]} (${id2}) at step ${stepAtCut};` +
        ` ${reassigned.length} reassignment(s) (${reassigned.filter((e) => resetIds.includes(e.from as string)).length} from reset connections);` +
        ` relays accepted ${relays.map((p) => p.accepted).join('/')}; cut worker exit ${e2!.code ?? e2!.signal}; ${Date.now() - t0} ms`,
    );
  }, 45_000);
});
