import { Rng } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CliProcess } from '../testing/cli-process.js';
import { FAULT_RUN, FaultLab } from '../testing/fault-lab.js';

// Workers that die, hang or arrive late: `dptrain coordinator` + `dptrain worker` processes;
// the run completes and its final checkpoint has the bytes of an undisturbed run.
let shared: FaultLab;
let config: string;
let reference: Buffer;
beforeAll(async () => {
  shared = await FaultLab.create('faults-workers');
  config = await shared.config('run');
  reference = await shared.reference(config);
});
afterAll(async () => {
  await shared?.remove();
});

/** A lab of one test, removed (every process killed) when the test ends. */
async function lab(onTestFinished: (fn: () => Promise<void>) => void): Promise<FaultLab> {
  const l = await FaultLab.create('faults-workers-t');
  onTestFinished(() => l.remove());
  return l;
}

/** The worker id the coordinator gave a worker process (from its log line `joined run R as ID`). */
async function idOf(w: CliProcess): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    const m = / as (w\d+);/.exec(w.stderr);
    if (m) return m[1];
    if (Date.now() > end || !w.running) throw new Error(`no "joined run ... as ID" line; stderr:\n${w.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

type Ev = Record<string, unknown> & { kind: string };
const events = (p: CliProcess) => p.json() as Ev[];
const steps = (p: CliProcess) => events(p).filter((e) => e.kind === 'step') as Array<Ev & { step: number; workers: number }>;

describe.concurrent('worker faults', () => {
  test('kill -9 of two of three workers at seeded random steps: the run completes with the undisturbed bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const rng = new Rng(0x5eed);
    const first = 20 + rng.nextInt(150);
    const second = first + 30 + rng.nextInt(150);
    const order = rng.shuffle([0, 1, 2]);
    const { proc, url } = await l.coordinator(['--config', config, '--min-workers', '3', '--checkpoint-dir', l.path('run')]);
    const ws = [0, 1, 2].map((i) => l.worker(url, `w${i}`));
    const ids = await Promise.all(ws.map(idOf));
    const killedAt: number[] = [];
    for (const [k, victim] of [
      [first, order[0]],
      [second, order[1]],
    ]) {
      killedAt.push(await l.waitStep(proc, k));
      ws[victim].send('SIGKILL');
      await ws[victim].exitWithin(5000);
    }
    expect(await proc.exitWithin(60_000), proc.stderr).toBe(0);
    for (const v of order.slice(0, 2)) expect(ws[v].signal).toBe('SIGKILL');
    expect(await ws[order[2]].exitWithin(5000)).toBe(0);
    const s = steps(proc);
    expect(s.map((e) => e.step)).toEqual(Array.from({ length: FAULT_RUN.steps }, (_, i) => i + 1));
    // the run really went on with fewer workers after each kill
    expect(s.some((e) => e.step > killedAt[0] && e.step < killedAt[1] && e.workers === 2)).toBe(true);
    expect(s.filter((e) => e.step > killedAt[1] + 5).every((e) => e.workers === 1)).toBe(true);
    const gone = events(proc).filter((e) => e.kind === 'worker_dead' || e.kind === 'worker_left').map((e) => e.workerId);
    expect(gone).toEqual(expect.arrayContaining([ids[order[0]], ids[order[1]]]));
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });

  test('a hung worker (SIGSTOP): its leaves are re-executed elsewhere after --step-timeout; same bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const { proc, url } = await l.coordinator(['--config', config, '--min-workers', '3', '--step-timeout', '150', '--checkpoint-dir', l.path('run')]);
    const ws = [0, 1, 2].map((i) => l.worker(url, `w${i}`));
    const ids = await Promise.all(ws.map(idOf));
    const at = await l.waitStep(proc, 40);
    ws[1].send('SIGSTOP');
    expect(await proc.exitWithin(60_000), proc.stderr).toBe(0);
    const ev = events(proc);
    const late = ev.filter((e) => (e.kind === 'reassigned' && e.from === ids[1]) || (e.kind === 'straggler' && e.workerId === ids[1]));
    expect(late.length, `no reassignment away from the hung worker ${ids[1]}:\n${proc.stderr}`).toBeGreaterThan(0);
    expect(steps(proc).filter((e) => e.step > at + 5).some((e) => e.workers === 2)).toBe(true);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
    // woken up after the run, the hung worker finds the run over and exits by itself
    ws[1].send('SIGCONT');
    await ws[1].exitWithin(15_000);
    for (const i of [0, 2]) expect(await ws[i].exitWithin(5000)).toBe(0);
  });

  test('a worker joining mid-run takes part; the first one leaves on SIGTERM (bye, exit 0); same bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const { proc, url } = await l.coordinator(['--config', config, '--min-workers', '1', '--checkpoint-dir', l.path('run')]);
    const w0 = l.worker(url, 'early');
    const earlyId = await idOf(w0);
    await l.waitStep(proc, 3);
    const w1 = l.worker(url, 'late');
    const lateId = await idOf(w1);
    // once both have computed a step together, the early one is told to go
    const both = await proc.waitLine((line) => line.startsWith('{"kind":"step"') && JSON.parse(line).workers === 2, 30_000);
    w0.send('SIGTERM');
    expect(await w0.exitWithin(5000)).toBe(0);
    expect(w0.stderr).toContain('SIGTERM: saying bye to the coordinator');
    expect(await proc.exitWithin(60_000), proc.stderr).toBe(0);
    expect(await w1.exitWithin(5000)).toBe(0);
    const s = steps(proc);
    expect(s.slice(0, 3).every((e) => e.workers === 1)).toBe(true);
    expect(events(proc).some((e) => e.kind === 'worker_joined' && e.workerId === lateId)).toBe(true);
    // an orderly leave (bye), not a death; the late worker carries on alone
    const left = events(proc).filter((e) => (e.kind === 'worker_left' || e.kind === 'worker_dead') && e.workerId === earlyId);
    expect(left).toEqual([expect.objectContaining({ kind: 'worker_left', reason: expect.stringContaining('interrupted by SIGTERM') })]);
    expect(s.filter((e) => e.step > JSON.parse(both).step + 5).every((e) => e.workers === 1)).toBe(true);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });
});
