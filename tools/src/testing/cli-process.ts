import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Helpers that run the built `dptrain` CLI (tools/dist/cli.js) as a child process, for the
 * multi-process tests and scaling scripts.
 */
export const BUILT_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Throws a clear message when the CLI has not been built. */
export function requireBuiltCli(): string {
  if (!existsSync(BUILT_CLI)) {
    throw new Error(`${BUILT_CLI} does not exist: build first (cd /work/main && npx nx run-many -t build)`);
  }
  return BUILT_CLI;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `dptrain ...args` to completion (killed after timeoutMs). */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const cli = requireBuiltCli();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [cli, ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `dptrain ...args` whose stdout lines can be awaited. */
export class CliProcess {
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  /** The exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** The signal that ended it, once it has exited (null for a normal exit). */
  signal: NodeJS.Signals | null = null;
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];

  constructor(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.proc = spawn(process.execPath, [requireBuiltCli(), ...args], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.waiters = this.waiters.filter((w) => !(w.pred(l) && (w.resolve(l), true)));
    });
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => {
        this.signal = signal;
        resolve(code);
      }),
    );
  }

  /** Whether it is still running. */
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The stdout lines that are JSON objects (the --json output), parsed. */
  json(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l));
      } catch {
        // not a JSON line
      }
    }
    return out;
  }

  /** Send a signal (no-op once exited). */
  send(sig: NodeJS.Signals): void {
    if (this.running) this.proc.kill(sig);
  }

  /** The exit code, or a rejection naming the process's output if it has not exited within `ms`. */
  async exitWithin(ms: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; stdout:\n${this.lines.slice(-20).join('\n')}\nstderr:\n${this.stderr.slice(-4000)}`)), ms);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL (it ends a stopped process too) and wait for the exit. */
  async destroy(): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** The first stdout line (past or future) matching pred; rejects after timeoutMs or when the process exits first. */
  waitLine(pred: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching line after ${timeoutMs} ms; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`)), timeoutMs);
      void this.exited.then((code) => reject(new Error(`exited with ${code} before a matching line; stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`)));
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Stop it (SIGTERM) and wait for the exit. */
  async kill(): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }
}
