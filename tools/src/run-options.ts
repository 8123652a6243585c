import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isLoopback, loadResumeCheckpoint } from '@dptrain/coordinator';
import {
  CheckpointError,
  ConfigError,
  DataError,
  type ModelSpec,
  OPTIMIZER_NAMES,
  type OptimizerName,
  type RunConfig,
  decodeCheckpoint,
  decodeSafetensors,
  mapForeignSafetensors,
  leafCount,
  parseModelShorthand,
  validateModelSpec,
  validateRunConfig,
  availableKernels,
} from '@dptrain/core';
import type { Command } from 'commander';
import { type FileConfig, readConfigFile } from './config-file.js';
import { type LoadDatasetOptions, type LoadedDataset, loadDataset } from './data/index.js';
import { dataProgress } from './data-progress.js';
import { flagOf, intFlag, kernelFlag, numFlag, renameConfigError } from './flags.js';
import { resumeDir, resumeSettings } from './resume-settings.js';
import { CLI_DEFAULTS, DEFAULT_LR, type RunCommandKind } from './run-flags.js';
import { type ServePlan, TOKEN_ENV, resolveServePlan, serveFlagSettings } from './serve-options.js';

/** Everything a run command needs, resolved and validated. */
export interface RunPlan {
  config: RunConfig;
  data: LoadedDataset;
  /** Local worker processes (train). */
  workers: number;
  /** Workers to wait for (coordinator; equals workers for train). */
  minWorkers: number;
  host: string;
  port: number;
  runName: string;
  checkpointDir: string;
  initParams?: Float32Array;
  json: boolean;
  /** Also print the local workers' log lines (stderr). */
  verbose: boolean;
  /** Updates the run will make. */
  totalSteps: number;
  /** Checkpoints, resume, auth, TLS, the non-finite policy, the step deadline, the dashboard. */
  serve: ServePlan;
}

type Settings = FileConfig & { json?: boolean };

/** The settings given as flags, parsed; `given` records which keys came from flags. */
function flagSettings(cmd: Command): { s: Settings; given: Set<string> } {
  const o = cmd.opts();
  const given = new Set<string>();
  const s: Settings = {};
  const has = (k: string) => cmd.getOptionValueSource(k) === 'cli' && (given.add(k), true);
  if (has('model')) s.model = o.model;
  if (has('data')) s.data = o.data;
  if (has('optimizer')) {
    if (!OPTIMIZER_NAMES.includes(o.optimizer)) throw new ConfigError('--optimizer', `expected one of ${OPTIMIZER_NAMES.join(', ')}, got ${JSON.stringify(o.optimizer)}`);
    s.optimizer = o.optimizer;
  }
  for (const k of ['lr', 'momentum', 'weightDecay'] as const) if (has(k)) s[k] = numFlag(flagOf(k), o[k]);
  for (const k of ['batchSize', 'leafSize', 'epochs', 'steps', 'seed', 'evalEvery', 'workers', 'minWorkers', 'port'] as const) {
    if (has(k)) s[k] = intFlag(flagOf(k), o[k]);
  }
  if (has('shuffle')) s.shuffle = o.shuffle;
  if (has('kernel')) {
    s.kernel = kernelFlag('--kernel', o.kernel);
  }
  for (const k of ['host', 'checkpointDir', 'init'] as const) if (has(k)) s[k] = o[k];
  if (o.json) s.json = true;
  Object.assign(s, serveFlagSettings(cmd, given));
  return { s, given };
}

