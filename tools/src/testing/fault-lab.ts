import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliProcess, runCli } from './cli-process.js';

/**
 * Helpers of the multi-process fault tests: a temporary directory, the processes started
 * (all killed by cleanup()), a small run that is fast per step yet long enough to inject
 * faults into, and its undisturbed final checkpoint to compare against.
 */

/** The run of the fault tests (a config file's settings): ~2 ms per step on two cores. */
export const FAULT_RUN = {
  data: 'spirals:600;seed=3',
  model: {
    inputSize: 2,
    layers: [
      { units: 12, activation: 'tanh', dropout: 0.1 },
      { units: 2, activation: 'softmax' },
    ],
    loss: 'softmax_cross_entropy',
  },
  optimizer: 'momentum',
  lr: 0.05,
  batchSize: 32,
  leafSize: 8,
  steps: 600,
  seed: 5,
};

/** The environment of the test process without the variables dptrain reads (the tests set them explicitly). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DPTRAIN_TOKEN;
  delete env.DPTRAIN_TEST_FAULT;
  return { ...env, ...extra };
}

/** The step number of a `--json` step line, else undefined. */
export function stepOfLine(line: string): number | undefined {
  const m = /^\{"kind":"step","step":(\d+)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** The arguments of a running process (Linux /proc), [] if it is gone. */
export function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
}

/** Pids of the running processes whose command line has an argument equal to `arg`. */
export function pidsWithArg(arg: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => argvOf(pid).includes(arg));
}

/** A temporary directory and the processes of one test file. */
export class FaultLab {
  readonly procs: CliProcess[] = [];
  private constructor(readonly dir: string) {}

  static async create(prefix: string): Promise<FaultLab> {
    return new FaultLab(await mkdtemp(join(tmpdir(), `dptrain-${prefix}-`)));
  }

  /** A path in the directory. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Write FAULT_RUN with `over` as a config file; returns its path. */
  async config(name: string, over: Record<string, unknown> = {}): Promise<string> {
    const file = this.path(`${name}.json`);
    await writeFile(file, JSON.stringify({ ...FAULT_RUN, ...over }));
    return file;
  }

  /** The final checkpoint of the undisturbed run of a config file (`dptrain train --workers 0`). */
  async reference(config: string, name = 'reference'): Promise<Buffer> {
    const r = await runCli(['train', '--config', config, '--workers', '0', '--checkpoint-dir', this.path(name)], { env: cleanEnv(), timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`the reference run failed (${r.code}):\n${r.stderr}`);
    return readFile(this.path(name, 'final.safetensors'));
  }

  /** Start `dptrain ...args` (killed by cleanup()). */
  start(args: string[], env: Record<string, string> = {}): CliProcess {
    const p = new CliProcess(args, { env: cleanEnv(env) });
    this.procs.push(p);
    return p;
  }

  /** Start `dptrain coordinator --json ...args` and wait for it to listen. */
  async coordinator(args: string[], env: Record<string, string> = {}): Promise<{ proc: CliProcess; url: string; port: number }> {
    const proc = this.start(['coordinator', '--json', ...args], env);
    const line = await proc.waitLine((l) => l.startsWith('{"kind":"listening"'), 20_000);
    const url = JSON.parse(line).url as string;
    return { proc, url, port: Number(new URL(url).port) };
  }

  /** Start `dptrain worker --connect url --name name ...args`. */
  worker(url: string, name: string, args: string[] = [], env: Record<string, string> = {}): CliProcess {
    return this.start(['worker', '--connect', url, '--name', name, ...args], env);
  }

  /** Wait until a `--json` process has reported step `k` or later. */
  async waitStep(p: CliProcess, k: number, ms = 30_000): Promise<number> {
    const line = await p.waitLine((l) => (stepOfLine(l) ?? -1) >= k, ms);
    return stepOfLine(line)!;
  }

  /** The file's bytes. */
  bytes(...parts: string[]): Promise<Buffer> {
    return readFile(this.path(...parts));
  }

  /** Kill every process started (SIGKILL). */
  async cleanup(): Promise<void> {
    await Promise.all(this.procs.splice(0).map((p) => p.destroy()));
  }

  /** cleanup() and remove the directory. */
  async remove(): Promise<void> {
    await this.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}
