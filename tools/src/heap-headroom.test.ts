import { PerformanceObserver, constants } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ConfigError } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { HEAP_HEADROOM_ENV, type HeapControls, HeapHeadroom, growingPercentFor, heapGrowingPercent, headroomFromEnv, reserveHeapHeadroom, userSetsGrowing } from './heap-headroom.js';
import { runCli } from './testing/cli-process.js';

const MB = 1024 * 1024;

function fakeControls(live: number, execArgv: string[] = []) {
  const flags: string[] = [];
  const gc = { onMajor: undefined as (() => void) | undefined, watching: 0 };
  const c: HeapControls & { live: number } = {
    live,
    setFlags: (f: string) => {
      flags.push(f);
    },
    oldGenerationBytes: () => c.live,
    watchMajorGc: (cb: () => void) => {
      gc.onMajor = cb;
      gc.watching++;
      return () => {
        gc.watching--;
        gc.onMajor = undefined;
      };
    },
    execArgv,
  };
  return { c, flags, gc };
}

describe('growingPercentFor', () => {
  it('puts the limit headroom above the live size while the heap is small', () => {
    expect(growingPercentFor(8 * MB, 64 * MB)).toBe(800);
    expect(growingPercentFor(10 * MB, 64 * MB)).toBe(640);
    expect(growingPercentFor(100 * MB, 64 * MB)).toBe(64);
  });
  it("leaves V8's heuristic alone for a large heap or no headroom", () => {
    expect(growingPercentFor(128 * MB, 64 * MB)).toBe(0);
    expect(growingPercentFor(1024 * MB, 64 * MB)).toBe(0);
    expect(growingPercentFor(8 * MB, 0)).toBe(0);
  });
  it('counts a tiny heap as 1 MiB and caps the percent', () => {
    expect(growingPercentFor(0, 64 * MB)).toBe(6400);
    expect(growingPercentFor(1024, 1024 * MB)).toBe(10_000);
  });
});

describe('headroomFromEnv / userSetsGrowing', () => {
  it('reads MiB, defaults to 64 and refuses anything else naming the variable', () => {
    expect(headroomFromEnv(undefined)).toBe(64 * MB);
    expect(headroomFromEnv('')).toBe(64 * MB);
    expect(headroomFromEnv('0')).toBe(0);
    expect(headroomFromEnv('32')).toBe(32 * MB);
    for (const bad of ['-1', '1.5', 'lots', '99999']) {
      expect(() => headroomFromEnv(bad)).toThrow(ConfigError);
      expect(() => headroomFromEnv(bad)).toThrow(HEAP_HEADROOM_ENV);
    }
  });
  it("spots the user's own growing flag", () => {
    expect(userSetsGrowing(['--heap-growing-percent=50'])).toBe(true);
    expect(userSetsGrowing(['--heap_growing_percent=50'])).toBe(true);
    expect(userSetsGrowing(['--max-old-space-size=100', '--expose-gc'])).toBe(false);
  });
});

describe('HeapHeadroom', () => {
  it('sets the percent for the live size, follows it after each full GC, restores 0 at release', () => {
    const { c, flags, gc } = fakeControls(8 * MB);
    const h = new HeapHeadroom(c);
    const release = h.reserve(64 * MB);
    expect(flags).toEqual(['--heap-growing-percent=800']);
    expect(h.percent).toBe(800);
    expect(gc.watching).toBe(1);
    c.live = 16 * MB;
    gc.onMajor!();
    expect(flags.at(-1)).toBe('--heap-growing-percent=400');
    c.live = 200 * MB;
    gc.onMajor!();
    expect(flags.at(-1)).toBe('--heap-growing-percent=0');
    c.live = 16 * MB;
    gc.onMajor!();
    release();
    release();
    expect(flags).toEqual(['--heap-growing-percent=800', '--heap-growing-percent=400', '--heap-growing-percent=0', '--heap-growing-percent=400', '--heap-growing-percent=0']);
    expect(gc.watching).toBe(0);
    expect(h.percent).toBe(0);
  });

  it('counts reservations: the largest headroom holds until the last remover', () => {
    const { c, flags, gc } = fakeControls(8 * MB);
    const h = new HeapHeadroom(c);
    const a = h.reserve(16 * MB);
    const b = h.reserve(64 * MB);
    expect(flags).toEqual(['--heap-growing-percent=200', '--heap-growing-percent=800']);
    expect(gc.watching).toBe(1);
    a();
    a();
    expect(h.percent).toBe(800);
    b();
    expect(flags.at(-1)).toBe('--heap-growing-percent=0');
    expect(gc.watching).toBe(0);
  });

  it("does nothing for 0 bytes or when the process has its own flag; refuses a bad size", () => {
    const own = fakeControls(8 * MB, ['--heap-growing-percent=30']);
    new HeapHeadroom(own.c).reserve(64 * MB)();
    expect(own.flags).toEqual([]);
    const zero = fakeControls(8 * MB);
    new HeapHeadroom(zero.c).reserve(0)();
    expect(zero.flags).toEqual([]);
    expect(zero.gc.watching).toBe(0);
    expect(() => new HeapHeadroom(zero.c).reserve(-1)).toThrow(ConfigError);
  });
});

describe('reserveHeapHeadroom on this V8', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;

  /** Full GCs while `mb` MiB of old-generation arrays are allocated and kept. */
  async function fullGcsWhileRetaining(mb: number): Promise<number> {
    let major = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((r) => setTimeout(r, 5));
    major = 0;
    const keep: unknown[][] = [];
    for (let i = 0; i < mb / 8; i++) keep.push(new Array(1 << 20)); // 8 MiB each, in large-object space
    await new Promise((r) => setTimeout(r, 20));
    obs.disconnect();
    expect(keep.length).toBe(mb / 8);
    return major;
  }

  it('lets 64 MiB be retained without a full GC where a small growing factor collects', async () => {
    // control: V8 reads the flag at run time, and a 1.1 factor collects long before 64 MiB
    setFlagsFromString('--heap-growing-percent=10');
    gc();
    expect(await fullGcsWhileRetaining(64)).toBeGreaterThan(0);
    gc(); // drop the control's arrays, so that the reserve sees the live size
    const release = reserveHeapHeadroom(256 * MB);
    try {
      expect(heapGrowingPercent()).toBeGreaterThan(100);
      gc(); // V8 sets the next limit with the reserved factor
      expect(await fullGcsWhileRetaining(64)).toBe(0);
    } finally {
      release();
    }
    expect(heapGrowingPercent()).toBe(0);
  });
});

describe('the dptrain command and the heap headroom', () => {
  it('refuses a bad $DPTRAIN_HEAP_HEADROOM_MB with exit 2, naming it, before doing anything', async () => {
    const r = await runCli(['train', '--data', 'blobs:60', '--model', '2-2', '--steps', '1'], { env: { ...process.env, [HEAP_HEADROOM_ENV]: 'plenty' }, timeoutMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/DPTRAIN_HEAP_HEADROOM_MB: expected a whole number of MiB in \[0, 16384\]/);
  });
});
