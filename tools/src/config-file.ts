import { readFile } from 'node:fs/promises';
import { ConfigError, KERNEL_NAMES, OPTIMIZER_NAMES } from '@dptrain/core';
import { z } from 'zod';

const int = () => z.number().int();

/**
 * The JSON config file of `dptrain train` / `dptrain coordinator` (`--config FILE`): the same
 * settings as the flags, in camelCase. `model` is a shorthand ("784-128-10"), a path to a
 * ModelSpec JSON file, or a ModelSpec object; `optimizer` is a name or a full optimizer
 * config object (schedule, betas, clipNorm...); `stepTimeout` is in milliseconds and `dashboard:
 * false` is --no-dashboard, `shm: false` is --no-shm. Unknown keys are errors. Ranges are checked
 * afterwards by core's validateRunConfig, so messages are the same as for flags.
 */
export const ConfigFileSchema = z
  .object({
    model: z.union([z.string(), z.record(z.string(), z.unknown())], {
      error: 'expected a shorthand like "784-128-10", a path to a ModelSpec JSON file, or a ModelSpec object { inputSize, layers, loss }',
    }),
    data: z.string(),
    optimizer: z.union([z.enum(OPTIMIZER_NAMES), z.record(z.string(), z.unknown())], {
      error: `expected one of ${OPTIMIZER_NAMES.join(', ')} or an optimizer config object { name, lr, ... }`,
    }),
    lr: z.number(),
    momentum: z.number(),
    weightDecay: z.number(),
    batchSize: int(),
    leafSize: int(),
    epochs: int(),
    steps: int(),
    seed: int(),
    shuffle: z.boolean(),
    evalEvery: int(),
    kernel: z.enum(KERNEL_NAMES),
    workers: int(),
    minWorkers: int(),
    port: int(),
    host: z.string(),
    checkpointDir: z.string(),
    init: z.string(),
    // fault tolerance, security, observability (see run-flags.ts addServeOptions)
    checkpointEvery: int(),
    checkpointEverySec: z.number(),
    resume: z.string(),
    token: z.string(),
    allowInsecure: z.boolean(),
    tlsCert: z.string(),
    tlsKey: z.string(),
    nonFinite: z.enum(['stop', 'skip']),
    maxRetries: int(),
    /** Step deadline, ms. */
    stepTimeout: int(),
    dashboard: z.boolean(),
    shm: z.boolean(),
    balance: z.enum(['speed', 'even']),
  })
  .partial()
  .strict();

export type FileConfig = z.infer<typeof ConfigFileSchema>;

/** Read and check a config file; every problem is a ConfigError naming the file and the key. */
export async function readConfigFile(path: string): Promise<FileConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError('--config', `cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('--config', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseConfigObject(raw, path);
}

/** Check a parsed config object (see ConfigFileSchema). */
export function parseConfigObject(raw: unknown, path = 'config'): FileConfig {
  const r = ConfigFileSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const allowed = Object.keys(ConfigFileSchema.shape).join(', ');
    throw new ConfigError(`${path}${key ? `: ${key}` : ''}`, `unknown key(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; allowed: ${allowed}`);
  }
  throw new ConfigError(`${path}: ${key || '(top level)'}`, issue.message);
}
