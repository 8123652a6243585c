import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { ConfigError } from '@dptrain/core';

/*
 * Why: every step this process receives ~1 MB messages (a gradient per worker, or the
 * params). ws copies each into a fresh Buffer and Node reads the socket into fresh 64 KB
 * buffers: ~2 MB of short-lived ArrayBuffer memory per message. V8 counts external memory
 * allocated since the last full GC against the old generation's allocation limit, which for
 * a small heap (~9 MB here, just above V8's 8 MB threshold for incremental marking) leaves
 * only a few MB of room: a full mark-compact every few steps (2-3 ms per step of main-thread
 * time, plus the GC helper threads' time on a 2-core host), although almost all of that
 * memory dies young and the scavenges V8 runs for young ArrayBuffer memory free it cheaply.
 *
 * What: raise V8's heap growing factor (--heap-growing-percent, which V8 reads each time it
 * sets the next limit after a full GC) so that the limit sits `headroom` bytes above the live
 * old generation while that is small (below 2 × headroom); above that V8's own heuristic is
 * left alone. Recomputed after every full GC. It changes only when memory is reclaimed
 * (at most `headroom` more garbage is kept), never what the program computes.
 *
 * Who: the process, not the library — the `dptrain` command reserves it for every command
 * (program.ts main) and bench:scaling for its in-process coordinator; the Coordinator and
 * Worker classes leave V8's flags alone.
 */

/** Default headroom, MiB: above the ~32 MB of young ArrayBuffer memory at which V8 scavenges. */
export const DEFAULT_HEAP_HEADROOM_MB = 64;
/** Environment variable overriding the headroom, MiB (0 turns the tuning off). */
export const HEAP_HEADROOM_ENV = 'DPTRAIN_HEAP_HEADROOM_MB';

const MB = 1024 * 1024;

/**
 * The --heap-growing-percent that puts the old generation's next limit `headroomBytes` above
 * `liveBytes` (at most 10000), or 0 (V8's own heuristic) for a headroom of 0 or once the live
 * size is at least 2 × headroomBytes (V8's factor then leaves comparable room by itself).
 */
export function growingPercentFor(liveBytes: number, headroomBytes: number): number {
  if (!(headroomBytes > 0) || liveBytes >= 2 * headroomBytes) return 0;
  const live = Math.max(liveBytes, MB);
  return Math.min(10_000, Math.ceil((100 * headroomBytes) / live));
}

/** Whether the process was started with its own --heap-growing-percent (then it is left alone). */
export function userSetsGrowing(execArgv: readonly string[]): boolean {
  return execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
}

/** $DPTRAIN_HEAP_HEADROOM_MB in bytes (the default when unset or empty); anything else is a ConfigError naming the variable. */
export function headroomFromEnv(value: string | undefined = process.env[HEAP_HEADROOM_ENV]): number {
  if (value === undefined || value.trim() === '') return DEFAULT_HEAP_HEADROOM_MB * MB;
  const mb = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || mb > 16_384) {
    throw new ConfigError(HEAP_HEADROOM_ENV, `expected a whole number of MiB in [0, 16384] (0 turns heap tuning off), got ${JSON.stringify(value)}`);
  }
  return mb * MB;
}

/** What HeapHeadroom acts on: V8 in a real process, fakes in a test. */
export interface HeapControls {
  /** v8.setFlagsFromString. */
  setFlags(flags: string): void;
  /** Bytes used by the old generation now. */
  oldGenerationBytes(): number;
  /** Call `onMajor` after every full GC; returns the remover. */
  watchMajorGc(onMajor: () => void): () => void;
  /** The process's node/V8 flags (process.execArgv). */
  execArgv: readonly string[];
}

/** The controls of this process. */
export const NODE_HEAP_CONTROLS: HeapControls = {
  setFlags: (flags) => setFlagsFromString(flags),
  oldGenerationBytes: () => {
    let used = 0;
    for (const s of getHeapSpaceStatistics()) if (s.space_name !== 'new_space' && s.space_name !== 'new_large_object_space') used += s.space_used_size;
    return used;
  },
  watchMajorGc: (onMajor) => {
    const obs = new PerformanceObserver((list) => {
      if (list.getEntries().some((e) => (e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) onMajor();
    });
    obs.observe({ entryTypes: ['gc'] });
    return () => obs.disconnect();
  },
  get execArgv() {
    return process.execArgv;
  },
};

/**
 * Holds the heap growing percent while at least one reservation is open: the largest headroom
 * asked for applies, re-derived from the live size after every full GC; the last remover
 * restores V8's default (0).
 */
export class HeapHeadroom {
  private users = 0;
  private headroom = 0;
  private applied = 0;
  private unwatch: (() => void) | undefined;

  constructor(private readonly controls: HeapControls = NODE_HEAP_CONTROLS) {}

  /** The --heap-growing-percent set now (0: V8's own heuristic). */
  get percent(): number {
    return this.applied;
  }

  /**
   * Keep at least `headroomBytes` of allocation room between full GCs while the heap is small;
   * returns the remover (safe to call twice). No-op for 0 bytes, or when the process was
   * started with --heap-growing-percent.
   */
  reserve(headroomBytes: number): () => void {
    if (!Number.isFinite(headroomBytes) || headroomBytes < 0) throw new ConfigError('headroomBytes', `expected a number of bytes >= 0, got ${headroomBytes}`);
    if (headroomBytes === 0 || userSetsGrowing(this.controls.execArgv)) return () => {};
    this.users++;
    this.headroom = Math.max(this.headroom, headroomBytes);
    this.update();
    this.unwatch ??= this.controls.watchMajorGc(() => this.update());
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (--this.users > 0) return;
      this.unwatch?.();
      this.unwatch = undefined;
      this.headroom = 0;
      this.set(0);
    };
  }

  private update(): void {
    if (this.users > 0) this.set(growingPercentFor(this.controls.oldGenerationBytes(), this.headroom));
  }

  private set(percent: number): void {
    if (percent === this.applied) return;
    this.applied = percent;
    this.controls.setFlags(`--heap-growing-percent=${percent}`);
  }
}

const processHeadroom = new HeapHeadroom();

/**
 * Reserve GC headroom for this process (see the top of this file): `headroomBytes` defaults
 * to $DPTRAIN_HEAP_HEADROOM_MB, else 64 MiB. Returns the remover.
 */
export function reserveHeapHeadroom(headroomBytes: number = headroomFromEnv()): () => void {
  return processHeadroom.reserve(headroomBytes);
}

/** The --heap-growing-percent this process's reservations set now (0: V8's default). */
export function heapGrowingPercent(): number {
  return processHeadroom.percent;
}
