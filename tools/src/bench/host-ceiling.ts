/**
 * The host ceiling: the best speed-up N worker processes can reach on this host before any
 * communication. One process computes a worker's share of a step of the given model
 * (LeafComputer.setParams, then computeNode over the root of its leaves, as `dptrain
 * worker` does; no update, no sockets) at the full global batch, against N processes at
 * once, each computing the largest share an even split gives a worker, over the same
 * wall-clock window after a synchronized start. Every measurement runs in fresh child
 * processes (ceiling-child.ts).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  type Dataset,
  DptrainError,
  EpochSampler,
  type KernelName,
  LeafComputer,
  type ModelSpec,
  initParams,
  kernelsForModel,
  leafChunkRows,
  leafCount,
  nextPow2,
  treeBuffers,
} from '@dptrain/core';
import { type Summary, summarize, syntheticClassification } from './util.js';

/** What one ceiling process computes. */
export interface CeilingJob {
  spec: ModelSpec;
  leafSize: number;
  kernel: KernelName;
  /** Rows this process computes per step. */
  batchSize: number;
  /** When the timed window starts, ms since the epoch (the same for processes measured together). */
  startAt: number;
  durationMs: number;
  /** Seed of the synthetic rows, the parameters and the sampler (default 1). */
  seed?: number;
}

/** Synthetic rows of the spec's shape (the values do not matter for speed): uniform inputs, one-hot targets, or 0/1 for a single output. */
function syntheticFor(spec: ModelSpec, n: number, seed: number): Dataset {
  const outputs = spec.layers[spec.layers.length - 1].units;
  if (outputs >= 2) return syntheticClassification(n, spec.inputSize, outputs, seed);
  const d = syntheticClassification(n, spec.inputSize, 2, seed);
  return { ...d, outputSize: 1, y: Float32Array.from(d.labels!) };
}

/**
 * In this process: warm up, wait until `job.startAt`, then compute steps of
 * `job.batchSize` rows for `job.durationMs`; returns samples/s.
 */
export async function computeRate(job: CeilingJob): Promise<number> {
  const { spec, leafSize, batchSize } = job;
  const seed = job.seed ?? 1;
  // at least one full batch (reshuffled every epoch); beyond that up to 4,096 rows, at most 64 MB of inputs
  const data = syntheticFor(spec, Math.max(batchSize, Math.min(4096, Math.ceil((1 << 24) / spec.inputSize))), seed);
  const kernels = kernelsForModel(job.kernel, spec, [leafChunkRows(leafSize)], treeBuffers(batchSize, leafSize));
  const computer = new LeafComputer(spec, data, { leafSize, seed, kernels });
  const params = initParams(spec, seed);
  const grad = new Float32Array(params.length);
  const sampler = new EpochSampler({ n: data.n, batchSize, seed, shuffle: true, dropLast: true });
  const L = leafCount(batchSize, leafSize);
  let step = 0;
  const oneStep = (): void => {
    const b = sampler.next();
    computer.setParams(params);
    computer.computeNode({ step: step++, leafCount: L, batchSize, indices: b.indices, indexBase: 0 }, { lo: 0, size: nextPow2(L) }, grad);
  };
  for (let i = 0; i < 5; i++) oneStep();
  const wait = job.startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  let steps = 0;
  while (performance.now() - t0 < job.durationMs) {
    oneStep();
    steps++;
  }
  return (steps * batchSize * 1000) / (performance.now() - t0);
}

/** The built child entry next to this module (tools/dist/bench/ceiling-child.js). */
export const CEILING_CHILD = fileURLToPath(new URL('./ceiling-child.js', import.meta.url));

/** Node options that take the next argument and run code instead of a script: not for a child. */
const EVAL_FLAGS = new Set(['-e', '--eval', '-p', '--print', '-pe', '--input-type']);
/** Node options that run no script: not for a child. */
const NO_SCRIPT_FLAGS = new Set(['-i', '--interactive', '-c', '--check']);

/**
 * The node options a child gets: this process's (e.g. a V8 flag the kernels need), minus
 * those that would make it run something other than its script (`-e code`, `--print`,
 * `--input-type`, `-i`, `-c`): a parent started with `node -e` must not start copies of its code.
 */
export function childExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    const name = a.split('=')[0];
    if (EVAL_FLAGS.has(name)) {
      if (!a.includes('=')) i++; // its value
    } else if (!NO_SCRIPT_FLAGS.has(name)) out.push(a);
  }
  return out;
}

/** Grace beyond the window before a child that has not answered is killed. */
const CHILD_GRACE_MS = 60_000;

/**
 * Run `job` in a fresh `node script` (with this process's node options: childExecArgv) and return its
 * samples/s. Killed, and rejected with an error naming it, when it has not answered
 * within the wait for `startAt` + durationMs + 60 s, or when `signal` aborts.
 */
