import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DatasetSplit, type RunConfig, leafCount, train, validateRunConfig } from '@dptrain/core';
import { type Balance, Coordinator } from '@dptrain/coordinator';
import { afterAll, describe, expect, it } from 'vitest';
import { median } from '../bench/util.js';
import { loadDataset } from '../data/index.js';
import { requireBuiltCli } from '../testing/cli-process.js';
import { cleanEnv } from '../testing/fault-lab.js';
import { LineProcess } from './process-helpers.js';

// The speed-balanced leaf split with real processes on unequal "hardware": two `dptrain
// worker` processes, one made 6× slower by the TEST-ONLY fault hook (DPTRAIN_TEST_FAULT
// slow:6@slow: it waits 5× each node's compute time, without using the CPU, and reports
// the wait as compute time). Under balance 'speed' the coordinator gives the fast one
// more leaves; under 'even' both get half; either way the weights are those of one worker.

const DATA = 'spirals:640;seed=3'; // 512 training samples: 4 full batches an epoch
const STEPS = 120;
const config: RunConfig = validateRunConfig({
  model: {
    inputSize: 2,
    layers: [
      { units: 128, activation: 'relu', dropout: 0.1 },
      { units: 64, activation: 'tanh' },
      { units: 2, activation: 'softmax' },
    ],
    loss: 'softmax_cross_entropy',
  },
  data: DATA,
  optimizer: { name: 'momentum', lr: 0.05 },
  batchSize: 128,
  leafSize: 8,
  steps: STEPS,
  seed: 5,
});
const L = leafCount(config.batchSize, config.leafSize); // 16
// 6×, not 4×: the speed split then makes steps about 3× shorter than the even one, which
// stays clearly true when other work on the (2-core, shared) machine slows one run 2×
const SLOW = { DPTRAIN_TEST_FAULT: 'slow:6@slow' };

/** Bit patterns of floats (so -0/+0 and NaN payloads count as different). */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

let data: DatasetSplit | undefined;
const dataset = async () => (data ??= (await loadDataset(DATA)).split);

interface RunOut {
  params: Float32Array;
  /** Leaves given to each worker (by name) in each step, for the steps all L leaves were given out at once. */
  leaves: Map<number, Record<string, number>>;
  /** Wall time of each step (step event to step event), ms, by the step it completed. */
  stepMs: Map<number, number>;
  /** Samples per second each worker (by name) computed at, as measured by the coordinator, by step. */
  speed: Map<number, Record<string, number>>;
  /** Each worker's stderr. */
  stderr: Record<string, string[]>;
  reassigned: number;
}

