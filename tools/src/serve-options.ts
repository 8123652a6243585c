import { readFile } from 'node:fs/promises';
import { ConfigError } from '@dptrain/core';
import { LIMITS } from '@dptrain/protocol';
import type { Command } from 'commander';
import type { FileConfig } from './config-file.js';
import { intFlag, numFlag } from './flags.js';

/** How a served run (a Coordinator) behaves beyond the training itself. */
export interface ServePlan {
  /** Resume checkpoint every N steps (0: never). */
  checkpointEvery: number;
  /** Resume checkpoint every S seconds (0: never). */
  checkpointEverySec: number;
  /** Checkpoint file or run directory to continue from. */
  resumeFrom?: string;
  /** Shared secret (flag, else $DPTRAIN_TOKEN, else the config file). */
  token?: string;
  allowInsecure: boolean;
  /** PEM text of the certificate and key, and the certificate's file (local workers trust it). */
  tls?: { cert: string; key: string; certFile: string };
  nonFinitePolicy: 'stop' | 'skip';
  maxRetries: number;
  stepTimeoutMs?: number;
  /** Serve the dashboard on the run's port. */
  dashboard: boolean;
  /** Offer local workers the shared-memory data plane. */
  sharedMemory: boolean;
  /** How each step's leaves are split over the workers. */
  balance: 'speed' | 'even';
}

/** The serve settings of a command line (absent keys: not given). */
export type ServeSettings = Pick<
  FileConfig,
  'checkpointEvery' | 'checkpointEverySec' | 'resume' | 'token' | 'allowInsecure' | 'tlsCert' | 'tlsKey' | 'nonFinite' | 'maxRetries' | 'stepTimeout' | 'dashboard' | 'shm' | 'balance'
>;

/** The environment variable holding the token when --token is not given. */
export const TOKEN_ENV = 'DPTRAIN_TOKEN';

/** The serve flags given on the command line, parsed (not range-checked); `given` gets their keys. */
export function serveFlagSettings(cmd: Command, given: Set<string>): ServeSettings {
  const o = cmd.opts();
  const s: ServeSettings = {};
  const has = (k: string) => cmd.getOptionValueSource(k) === 'cli' && (given.add(k), true);
  for (const k of ['checkpointEvery', 'maxRetries', 'stepTimeout'] as const) if (has(k)) s[k] = intFlag(flagName(k), o[k]);
  if (has('checkpointEverySec')) s.checkpointEverySec = numFlag('--checkpoint-every-sec', o.checkpointEverySec);
  for (const k of ['resume', 'token', 'tlsCert', 'tlsKey'] as const) if (has(k)) s[k] = o[k];
  if (has('allowInsecure')) s.allowInsecure = true;
  if (has('dashboard')) s.dashboard = o.dashboard !== false;
  if (has('shm')) s.shm = o.shm !== false;
  if (has('balance')) {
    if (o.balance !== 'speed' && o.balance !== 'even') throw new ConfigError('--balance', `expected speed or even, got ${JSON.stringify(o.balance)}`);
    s.balance = o.balance;
  }
  if (has('nonFinite')) {
    if (o.nonFinite !== 'stop' && o.nonFinite !== 'skip') throw new ConfigError('--non-finite', `expected stop or skip, got ${JSON.stringify(o.nonFinite)}`);
    s.nonFinite = o.nonFinite;
  }
  return s;
}

function flagName(k: 'checkpointEvery' | 'maxRetries' | 'stepTimeout'): string {
  return { checkpointEvery: '--checkpoint-every', maxRetries: '--max-retries', stepTimeout: '--step-timeout' }[k];
}

function intIn(key: string, v: number, lo: number, hi: number, what = 'an integer'): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(key, `expected ${what} in [${lo}, ${hi}], got ${v}`);
  return v;
}

/** Read a PEM file of the TLS flags; an unreadable or non-PEM file is a ConfigError naming the key and the file. */
async function readPem(key: 'tlsCert' | 'tlsKey', path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(key, `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const want = key === 'tlsCert' ? '-----BEGIN CERTIFICATE' : '-----BEGIN ';
  if (!text.includes(want) || (key === 'tlsKey' && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))) {
    throw new ConfigError(key, `${path} is not a PEM ${key === 'tlsCert' ? 'certificate (-----BEGIN CERTIFICATE-----)' : 'private key (-----BEGIN ... PRIVATE KEY-----)'}`);
  }
  return text;
}

/**
 * Validate the serve settings (merged config file + flags) and read the TLS files. Errors
 * are ConfigErrors on the setting key (the caller renames them after the flag or the file
 * key). `envToken` is $DPTRAIN_TOKEN, used when no --token flag is given.
 */
export async function resolveServePlan(s: ServeSettings, tokenFlagGiven: boolean, envToken: string | undefined): Promise<ServePlan> {
  const plan: ServePlan = {
    checkpointEvery: intIn('checkpointEvery', s.checkpointEvery ?? 0, 0, 1 << 30),
    checkpointEverySec: s.checkpointEverySec ?? 0,
    allowInsecure: s.allowInsecure === true,
    nonFinitePolicy: s.nonFinite ?? 'stop',
    maxRetries: intIn('maxRetries', s.maxRetries ?? 3, 0, 1000),
    dashboard: s.dashboard !== false,
    sharedMemory: s.shm !== false,
    balance: s.balance ?? 'even',
  };
  if (!Number.isFinite(plan.checkpointEverySec) || plan.checkpointEverySec < 0 || plan.checkpointEverySec > 1e9) {
    throw new ConfigError('checkpointEverySec', `expected a number of seconds in [0, 1e9] (0: never), got ${plan.checkpointEverySec}`);
  }
  if (s.stepTimeout !== undefined) plan.stepTimeoutMs = intIn('stepTimeout', s.stepTimeout, 1, 86_400_000, 'an integer number of milliseconds');
  if (s.resume !== undefined) {
    if (s.resume.length === 0) throw new ConfigError('resume', 'expected a checkpoint file or run directory');
    plan.resumeFrom = s.resume;
  }
  const fromEnv = !tokenFlagGiven && envToken !== undefined && envToken !== '';
  const token = fromEnv ? envToken : s.token;
  if (token !== undefined) {
    if (token.length === 0 || Buffer.byteLength(token) > LIMITS.token) {
      throw new ConfigError('token', `expected 1 to ${LIMITS.token} bytes${fromEnv ? ` (from $${TOKEN_ENV})` : ''}, got ${Buffer.byteLength(token)}`);
    }
    plan.token = token;
  }
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) {
    const [missing, given] = s.tlsCert === undefined ? ['tlsCert', '--tls-key'] : ['tlsKey', '--tls-cert'];
    throw new ConfigError(missing, `required with ${given}: TLS needs both the certificate and its private key`);
  }
  if (s.tlsCert !== undefined && s.tlsKey !== undefined) {
    plan.tls = { cert: await readPem('tlsCert', s.tlsCert), key: await readPem('tlsKey', s.tlsKey), certFile: s.tlsCert };
  }
  return plan;
}
