import { ConfigError, KERNEL_NAMES, type KernelName } from '@dptrain/core';

/** Setting key (camelCase, as in the config file) → command-line flag. */
const FLAGS: Record<string, string> = {
  config: '--config',
  model: '--model',
  data: '--data',
  optimizer: '--optimizer',
  lr: '--lr',
  momentum: '--momentum',
  weightDecay: '--weight-decay',
  batchSize: '--batch-size',
  leafSize: '--leaf-size',
  epochs: '--epochs',
  steps: '--steps',
  seed: '--seed',
  shuffle: '--no-shuffle',
  evalEvery: '--eval-every',
  kernel: '--kernel',
  workers: '--workers',
  minWorkers: '--min-workers',
  port: '--port',
  host: '--host',
  checkpointDir: '--checkpoint-dir',
  init: '--init',
  checkpointEvery: '--checkpoint-every',
  checkpointEverySec: '--checkpoint-every-sec',
  resume: '--resume',
  token: '--token',
  allowInsecure: '--allow-insecure',
  tlsCert: '--tls-cert',
  tlsKey: '--tls-key',
  nonFinite: '--non-finite',
  maxRetries: '--max-retries',
  stepTimeout: '--step-timeout',
  dashboard: '--no-dashboard',
  shm: '--no-shm',
  balance: '--balance',
};

/** The flag of a setting key ('batchSize' → '--batch-size'). */
export function flagOf(key: string): string {
  return FLAGS[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The setting key a ConfigError field belongs to: 'optimizer.lr' → 'lr', 'model.layers[0].units' → 'model'. */
export function settingOf(field: string): string {
  if (field.startsWith('optimizer.')) {
    const k = field.slice('optimizer.'.length);
    if (k === 'lr' || k === 'momentum' || k === 'weightDecay') return k;
    return 'optimizer';
  }
  if (field.startsWith('model')) return 'model';
  return field;
}

/** A number given to a flag; throws ConfigError naming the flag. */
export function numFlag(flag: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v)) throw new ConfigError(flag, `expected a number, got ${JSON.stringify(text)}`);
  return v;
}

/** An integer given to a flag (range checks come later, with the setting's own range). */
export function intFlag(flag: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v)) throw new ConfigError(flag, `expected an integer, got ${JSON.stringify(text)}`);
  return v;
}

/**
 * Say where a bad setting came from: `--batch-size: expected ...` for a flag,
 * `run.json: batchSize: expected ...` for a config-file key. Errors whose field is
 * already a flag or a file are returned unchanged.
 */
export function renameConfigError(e: ConfigError, flags: Set<string>, fileKeys: Set<string>, file?: string): ConfigError {
  if (e.field.startsWith('--') || (file !== undefined && e.field.startsWith(file))) return e;
  const text = e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
  const key = settingOf(e.field);
  const detail = e.field === key || key === 'lr' || key === 'momentum' || key === 'weightDecay' ? '' : ` (${e.field})`;
  if (flags.has(key)) return new ConfigError(flagOf(key), `${text}${detail}`);
  if (file !== undefined && fileKeys.has(key)) return new ConfigError(`${file}: ${e.field}`, text);
  return new ConfigError(flagOf(key), `${text}${detail}`);
}

/** A kernel name given to `flag` (one of KERNEL_NAMES), or a ConfigError naming the choices. */
export function kernelFlag(flag: string, v: unknown): KernelName {
  if (!(KERNEL_NAMES as readonly unknown[]).includes(v)) throw new ConfigError(flag, `expected ${KERNEL_NAMES.join(', ')}, got ${JSON.stringify(v)}`);
  return v as KernelName;
}
