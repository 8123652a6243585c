/**
 * One process of a host-ceiling measurement (host-ceiling.ts):
 *
 *   node tools/dist/bench/ceiling-child.js '<job JSON>'
 *
 * validates the job ({ spec, leafSize, kernel, batchSize, startAt, durationMs, seed? }),
 * runs computeRate and prints `{"samplesPerSec": x}`. A bad job exits 2 with a message
 * naming the field and what it expects; any other failure exits 1.
 */
import '../wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { ConfigError, KERNEL_NAMES, type KernelName, validateModelSpec } from '@dptrain/core';
import { type CeilingJob, computeRate } from './host-ceiling.js';
import { isMain } from './util.js';

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** Parse and validate a job; throws ConfigError naming the bad field (`spec.layers`, `batchSize`, ...). */
export function parseCeilingJob(text: string): CeilingJob {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError('job', `expected one JSON object argument { spec, leafSize, kernel, batchSize, startAt, durationMs, seed? }, got ${JSON.stringify(text)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('job', `expected a JSON object { spec, leafSize, kernel, batchSize, startAt, durationMs, seed? }, got ${text}`);
  const j = raw as Record<string, unknown>;
  if (j.spec === undefined) throw new ConfigError('spec', 'expected a model spec { inputSize, layers, loss }, got nothing');
  let spec;
  try {
    spec = validateModelSpec(j.spec);
  } catch (e) {
    // validateModelSpec names fields model.*: name them as the job does
    if (e instanceof ConfigError) throw new ConfigError(`spec${e.field.slice('model'.length)}`, e.message.slice(e.field.length + 2));
    throw e;
  }
  const int = (field: string, lo: number, hi: number): number => {
    if (!isInt(j[field], lo, hi)) throw new ConfigError(field, `expected an integer in [${lo}, ${hi}], got ${JSON.stringify(j[field]) ?? 'nothing'}`);
    return j[field] as number;
  };
  const leafSize = int('leafSize', 1, 1 << 16);
  const batchSize = int('batchSize', 1, 1 << 20);
  if (!KERNEL_NAMES.includes(j.kernel as KernelName)) throw new ConfigError('kernel', `expected one of ${KERNEL_NAMES.join(', ')}, got ${JSON.stringify(j.kernel) ?? 'nothing'}`);
  const startAt = int('startAt', 0, Number.MAX_SAFE_INTEGER);
  const durationMs = int('durationMs', 1, 600_000);
  const job: CeilingJob = { spec, leafSize, kernel: j.kernel as KernelName, batchSize, startAt, durationMs };
  if (j.seed !== undefined) job.seed = int('seed', 0, 0xffffffff);
  return job;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length !== 1) throw new ConfigError('job', `expected exactly one argument, the job as JSON, got ${args.length}`);
  const samplesPerSec = await computeRate(parseCeilingJob(args[0]));
  process.stdout.write(`${JSON.stringify({ samplesPerSec })}\n`);
}

if (isMain(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`ceiling-child: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = e instanceof ConfigError ? 2 : 1;
  });
}