async function modelOf(m: FileConfig['model'], fallback: string): Promise<ModelSpec> {
  if (m === undefined) return parseModelShorthand(fallback);
  if (typeof m === 'object') return validateModelSpec(m);
  if (/^\s*\d+(\s*-\s*\d+)+\s*$/.test(m)) return parseModelShorthand(m.replace(/\s/g, ''));
  let text: string;
  try {
    text = await readFile(m, 'utf8');
  } catch (e) {
    throw new ConfigError('model', `${JSON.stringify(m)} is neither a shorthand like 784-128-10 nor a readable ModelSpec JSON file (${(e as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('model', `${m} is not valid JSON: ${(e as Error).message}`);
  }
  return validateModelSpec(raw);
}

function runConfigOf(s: Settings, model: ModelSpec): RunConfig {
  const name = typeof s.optimizer === 'object' ? (s.optimizer.name as OptimizerName) : (s.optimizer ?? CLI_DEFAULTS.optimizer);
  const base: Record<string, unknown> = typeof s.optimizer === 'object' ? { ...s.optimizer, name } : { name };
  if (s.lr !== undefined) base.lr = s.lr;
  if (s.momentum !== undefined) base.momentum = s.momentum;
  if (s.weightDecay !== undefined) base.weightDecay = s.weightDecay;
  base.lr ??= DEFAULT_LR[name] ?? 0.01;
  return validateRunConfig({
    model,
    data: s.data ?? CLI_DEFAULTS.data,
    optimizer: base,
    batchSize: s.batchSize ?? CLI_DEFAULTS.batchSize,
    leafSize: s.leafSize ?? CLI_DEFAULTS.leafSize,
    epochs: s.epochs ?? CLI_DEFAULTS.epochs,
    steps: s.steps,
    seed: s.seed ?? CLI_DEFAULTS.seed,
    shuffle: s.shuffle ?? true,
    kernel: s.kernel ?? (availableKernels().includes('wasm') ? 'wasm' : 'js'),
    evalEvery: s.evalEvery ?? 0,
  });
}

/** A directory name for a run: layer sizes, dataset, seed and UTC time, e.g. 784-128-10_mnist_s0_20250101T120000. */
export function runNameOf(config: RunConfig, now = new Date()): string {
  const dims = [config.model.inputSize, ...config.model.layers.map((l) => l.units)].join('-');
  const data = config.data.split(/[:;]/)[0].replace(/[^A-Za-z0-9_-]/g, '') || 'data';
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${dims}_${data}_s${config.seed}_${stamp}`;
}

function checkInt(key: string, v: number, lo: number, hi: number, why = ''): number {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(key, `expected an integer in [${lo}, ${hi}]${why}, got ${v}`);
  return v;
}

/**
 * Resolve the flags and the config file of a run command into a RunPlan: the settings of the
 * --resume checkpoint (if any), then the config file, then flags over them, then CLI
 * defaults; validated by core's validateRunConfig; the serve settings (checkpoints, token,
 * TLS files read, policies) checked; data loaded (a missing or malformed file is bad input);
 * model checked against the data; the --init checkpoint checked against the model; the
 * --resume checkpoint verified against the run before anything is written. Every problem
 * is a ConfigError naming the flag (or the config file key) and the allowed range.
 */
export async function resolveRunPlan(cmd: Command, kind: RunCommandKind, load: (ref: string, opts?: LoadDatasetOptions) => Promise<LoadedDataset> = loadDataset): Promise<RunPlan> {
  const { s: flags, given } = flagSettings(cmd);
  const configPath: string | undefined = cmd.getOptionValueSource('config') === 'cli' ? cmd.opts().config : undefined;
  const file = configPath !== undefined ? await readConfigFile(configPath) : {};
  const fileKeys = new Set(Object.keys(file));
  try {
    // a resumed run takes the settings the checkpoint was trained with, unless told otherwise
    const resume = flags.resume ?? file.resume;
    const stored = resume !== undefined && resume !== '' ? await resumeSettings(resume) : {};
    const s: Settings = { ...stored, ...file, ...flags };
    const serve = await resolveServePlan(s, given.has('token'), process.env[TOKEN_ENV]);
    // validate everything that does not need the data first, so bad flags fail fast
    const placeholder = await modelOf(s.model, '784-128-10');
    let config = runConfigOf(s, placeholder);
    const workers = checkInt('workers', s.workers ?? CLI_DEFAULTS.workers, 0, 256);
    const minWorkers = kind === 'train' ? Math.max(workers, 1) : checkInt('minWorkers', s.minWorkers ?? CLI_DEFAULTS.minWorkers, 1, 256);
    const port = checkInt('port', s.port ?? CLI_DEFAULTS.port, 0, 65535);
    const host = s.host ?? CLI_DEFAULTS.host;
    if (host.length === 0) throw new ConfigError('host', 'expected a host name or address');
    checkServe(serve, kind === 'train' && workers === 0, host, s.init !== undefined);
    checkWorkersFit(kind, workers, minWorkers, config);

    const data = await loadData(load, config.data);
    const { train } = data.split;
    const clamped = clampToData(s, train.n, kind === 'train' ? workers : minWorkers);
    if (clamped !== undefined) {
      Object.assign(s, clamped.settings);
      process.stderr.write(`note: ${clamped.note}\n`);
    }
    if (s.model === undefined) config = runConfigOf(s, parseModelShorthand(`${train.inputSize}-${CLI_DEFAULTS.hidden}-${train.outputSize}`));
    else config = runConfigOf(s, placeholder);
    const m = config.model;
    const out = m.layers[m.layers.length - 1].units;
    if (m.inputSize !== train.inputSize || out !== train.outputSize) {
      throw new ConfigError('model', `the model maps ${m.inputSize} inputs to ${out} outputs, but dataset ${config.data} has ${train.inputSize} inputs and ${train.outputSize} targets per sample`);
    }
    if (config.batchSize > train.n) {
      throw new ConfigError('batchSize', `expected an integer in [1, ${train.n}] (the training set size of ${config.data}), got ${config.batchSize}; set --batch-size ${train.n} or less (and --leaf-size at most the batch)`);
    }
    if (clamped !== undefined) checkWorkersFit(kind, workers, minWorkers, config);
    const totalSteps = config.steps ?? config.epochs * Math.ceil(train.n / config.batchSize);
    const runName = runNameOf(config);
    let checkpointDir = s.checkpointDir ?? (serve.resumeFrom !== undefined ? resumeDir(serve.resumeFrom) : join('runs', runName));
    if (s.checkpointDir === undefined && serve.resumeFrom === undefined) for (let i = 2; existsSync(checkpointDir); i++) checkpointDir = join('runs', `${runName}-${i}`);
    const plan: RunPlan = { config, data, workers, minWorkers, host, port, runName, checkpointDir, json: s.json === true, verbose: cmd.opts().verbose === true, totalSteps, serve };
    if (s.init !== undefined) plan.initParams = await readInitParams(s.init, config.model);
    if (serve.resumeFrom !== undefined) checkResume(serve.resumeFrom, config, train.n);
    return plan;
  } catch (e) {
    throw e instanceof ConfigError ? renameConfigError(e, given, fileKeys, configPath) : e;
  }
}

/** Every worker (train) or every awaited worker (coordinator) needs at least one leaf of the batch. */
function checkWorkersFit(kind: RunCommandKind, workers: number, minWorkers: number, config: RunConfig): void {
  const L = leafCount(config.batchSize, config.leafSize);
  const why = ` (a batch of ${config.batchSize} has ${L} leaves of ${config.leafSize}; a worker needs at least one leaf)`;
  if (kind === 'train') checkInt('workers', workers, 0, Math.min(256, L), why);
  else checkInt('minWorkers', minWorkers, 1, Math.min(256, L), why);
}

/**
 * A data set smaller than the default batch (xor has 4 samples; the default batch is 128):
 * when neither the flags nor a config file nor a resumed checkpoint set the batch size, the
 * batch becomes the whole training split and, unless set, the leaf size the largest that
 * still gives every worker a leaf. A batch the user set is never changed (it is refused
 * later with what to set instead).
 */
export function clampToData(s: Settings, trainN: number, workers: number): { settings: Pick<Settings, 'batchSize' | 'leafSize'>; note: string } | undefined {
  if (s.batchSize !== undefined || trainN >= CLI_DEFAULTS.batchSize) return undefined;
  const batchSize = trainN;
  const leafDefault = Math.max(1, Math.min(CLI_DEFAULTS.leafSize, Math.floor(batchSize / Math.max(1, workers))));
  const leafSize = s.leafSize ?? leafDefault;
  const leafNote = s.leafSize === undefined ? ` and --leaf-size to ${leafSize}` : '';
  return {
    settings: { batchSize, leafSize },
    note: `the data set has ${trainN} training samples, fewer than the default batch of ${CLI_DEFAULTS.batchSize}: --batch-size set to ${batchSize}${leafNote} (set them to choose)`,
  };
}

/** Checks of the serve settings against the rest of the run (ConfigErrors on setting keys). */
function checkServe(serve: ServePlan, inProcess: boolean, host: string, init: boolean): void {
  if (serve.resumeFrom !== undefined && init) throw new ConfigError('resume', 'cannot be combined with --init: a resumed run continues from its checkpoint');
  if (inProcess) {
    // nothing listens; core's train() writes final.safetensors only
    if (serve.resumeFrom !== undefined) throw new ConfigError('resume', 'needs a coordinated run: use --workers 1 or more (--workers 0 trains in this process and cannot resume)');
    for (const k of ['checkpointEvery', 'checkpointEverySec'] as const) {
      if (serve[k] > 0) throw new ConfigError(k, `needs a coordinated run: use --workers 1 or more (--workers 0 writes only final.safetensors), got ${serve[k]}`);
    }
    return;
  }
  if (serve.token === undefined && !serve.allowInsecure && !isLoopback(host)) {
    throw new ConfigError(
      'token',
      `required when --host is not a loopback address (got ${host}): anyone who can reach it could join the run; pass --token SECRET or set ${TOKEN_ENV} (or --allow-insecure)`,
    );
  }
}

/** Load the dataset; a missing or malformed data file is bad input (a ConfigError on `data`), not a failure. */
async function loadData(load: (ref: string, opts?: LoadDatasetOptions) => Promise<LoadedDataset>, ref: string): Promise<LoadedDataset> {
  const progress = dataProgress(ref);
  try {
    const data = await load(ref, { onProgress: progress.onProgress });
    progress.done();
    return data;
  } catch (e) {
    if (e instanceof DataError) throw new ConfigError('data', e.message);
    throw e;
  }
}

/** Verify the checkpoint to resume from against this run before anything is written; errors are ConfigErrors on `resume`. */
function checkResume(path: string, config: RunConfig, trainN: number): void {
  try {
    loadResumeCheckpoint(path, config, trainN);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof CheckpointError) {
      throw new ConfigError('resume', e.message.replace(/^resumeFrom: /, ''));
    }
    throw e;
  }
}

/** One line describing a run for people. */
export function describePlan(plan: RunPlan, how: string): string {
  const c = plan.config;
  return `run ${plan.runName}: ${plan.data.description}; ${plan.totalSteps} steps of ${c.batchSize} (leaves of ${c.leafSize}), ${c.optimizer.name} lr ${c.optimizer.lr}, ${how}`;
}

/** The parameters of a checkpoint whose model must equal `spec`; errors name the tensor or spec field that differs. */
export async function readInitParams(path: string, spec: ModelSpec): Promise<Float32Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ConfigError('init', `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    if (decodeSafetensors(bytes).metadata['dptrain.format'] === undefined) {
      const { params, mapping } = mapForeignSafetensors(bytes, spec);
      for (const m of mapping) process.stderr.write(`init: ${m.from} [${m.shape}] -> ${m.to}\n`);
      return params;
    }
    return decodeCheckpoint(bytes, { spec }).params;
  } catch (e) {
    throw new ConfigError('init', `${path} does not fit this run's model: ${(e as Error).message}`);
  }
}
