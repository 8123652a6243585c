import {
  CheckpointError,
  ConfigError,
  EpochSampler,
  type OptimizerState,
  type RunConfig,
  type SamplerState,
  decodeCheckpoint,
  firstNonFinite,
  runSeeds,
  validateRunConfig,
} from '@dptrain/core';

/** Where a run stands between two steps: everything needed to continue it bit-exactly. */
export interface ResumeState {
  /** Master parameters after `step` updates. */
  params: Float32Array;
  /** Optimizer state after `step` updates (t === step). */
  optimizer: OptimizerState;
  /** Updates applied. */
  step: number;
  /** Full epochs completed. */
  epoch: number;
  /** The sampler's position: the next batch is drawn from here. Dropout streams are derived from (seed, step), so no other RNG state exists. */
  sampler: SamplerState;
}

/** The first difference between two JSON values: its dotted path and both values; undefined if equal. */
export function jsonDiff(a: unknown, b: unknown, path: string): { path: string; a: unknown; b: unknown } | undefined {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : { path, a, b };
}

const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Decode and verify a resume checkpoint (the coordinator's latest.safetensors, or any
 * final.safetensors) against the run about to continue it. Corruption (truncation,
 * checksum, names, sizes) is a CheckpointError; a checkpoint of another run configuration
 * is a ConfigError naming the first differing field (e.g. `config.optimizer.lr`); a
 * training set of another size is a ConfigError on `data`. `where` names the file in messages.
 */
export function resumeStateFrom(bytes: Uint8Array, config: RunConfig, trainN: number, where = 'checkpoint'): ResumeState {
  const bad = (msg: string): never => {
    throw new CheckpointError(`${where}: ${msg}`);
  };
  let c;
  try {
    c = decodeCheckpoint(bytes);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(`${where}: ${e.message}`);
    throw e;
  }
  const t = c.training;
  if (!t) return bad('no training state (dptrain.training metadata): only a checkpoint written by a training run can be resumed');
  let stored: RunConfig;
  try {
    stored = validateRunConfig(t.config);
  } catch (e) {
    return bad(`the stored run configuration is invalid: ${(e as Error).message}`);
  }
  const current = validateRunConfig(config);
  const d = jsonDiff(stored, current, 'config');
  if (d) {
    throw new ConfigError(d.path, `${where} was written by a run with ${show(d.a)}, this run has ${show(d.b)}; resume with the same run settings (or start a new run)`);
  }
  if (jsonDiff(c.spec, current.model, 'model')) bad('the stored model spec disagrees with the stored run configuration');
  if (!c.optimizer) return bad('no optimizer state: only a checkpoint written by a training run can be resumed');
  const od = jsonDiff(c.optimizer.config, current.optimizer, 'optimizer');
  if (od) bad(`the stored optimizer settings disagree with the stored run configuration at ${od.path}`);
  const { step, epoch, sampler, seed } = t as { step?: unknown; epoch?: unknown; sampler?: unknown; seed?: unknown };
  if (!isInt(step)) return bad(`training.step must be an integer >= 0, got ${show(step)}`);
  if (!isInt(epoch)) return bad(`training.epoch must be an integer >= 0, got ${show(epoch)}`);
  if (seed !== current.seed) bad(`training.seed ${show(seed)} disagrees with the run seed ${current.seed}`);
  if (c.optimizer.state.t !== step) bad(`the optimizer has taken ${c.optimizer.state.t} steps, the training state says ${step}`);
  const s = sampler as Partial<SamplerState> | undefined;
  const opts = { n: trainN, batchSize: current.batchSize, seed: runSeeds(current.seed).sampler, shuffle: current.shuffle };
  const per = new EpochSampler(opts).batchesPerEpoch;
  const want: SamplerState = { epoch: Math.floor(step / per), cursor: (step % per) * current.batchSize };
  if (!s || s.epoch !== want.epoch || s.cursor !== want.cursor || epoch !== want.epoch) {
    throw new ConfigError(
      'data',
      `${where}: after ${step} steps of batch ${current.batchSize} over ${trainN} training samples the sampler is at epoch ${want.epoch}, sample ${want.cursor}; ` +
        `the checkpoint says epoch ${show(s?.epoch)}, sample ${show(s?.cursor)} (${show(epoch)} epochs done): the training set differs from the one of the run that wrote it`,
    );
  }
  const i = firstNonFinite(c.params);
  if (i >= 0) bad(`parameter ${i} is ${c.params[i]}`);
  for (const [name, slot] of Object.entries(c.optimizer.state.slots)) {
    const j = firstNonFinite(slot);
    if (j >= 0) bad(`optimizer slot ${name}[${j}] is ${slot[j]}`);
  }
  return { params: c.params, optimizer: c.optimizer.state, step, epoch, sampler: want };
}
