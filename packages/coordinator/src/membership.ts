import type { WorkerInfo, WorkerState } from '@dptrain/protocol';
import type { Round } from './round.js';

/** Four significant digits (enough for a table, and a short JSON number). */
const round4 = (x: number): number => (Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(4)) : 0);

/** What a worker said about itself in its hello. */
export interface WorkerHello {
  workerName: string;
  host: string;
  pid: number;
  kernels: string[];
}

/** loading: welcomed, loading its data; ready: may get tasks; left/dead: gone for good. */
export type MemberState = 'loading' | 'ready' | 'left' | 'dead';

export interface Member {
  id: string;
  hello: WorkerHello;
  state: MemberState;
  /** Parameter version this worker holds (-1: none). */
  version: number;
  /** Clock of its last message (as passed to add/touch). */
  lastSeen: number;
  /** Compute time reported over the run, ms. */
  computeMsTotal: number;
  /** Compute time of its part of the last step it finished, ms. */
  lastComputeMs: number;
  lastSamplesPerSec: number;
  /** Compute speed, samples per ms, smoothed over the steps it finished (0: not measured yet). */
  speed: number;
  /**
   * Missed a step deadline: its nodes were re-executed elsewhere, and it gets no new
   * leaves until it shows signs of life again (any result).
   */
  lagging: boolean;
}

/**
 * The workers of a run in join order, their states and liveness. A worker loading its
 * data is allowed `loadTimeoutMs` of silence, a ready one `deadAfterMs`.
 */
export class Membership {
  private readonly members = new Map<string, Member>();

  constructor(
    private readonly limits: { deadAfterMs: number; loadTimeoutMs: number },
    /** Gone (left/dead) workers remembered for the observer; the oldest are forgotten beyond this. */
    private readonly keepGone = 64,
  ) {}

  get(id: string): Member | undefined {
    return this.members.get(id);
  }

  /** A new worker in state loading. */
  add(id: string, hello: WorkerHello, nowMs: number): Member {
    if (this.members.has(id)) throw new Error(`worker id ${id} is already in use`);
    const m: Member = { id, hello, state: 'loading', version: -1, lastSeen: nowMs, computeMsTotal: 0, lastComputeMs: 0, lastSamplesPerSec: 0, speed: 0, lagging: false };
    this.members.set(id, m);
    return m;
  }

  /** Workers loading or ready. */
  live(): Member[] {
    return [...this.members.values()].filter((w) => w.state === 'loading' || w.state === 'ready');
  }

  /** Ready workers in join order. */
  readyIds(): string[] {
    return [...this.members.values()].filter((w) => w.state === 'ready').map((w) => w.id);
  }

  isReady(id: string): boolean {
    return this.members.get(id)?.state === 'ready';
  }

  touch(id: string, nowMs: number): void {
    const w = this.members.get(id);
    if (w) w.lastSeen = nowMs;
  }

  /** Mark a live worker as gone; false if it was unknown or already gone. */
  remove(id: string, dead: boolean): boolean {
    const w = this.members.get(id);
    if (!w || w.state === 'left' || w.state === 'dead') return false;
    w.state = dead ? 'dead' : 'left';
    this.prune();
    return true;
  }

  /** Forget the oldest gone workers beyond keepGone (a long elastic run must not grow without bound). */
  private prune(): void {
    let gone = 0;
    for (const w of this.members.values()) if (w.state === 'left' || w.state === 'dead') gone++;
    for (const [id, w] of this.members) {
      if (gone <= this.keepGone) break;
      if (w.state === 'left' || w.state === 'dead') {
        this.members.delete(id);
        gone--;
      }
    }
  }

  /** Live workers silent for longer than their limit, with the reason. */
  silent(nowMs: number): Array<{ id: string; why: string }> {
    const out: Array<{ id: string; why: string }> = [];
    for (const w of this.live()) {
      const limit = w.state === 'loading' ? this.limits.loadTimeoutMs : this.limits.deadAfterMs;
      const quiet = nowMs - w.lastSeen;
      if (quiet > limit) out.push({ id: w.id, why: `no message for ${Math.round(quiet)} ms (limit ${limit} ms${w.state === 'loading' ? ' while loading data' : ''})` });
    }
    return out;
  }

  /** Workers as observer events describe them (bytes are left 0 for the transport to fill in). */
  infos(round: Round | undefined): WorkerInfo[] {
    const busy = round?.busyWorkers() ?? new Set<string>();
    return [...this.members.values()].map((w) => {
      const state: WorkerState = w.state === 'ready' ? (busy.has(w.id) ? 'busy' : 'idle') : w.state;
      return {
        workerId: w.id,
        host: w.hello.host,
        state,
        leaves: round?.leavesOf(w.id) ?? 0,
        // rounded: the event goes out after every step, and is replayed to late viewers
        computeMs: round4(w.lastComputeMs),
        samplesPerSec: round4(w.lastSamplesPerSec),
        bytesIn: 0,
        bytesOut: 0,
        lastHeartbeat: w.lastSeen,
      };
    });
  }
}
