import { ConfigError } from './errors.js';
import { KERNEL_NAMES, type KernelName } from './kernels/index.js';
import { type OptimizerConfig, validateOptimizerConfig } from './optim/index.js';
import { type ModelSpec, validateModelSpec } from './spec.js';

/**
 * Everything that determines a run's numbers. Two runs with equal RunConfig (and
 * the same data) produce bit-identical weights, whatever the number of workers.
 */
export interface RunConfig {
  model: ModelSpec;
  /** Dataset reference, e.g. 'mnist', 'spirals:2000', 'csv:path' (resolved by the process that loads data). */
  data: string;
  optimizer: OptimizerConfig;
  batchSize: number;
  leafSize: number;
  /** Number of epochs; ignored when steps is set. */
  epochs: number;
  /** Number of updates (optional; overrides epochs). */
  steps?: number;
  seed: number;
  shuffle: boolean;
  kernel: KernelName;
  /** Evaluate on the test split every N steps (0: at epoch ends only). */
  evalEvery: number;
}

export const RUN_DEFAULTS = {
  data: 'mnist',
  batchSize: 128,
  leafSize: 32,
  epochs: 1,
  seed: 0,
  shuffle: true,
  kernel: 'js' as KernelName,
  evalEvery: 0,
};

const KNOWN = new Set(['model', 'data', 'optimizer', 'batchSize', 'leafSize', 'epochs', 'steps', 'seed', 'shuffle', 'kernel', 'evalEvery']);

function int(field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(field, `expected an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return v;
}

/** Merge over RUN_DEFAULTS and validate; errors name the field and the allowed range. */
export function validateRunConfig(raw: unknown): RunConfig {
  if (typeof raw !== 'object' || raw === null) throw new ConfigError('config', 'expected an object');
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!KNOWN.has(k)) throw new ConfigError(k, `unknown setting; allowed: ${[...KNOWN].join(', ')}`);
  const c = { ...RUN_DEFAULTS, ...Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) } as Record<string, unknown>;
  const model = validateModelSpec(c.model);
  if (typeof c.data !== 'string' || c.data.length === 0 || c.data.length > 4096) throw new ConfigError('data', `expected a dataset reference string, got ${JSON.stringify(c.data)}`);
  const optimizer = validateOptimizerConfig(c.optimizer);
  const batchSize = int('batchSize', c.batchSize, 1, 1 << 20);
  const leafSize = int('leafSize', r.leafSize === undefined ? Math.min(RUN_DEFAULTS.leafSize, batchSize) : c.leafSize, 1, 1 << 16);
  if (leafSize > batchSize) throw new ConfigError('leafSize', `must be at most batchSize (${batchSize}), got ${leafSize}`);
  const epochs = int('epochs', c.epochs, 1, 1 << 20);
  const steps = c.steps === undefined ? undefined : int('steps', c.steps, 1, 1 << 30);
  const seed = int('seed', c.seed, 0, 0xffffffff);
  if (typeof c.shuffle !== 'boolean') throw new ConfigError('shuffle', `expected true or false, got ${JSON.stringify(c.shuffle)}`);
  if (!(KERNEL_NAMES as readonly unknown[]).includes(c.kernel)) throw new ConfigError('kernel', `expected one of ${KERNEL_NAMES.map((k) => JSON.stringify(k)).join(', ')}, got ${JSON.stringify(c.kernel)}`);
  const evalEvery = int('evalEvery', c.evalEvery, 0, 1 << 30);
  const out: RunConfig = { model, data: c.data, optimizer, batchSize, leafSize, epochs, seed, shuffle: c.shuffle, kernel: c.kernel as KernelName, evalEvery };
  if (steps !== undefined) out.steps = steps;
  return out;
}
