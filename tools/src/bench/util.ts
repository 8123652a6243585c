/**
 * Shared helpers of the benchmark scripts: workload W, its synthetic data, timing,
 * medians, flag parsing, machine description and plain-text tables.
 *
 * Benchmarks print figures; they never assert on time.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { ConfigError, type Dataset, type ModelSpec, Rng, oneHot } from '@dptrain/core';

/** Workload W: MLP 784-256-128-10, ReLU hidden layers, softmax cross-entropy. */
export const W_SPEC: ModelSpec = {
  inputSize: 784,
  layers: [
    { units: 256, activation: 'relu' },
    { units: 128, activation: 'relu' },
    { units: 10, activation: 'softmax' },
  ],
  loss: 'softmax_cross_entropy',
};
/** W's global batch. */
export const W_BATCH = 128;
/** W's plain-SGD learning rate. */
export const W_LR = 0.05;

/** Layer widths of a spec: [inputSize, units of each layer...]. */
export function widths(spec: ModelSpec): number[] {
  return [spec.inputSize, ...spec.layers.map((l) => l.units)];
}

/**
 * Multiply-add FLOPs (2 per multiply-add) of one training step per sample: forward
 * X·Wᵀ and weight gradient δᵀ·X for every layer, input gradient δ·W for every layer
 * but the first (its input gradient is not needed). W: 1,007,104.
 */
export function stepFlopsPerSample(sizes: number[]): number {
  let f = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const mac = sizes[l] * sizes[l + 1];
    f += 2 * mac + 2 * mac + (l > 0 ? 2 * mac : 0);
  }
  return f;
}

/** A synthetic classification set: inputs uniform in [0, 1), labels uniform over the classes (one-hot targets), all from Rng(seed). */
export function syntheticClassification(n: number, inputSize: number, classes: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(n * inputSize);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = rng.nextInt(classes);
  return { name: 'synthetic', n, inputSize, outputSize: classes, x, y: oneHot(labels, classes), labels, classes };
}

/** Median, smallest and largest of a sample. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median of a non-empty sample (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty sample');
  const s = [...values].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

export function summarize(values: readonly number[]): Summary {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

/** Milliseconds taken by fn(). */
export function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/**
 * Seconds per call of `call`: a warm-up of at least `warmupMs` (and 3 calls), then
 * `runs` samples, each repeating the call until it lasts about `minSampleMs`.
 * Returns one value (seconds per call) per sample.
 */
export function secondsPerCall(call: () => void, runs: number, minSampleMs = 20, warmupMs = 60): number[] {
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < warmupMs || reps < 3) {
    call();
    reps++;
  }
  const inner = Math.max(1, Math.ceil(minSampleMs / ((performance.now() - t0) / reps)));
  const out: number[] = [];
  for (let r = 0; r < runs; r++) out.push(timeMs(() => { for (let q = 0; q < inner; q++) call(); }) / inner / 1000);
  return out;
}

/** What a flag takes: an integer in [min, max] with a default, or nothing (a boolean switch). */
export type FlagSpec = { kind: 'int'; min: number; max: number; default: number } | { kind: 'bool' };
type FlagValues<S extends Record<string, FlagSpec>> = { [K in keyof S]: S[K] extends { kind: 'int' } ? number : boolean };

/**
 * Parse `--name value` / `--name` flags against a spec keyed by flag name without
 * dashes. Unknown flags, missing values and out-of-range integers throw a
 * ConfigError naming the flag and what it accepts.
 */
export function parseFlags<S extends Record<string, FlagSpec>>(argv: readonly string[], spec: S): FlagValues<S> {
  const out: Record<string, number | boolean> = {};
  for (const [k, s] of Object.entries(spec)) out[k] = s.kind === 'int' ? s.default : false;
  const usage = Object.entries(spec).map(([k, s]) => (s.kind === 'int' ? `--${k} N` : `--${k}`)).join(', ');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.startsWith('--') ? arg.slice(2) : '';
    const s = spec[name];
    if (!s) throw new ConfigError(arg, `unknown argument: expected ${usage}`);
    if (s.kind === 'bool') {
      out[name] = true;
      continue;
    }
    const text = argv[++i];
    const v = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isInteger(v) || v < s.min || v > s.max) {
      throw new ConfigError(arg, `expected an integer in [${s.min}, ${s.max}], got ${JSON.stringify(text ?? null)}`);
    }
    out[name] = v;
  }
  return out as FlagValues<S>;
}

/** The machine a benchmark ran on. */
export interface MachineInfo {
  date: string;
  nproc: number;
  cpu: string;
  node: string;
  v8: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpu,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Whether the module at `url` (import.meta.url) is the script node was started with. */
export function isMain(url: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

/**
 * Run this script again in `count` fresh node processes (one after the other) with
 * `args` (which should include --json) and return each one's parsed JSON output.
 */
export function inFreshProcesses<T>(script: string, args: readonly string[], count: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < count; i++) {
    const text = execFileSync(process.execPath, [...process.execArgv, script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    out.push(JSON.parse(text) as T);
  }
  return out;
}

/** A number with thousands separators and `digits` decimals. */
export function fmt(v: number, digits = 0): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "median (min–max)" of a summary. */
export function fmtSummary(s: Summary, digits = 0): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** A plain-text table: first column left-aligned, the others right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const w = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}
