import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The telling part of a failed worker's last output: its error lines, else its last line. */
function describeFailure(lines: string[]): string {
  const errors = lines.filter((l) => /error/i.test(l));
  const pick = errors.length ? errors.slice(0, 3) : lines.slice(-1);
  return pick.length ? `: ${pick.join(' | ')}` : '';
}

/** The CLI entry (dist/cli.js) that local worker processes run. */
export const CLI_PATH = fileURLToPath(new URL('./cli.js', import.meta.url));

export interface LocalWorkerOptions {
  /** Each line a worker prints, already prefixed with `[name] `. */
  onLine?: (line: string) => void;
  /** A worker exited with a non-zero code (or a signal) before stop() was called. */
  onFailure?: (name: string, detail: string) => void;
  /** Extra arguments for every `dptrain worker` (e.g. ['--data', ref]). */
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Pass --quiet to the workers (only errors are printed). Default true. */
  quiet?: boolean;
}

/**
 * N `dptrain worker` child processes on this machine, named local-0 … local-(N-1), output
 * prefixed and forwarded; killed on stop(), and on this process's exit at the latest.
 */
export class LocalWorkers {
  readonly children: { name: string; proc: ChildProcess; exited: Promise<number | null>; lastLines: string[] }[] = [];
  private stopping = false;
  private readonly killAll = () => {
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  };

  constructor(n: number, url: string, opts: LocalWorkerOptions = {}) {
    process.once('exit', this.killAll);
    for (let i = 0; i < n; i++) {
      const name = `local-${i}`;
      const args = [CLI_PATH, 'worker', '--connect', url, '--name', name, '--max-retries', '3', ...(opts.quiet === false ? [] : ['--quiet']), ...(opts.extraArgs ?? [])];
      const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
      const lastLines: string[] = [];
      for (const stream of [proc.stdout!, proc.stderr!]) {
        createInterface({ input: stream }).on('line', (line) => {
          lastLines.push(line);
          if (lastLines.length > 30) lastLines.shift();
          opts.onLine?.(`[${name}] ${line}`);
        });
      }
      const exited = new Promise<number | null>((resolve) => {
        proc.on('error', (e) => {
          lastLines.push(e.message);
          resolve(null);
        });
        proc.on('exit', (code, signal) => {
          if (!this.stopping && code !== 0) opts.onFailure?.(name, `exited with ${code === null ? `signal ${signal}` : `code ${code}`}${describeFailure(lastLines)}`);
          resolve(code);
        });
      });
      this.children.push({ name, proc, exited, lastLines });
    }
  }

  /** Wait up to `ms` for every worker to exit on its own (after the run finished). */
  async waitExit(ms: number): Promise<boolean> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const all = Promise.all(this.children.map((c) => c.exited)).then(() => true as const);
    const r = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return r;
  }

  /** Terminate the workers still running (SIGTERM, then SIGKILL after `graceMs`). Safe to call twice. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    for (const c of this.children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    if (!(await this.waitExit(graceMs))) this.killAll();
    await Promise.all(this.children.map((c) => c.exited));
    process.removeListener('exit', this.killAll);
  }
}
