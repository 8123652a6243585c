import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCheckpoint } from '@dptrain/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../testing/cli-process.js';
import { FAULT_RUN, FaultLab, cleanEnv, pidsWithArg, stepOfLine } from '../testing/fault-lab.js';

// The coordinator killed, terminated or interrupted mid-run: it resumes from its checkpoint
// and the final checkpoint has the bytes of an undisturbed run.
let shared: FaultLab;
let config: string;
let reference: Buffer;
beforeAll(async () => {
  shared = await FaultLab.create('faults-coord');
  config = await shared.config('run');
  reference = await shared.reference(config);
});
afterAll(async () => {
  await shared?.remove();
});

async function lab(onTestFinished: (fn: () => Promise<void>) => void): Promise<FaultLab> {
  const l = await FaultLab.create('faults-coord-t');
  onTestFinished(() => l.remove());
  return l;
}

type Interrupted = { kind: 'interrupted'; signal: string; step: number; checkpoint: string; resume: string; resumeArgs: string[] };
const stepOfCheckpoint = (bytes: Buffer) => (decodeCheckpoint(bytes).training as { step: number }).step;

describe.concurrent('coordinator faults', () => {
  test('SIGKILL of the coordinator: restarted with --resume on the same port, the workers come back by themselves; same bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const dir = l.path('run');
    const first = await l.coordinator(['--config', config, '--min-workers', '2', '--checkpoint-every', '5', '--checkpoint-dir', dir]);
    const ws = [0, 1].map((i) => l.worker(first.url, `w${i}`));
    const seen = await l.waitStep(first.proc, 123);
    const killedPid = first.proc.proc.pid;
    // a coordinator killed with SIGKILL cannot remove its shared-memory directory: the next
    // coordinator on this host sweeps it (its owner file names a process that is gone); the
    // test removes it too, should that fail
    const killedDirs = () => (existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((n) => n.startsWith(`dptrain-${killedPid}-`)) : []);
    onTestFinished(() => {
      const shm = '/dev/shm';
      if (!existsSync(shm)) return;
      for (const n of readdirSync(shm)) if (n.startsWith(`dptrain-${killedPid}-`)) rmSync(join(shm, n), { recursive: true, force: true });
    });
    first.proc.send('SIGKILL');
    await first.proc.exitWithin(5000);
    expect(first.proc.signal).toBe('SIGKILL');
    const left = killedDirs();
    expect(existsSync(l.path('run', 'final.safetensors'))).toBe(false);
    const saved = stepOfCheckpoint(await l.bytes('run', 'latest.safetensors'));
    // every 5 steps (writes are asynchronous and may lag under load; one cut short leaves the previous: atomic rename)
    const printed = Math.max(...first.proc.lines.map((line) => stepOfLine(line) ?? 0));
    expect(saved % 5).toBe(0);
    expect(saved).toBeGreaterThanOrEqual(5);
    expect(saved).toBeLessThanOrEqual(printed);
    expect(printed).toBeGreaterThanOrEqual(seen);

    // no run settings: they come from the checkpoint; the checkpoint directory defaults to the resumed one
    const second = await l.coordinator(['--resume', dir, '--port', String(first.port), '--min-workers', '2']);
    expect(second.port).toBe(first.port);
    expect(await second.proc.exitWithin(60_000), second.proc.stderr).toBe(0);
    const resumed = second.proc.lines.map(stepOfLine).filter((s): s is number => s !== undefined);
    expect(resumed[0]).toBe(saved + 1);
    expect(resumed[resumed.length - 1]).toBe(FAULT_RUN.steps);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
    // the killed coordinator's directory was there, and the resumed one swept it
    if (existsSync('/dev/shm')) expect(left.length).toBe(1);
    expect(killedDirs()).toEqual([]);
    for (const w of ws) {
      expect(await w.exitWithin(5000)).toBe(0);
      expect(w.stderr).toMatch(/connection to .* lost/);
    }
  });

  test('SIGTERM of the coordinator: checkpoint, exit 143, the workers exit; the printed resume command finishes with the same bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const dir = l.path('run');
    const c = await l.coordinator(['--config', config, '--min-workers', '2', '--checkpoint-dir', dir]);
    const ws = [0, 1].map((i) => l.worker(c.url, `w${i}`));
    await l.waitStep(c.proc, 77);
    c.proc.send('SIGTERM');
    expect(await c.proc.exitWithin(10_000)).toBe(143);
    for (const w of ws) expect(await w.exitWithin(5000), w.stderr).toBe(0);
    const info = c.proc.json().find((e) => e.kind === 'interrupted') as Interrupted;
    expect(info).toMatchObject({ signal: 'SIGTERM', checkpoint: l.path('run', 'latest.safetensors') });
    expect(info.resumeArgs.slice(-2)).toEqual(['--resume', dir]);
    expect(c.proc.stderr).toContain(`checkpoint: ${info.checkpoint}`);
    expect(c.proc.stderr).toMatch(/resume with: dptrain coordinator .*--resume \S+run/);
    expect(stepOfCheckpoint(await l.bytes('run', 'latest.safetensors'))).toBe(info.step);
    expect(info.step).toBeGreaterThanOrEqual(77);
    expect(existsSync(l.path('run', 'final.safetensors'))).toBe(false);

    const again = l.start(info.resumeArgs);
    const url = JSON.parse(await again.waitLine((line) => line.startsWith('{"kind":"listening"'))).url as string;
    [0, 1].map((i) => l.worker(url, `v${i}`));
    expect(await again.exitWithin(60_000), again.stderr).toBe(0);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });

  test('SIGINT of `dptrain train`: exit 130 and the local workers stop; running the printed resume command gives the same bytes', async ({ onTestFinished }) => {
    const l = await lab(onTestFinished);
    const dir = l.path('run');
    const t = l.start(['train', '--config', config, '--workers', '2', '--json', '--checkpoint-dir', dir]);
    await l.waitStep(t, 150);
    const url = JSON.parse(t.lines.find((line) => line.startsWith('{"kind":"listening"'))!).url as string;
    expect(pidsWithArg(url)).toHaveLength(2); // the local workers: dptrain worker --connect URL
    t.send('SIGINT');
    expect(await t.exitWithin(10_000)).toBe(130);
    expect(pidsWithArg(url)).toEqual([]);
    const info = t.json().find((e) => e.kind === 'interrupted') as Interrupted;
    expect(info.resume).toBe(`dptrain train --config ${config} --workers 2 --json --checkpoint-dir ${dir} --resume ${dir}`);
    expect(t.stderr).not.toMatch(/local worker .* exited with/);
    const r = await runCli(info.resumeArgs, { env: cleanEnv(), timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`"checkpoint":"${l.path('run', 'final.safetensors')}"`);
    expect((await l.bytes('run', 'final.safetensors')).equals(reference)).toBe(true);
  });
});