function runChild(script: string, job: CeilingJob, signal: AbortSignal): Promise<number> {
  const name = `host ceiling child (${job.batchSize} rows per step, ${job.kernel})`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...childExecArgv(), script, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let failure: Error | undefined;
    const fail = (e: Error) => {
      failure ??= e;
      p.kill('SIGKILL');
    };
    const boundMs = Math.max(0, job.startAt - Date.now()) + job.durationMs + CHILD_GRACE_MS;
    const timer = setTimeout(() => fail(new DptrainError('E_BENCH', `${name} did not answer within ${boundMs} ms: killed`)), boundMs);
    const onAbort = () => fail(new DptrainError('E_BENCH', `${name} stopped: another ceiling process failed`));
    signal.addEventListener('abort', onAbort, { once: true });
    p.stdout.on('data', (d) => (out += d));
    p.on('error', (e) => fail(e));
    p.on('close', (code, sig) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (failure) return reject(failure);
      if (code !== 0) return reject(new DptrainError('E_BENCH', `${name} exited with ${code ?? sig}`));
      let r: unknown;
      try {
        r = (JSON.parse(out) as { samplesPerSec?: unknown }).samplesPerSec;
      } catch {
        r = undefined;
      }
      if (typeof r !== 'number' || !(r > 0) || !Number.isFinite(r)) return reject(new DptrainError('E_BENCH', `${name} printed ${JSON.stringify(out.trim())}, expected {"samplesPerSec": x > 0}`));
      resolve(r);
    });
  });
}

/** Run the jobs in parallel child processes; if one fails, the others are killed. */
async function runTogether(script: string, jobs: CeilingJob[]): Promise<number[]> {
  const ac = new AbortController();
  return Promise.all(jobs.map((j) => runChild(script, j, ac.signal).catch((e: unknown) => (ac.abort(), Promise.reject(e)))));
}

/** Rows per step of the largest share an even split of a batch of `batchSize` in leaves of `leafSize` gives one of `processes` workers. */
export function largestShare(batchSize: number, leafSize: number, processes: number): number {
  return Math.min(batchSize, Math.ceil(leafCount(batchSize, leafSize) / processes) * leafSize);
}

export interface HostCeilingOptions {
  spec: ModelSpec;
  leafSize: number;
  kernel: KernelName;
  /** The global batch: what the single process computes per step. */
  batchSize: number;
  /** The process counts (> 1) to measure. */
  processes: number[];
  repeat: number;
  /** The timed window of every measurement, ms. */
  durationMs: number;
  /** Time the children get to start and warm up before the synchronized start (default 2000 ms). */
  leadMs?: number;
  /** The child entry (default CEILING_CHILD; tests pass the built one). */
  childScript?: string;
  /** Called before each measurement (progress). */
  onProgress?: (what: string) => void;
}

/** The ceiling for one process count. */
export interface CeilingPoint {
  processes: number;
  /** Rows each of them computes per step: the largest share of an even split. */
  shareRows: number;
  /** One process at the global batch, samples/s (the same measurements for every process count). */
  alone: Summary;
  /**
   * The N processes at once, samples/s of the global batch: their summed samples/s,
   * scaled by batchSize / (N × shareRows) where the split is uneven (a step waits for the
   * largest share).
   */
  together: Summary;
  /** together / alone, per repeat: the best speed-up N workers can reach on this host. */
  ratio: Summary;
}

export interface HostCeiling {
  batchSize: number;
  leafSize: number;
  kernel: KernelName;
  durationMs: number;
  repeat: number;
  points: CeilingPoint[];
}

/** Measure the host ceiling `repeat` times (fresh processes each time), for every process count. */
export async function hostCeiling(o: HostCeilingOptions): Promise<HostCeiling> {
  if (o.processes.length === 0 || o.processes.some((n) => !Number.isInteger(n) || n < 2)) {
    throw new ConfigError('processes', `expected one or more integers >= 2, got ${JSON.stringify(o.processes)}`);
  }
  if (!Number.isInteger(o.repeat) || o.repeat < 1) throw new ConfigError('repeat', `expected an integer >= 1, got ${JSON.stringify(o.repeat)}`);
  const script = o.childScript ?? CEILING_CHILD;
  const leadMs = o.leadMs ?? 2000;
  const job = (batchSize: number, startAt: number): CeilingJob => ({ spec: o.spec, leafSize: o.leafSize, kernel: o.kernel, batchSize, startAt, durationMs: o.durationMs });
  const alone: number[] = [];
  const together = o.processes.map(() => [] as number[]);
  for (let rep = 0; rep < o.repeat; rep++) {
    o.onProgress?.(`1 process at batch ${o.batchSize}, repeat ${rep + 1}/${o.repeat}`);
    const [a] = await runTogether(script, [job(o.batchSize, Date.now() + leadMs)]);
    alone.push(a);
    for (const [i, n] of o.processes.entries()) {
      const share = largestShare(o.batchSize, o.leafSize, n);
      o.onProgress?.(`${n} processes at ${share} rows each, repeat ${rep + 1}/${o.repeat}`);
      const startAt = Date.now() + leadMs;
      const rates = await runTogether(script, Array.from({ length: n }, () => job(share, startAt)));
      together[i].push((rates.reduce((s, r) => s + r, 0) * o.batchSize) / (n * share));
    }
  }
  const points = o.processes.map((n, i) => ({
    processes: n,
    shareRows: largestShare(o.batchSize, o.leafSize, n),
    alone: summarize(alone),
    together: summarize(together[i]),
    ratio: summarize(together[i].map((t, r) => t / alone[r])),
  }));
  return { batchSize: o.batchSize, leafSize: o.leafSize, kernel: o.kernel, durationMs: o.durationMs, repeat: o.repeat, points };
}
