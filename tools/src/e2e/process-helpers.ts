import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Helpers of the end-to-end tests: a child process (any command, e.g. `ip netns exec NS
 * node cli.js ...`) whose stdout and stderr lines can be awaited, and a bounded poll.
 */

/** How a process ended. */
export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Stream = 'stdout' | 'stderr';

/** A spawned process whose output lines are kept and can be awaited; every wait is bounded. */
export class LineProcess {
  readonly proc: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  /** Resolves when the process has exited and its output is read. */
  readonly ended: Promise<Ended>;
  private result: Ended | undefined;
  private waiters: { stream: Stream; pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  /** `label` names the process in error messages. */
  constructor(
    readonly label: string,
    cmd: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ) {
    this.proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: this.proc[stream]! }).on('line', (l) => {
        this[stream].push(l);
        this.waiters = this.waiters.filter((w) => !(w.stream === stream && w.pred(l) && (w.resolve(l), true)));
      });
    }
    this.ended = new Promise((resolve) => {
      this.proc.on('error', (e) => {
        this.stderr.push(`spawn failed: ${e.message}`);
        this.result = { code: null, signal: null };
        resolve(this.result);
      });
      this.proc.on('close', (code, signal) => {
        this.result = { code, signal };
        resolve(this.result);
      });
    });
  }

  /** The pid of the process (for `ip netns exec`, the same process: it execs the command). */
  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Whether it has exited. */
  get exited(): boolean {
    return this.result !== undefined;
  }

  /** Everything it printed, for error messages. */
  output(): string {
    return `--- ${this.label} stdout:\n${this.stdout.join('\n')}\n--- ${this.label} stderr:\n${this.stderr.join('\n')}`;
  }

  /** The first line of `stream` (past or future) matching pred; rejects after timeoutMs or when the process exits first. */
  waitLine(stream: Stream, pred: (line: string) => boolean, what: string, timeoutMs: number): Promise<string> {
    const seen = this[stream].find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: no ${what} after ${timeoutMs} ms\n${this.output()}`)), timeoutMs);
      void this.ended.then((r) => {
        clearTimeout(timer);
        reject(new Error(`${this.label}: exited (code ${r.code}, signal ${r.signal}) before ${what}\n${this.output()}`));
      });
      this.waiters.push({
        stream,
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Wait at most timeoutMs for the exit; undefined if it is still running then. */
  async waitExit(timeoutMs: number): Promise<Ended | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
    try {
      return await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send `signal` if it still runs. */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) {
      try {
        this.proc.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited (or after another graceMs). */
  async stop(graceMs = 2000): Promise<Ended | undefined> {
    if (this.exited) return this.result;
    this.signal('SIGTERM');
    const r = await this.waitExit(graceMs);
    if (r) return r;
    this.signal('SIGKILL');
    return this.waitExit(graceMs);
  }
}

/** Poll `check` every 50 ms until it holds; throws naming `what()` after timeoutMs. */
export async function until(check: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JSON objects among lines (lines that are not JSON are ignored). */
export function jsonLines(lines: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a partial or foreign line
    }
  }
  return out;
}

/** Index of the first byte where a and b differ (-1 if equal). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Where `dir`/ref/final.safetensors (the undisturbed run) and `dir`/dist/final.safetensors first differ (-1: identical), and the two sizes. */
export function finalCheckpointDifference(dir: string): { at: number; sizes: string } {
  const want = readFileSync(join(dir, 'ref', 'final.safetensors'));
  const got = readFileSync(join(dir, 'dist', 'final.safetensors'));
  return { at: firstDifference(want, got), sizes: `${want.length} vs ${got.length}` };
}