/** A whole run with a real `dptrain worker` process per name (all given `env`); every wait bounded, everything stopped. */
async function run(names: string[], balance: Balance, env: Record<string, string> = {}): Promise<RunOut> {
  const cli = requireBuiltCli();
  const dir = mkdtempSync(join(tmpdir(), 'dpt-speed-'));
  const logs: string[] = [];
  const c = new Coordinator({ config, data: await dataset(), host: '127.0.0.1', port: 0, minWorkers: names.length, checkpointDir: dir, observer: false, balance, log: (l) => logs.push(l) });
  const procs: LineProcess[] = [];
  try {
    const idName = new Map<string, string>();
    const nameOf = (id: string) => {
      if (!idName.has(id)) {
        for (const l of logs) {
          const m = /^worker (\S+) \((\S+) on /.exec(l);
          if (m) idName.set(m[1], m[2]);
        }
      }
      return idName.get(id) ?? id;
    };
    const out: RunOut = { params: new Float32Array(), leaves: new Map(), stepMs: new Map(), speed: new Map(), stderr: {}, reassigned: 0 };
    let last: number | undefined;
    c.onEvent((e) => {
      if (e.kind === 'step') {
        const now = performance.now();
        if (last !== undefined) out.stepMs.set(e.step, now - last);
        last = now;
        out.speed.set(e.step, {});
      } else if (e.kind === 'workers') {
        if (e.list.reduce((n, w) => n + w.leaves, 0) === L) out.leaves.set(e.step, Object.fromEntries(e.list.map((w) => [nameOf(w.workerId), w.leaves])));
        const sp = out.speed.get(e.step);
        if (sp) for (const w of e.list) sp[nameOf(w.workerId)] = w.samplesPerSec;
      } else if (e.kind === 'reassigned') out.reassigned++;
    });
    const { url } = await c.start();
    for (const name of names) {
      procs.push(new LineProcess(name, process.execPath, [cli, 'worker', '--connect', url, '--name', name, '--max-retries', '2'], { env: cleanEnv(env) }));
    }
    const summary = await within(c.done(), 25_000, `the run (balance ${balance}) to finish`, () => [...logs, ...procs.map((p) => p.output())].join('\n'));
    for (const p of procs) {
      const end = await p.waitExit(5000);
      expect(end, p.output()).toEqual({ code: 0, signal: null });
      out.stderr[p.label] = p.stderr;
    }
    out.params = summary.params;
    return out;
  } finally {
    await Promise.all(procs.map((p) => p.stop(1000)));
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function within<T>(p: Promise<T>, ms: number, what: string, detail: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${detail()}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// each run once per file (vitest runs this file's tests one after the other, so the runs never overlap)
const cache = new Map<string, Promise<RunOut>>();
const once = (key: string, f: () => Promise<RunOut>) => {
  if (!cache.has(key)) cache.set(key, f());
  return cache.get(key)!;
};
const oneWorker = () => once('one', () => run(['alone'], 'speed'));
const speedRun = () => once('speed', () => run(['fast', 'slow'], 'speed', SLOW));
const evenRun = () => once('even', () => run(['fast', 'slow'], 'even', SLOW));
afterAll(async () => {
  await Promise.allSettled(cache.values());
});

/** The steps with a full assignment from `from` on, in order. */
const stepsFrom = (r: RunOut, from: number) => [...r.leaves.keys()].filter((s) => s >= from).sort((a, b) => a - b);
/** Median wall time of the steps in the second half of the run (a median: a GC pause or an evaluation does not move it). */
const medianStepMs = (r: RunOut) => median([...r.stepMs].filter(([s]) => s > STEPS / 2).map(([, ms]) => ms));

describe('speed-balanced leaf split with a 6× slower worker process', () => {
  it("the 1-worker run: same weights as core's train()", async () => {
    const one = await oneWorker();
    const want = train({ spec: config.model, data: await dataset(), optimizer: config.optimizer, batchSize: config.batchSize, leafSize: config.leafSize, steps: STEPS, seed: config.seed, shuffle: true });
    expect(bits(one.params)).toEqual(bits(want.params));
    expect(one.stderr.alone!.join('\n')).not.toContain('TEST FAULT HOOK ACTIVE');
  });

  it("balance 'speed': from step 5 on the fast worker gets more leaves (about 6 to 1 at the end); same weights as 1 worker", async () => {
    const one = await oneWorker();
    const r = await speedRun();
    // the hook is active in the named worker only
    expect(r.stderr.slow!.join('\n')).toContain('TEST FAULT HOOK ACTIVE (DPTRAIN_TEST_FAULT=slow:6@slow)');
    expect(r.stderr.fast!.join('\n')).not.toContain('TEST FAULT HOOK ACTIVE');
    const steps = stepsFrom(r, 5);
    expect(steps.length).toBeGreaterThanOrEqual(STEPS - 10);
    const split = (s: number) => r.leaves.get(s)!;
    for (const s of steps) expect(split(s).fast, `step ${s}: ${JSON.stringify(split(s))}`).toBeGreaterThan(split(s).slow!);
    // with speeds 6:1 the split is 14:2 (13:3 with measurement noise); at least 2:1
    const end = split(steps[steps.length - 1]);
    expect(end.fast! + end.slow!).toBe(L);
    expect(end.slow).toBeGreaterThanOrEqual(1);
    expect(end.fast).toBeGreaterThanOrEqual(2 * end.slow!);
    // the coordinator measured the slow worker as several times slower per sample
    const ratio = median([...r.speed].filter(([s]) => s > STEPS / 2).map(([, v]) => v.fast! / v.slow!).filter(Number.isFinite));
    expect(ratio).toBeGreaterThan(3);
    expect(r.reassigned).toBe(0);
    expect(bits(r.params)).toEqual(bits(one.params));
  });

  it("balance 'even': both get 8 of the 16 leaves every step; same weights as 1 worker", async () => {
    const one = await oneWorker();
    const r = await evenRun();
    const steps = stepsFrom(r, 1);
    expect(steps.length).toBeGreaterThanOrEqual(STEPS - 10);
    for (const s of steps) expect(r.leaves.get(s), `step ${s}`).toEqual({ fast: L / 2, slow: L / 2 });
    expect(r.reassigned).toBe(0);
    expect(bits(r.params)).toEqual(bits(one.params));
  });

  it("balance 'speed' steps are clearly shorter than 'even' ones (median of the second half < 0.9×, ~0.3× expected)", async () => {
    const speed = medianStepMs(await speedRun());
    const even = medianStepMs(await evenRun());
    expect(speed, `speed ${speed.toFixed(1)} ms, even ${even.toFixed(1)} ms per step`).toBeLessThan(0.9 * even);
  });
});
