import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CheckpointError, ShapeError } from '../errors.js';
import { optimizerSlotNames, validateOptimizerConfig, type OptimizerConfig } from '../optim/config.js';
import type { OptimizerState } from '../optim/state.js';
import { type ModelSpec, paramLayout, validateModelSpec } from '../spec.js';
import { type NamedTensor, assembleSafetensors, packTensors, readSafetensors } from './safetensors.js';

/**
 * A dptrain checkpoint is a safetensors file: the parameters as `layers.N.weight` [out, in] and
 * `layers.N.bias` [out] (loadable as a PyTorch nn.Linear stack), optimizer slots as
 * `optimizer.<slot>.layers.N.weight` etc., and metadata:
 *   dptrain.format    "1"
 *   dptrain.spec      the model spec (JSON)
 *   dptrain.optimizer {"config": OptimizerConfig, "t": steps} (JSON, when saved)
 *   dptrain.training  the caller's training state (JSON, when saved)
 *   dptrain.checksum  SHA-256 of the data section, hex
 */
export interface CheckpointContents {
  spec: ModelSpec;
  /** Flat parameters laid out by paramLayout(spec). */
  params: Float32Array;
  optimizer?: { config: OptimizerConfig; state: OptimizerState };
  /** JSON-able training state (step, epoch, sampler cursor, rng states, run config...). */
  training?: Record<string, unknown>;
}

export const CHECKPOINT_FORMAT = '1';

function fail(msg: string): never {
  throw new CheckpointError(`checkpoint: ${msg}`);
}
const fmtShape = (s: number[]) => `[${s.join(',')}]`;
const slotTensor = (slot: string, name: string) => `optimizer.${slot}.${name}`;

function json(what: string, v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    fail(`${what} is not JSON-serialisable (${(e as Error).message})`);
  }
  if (s === undefined) fail(`${what} is not JSON-serialisable`);
  return s;
}

/** Encode a checkpoint as safetensors bytes. Inputs are validated (ConfigError / ShapeError / CheckpointError). */
export function encodeCheckpoint(c: CheckpointContents): Uint8Array {
  const spec = validateModelSpec(c.spec);
  const layout = paramLayout(spec);
  if (!(c.params instanceof Float32Array) || c.params.length !== layout.total) {
    throw new ShapeError(`checkpoint: params must be a Float32Array of ${layout.total} values for this spec, got ${c.params?.length}`);
  }
  const views = (flat: Float32Array, prefix: (n: string) => string): NamedTensor[] =>
    layout.tensors.map((t) => ({ name: prefix(t.name), shape: t.shape, data: flat.subarray(t.offset, t.offset + t.length) }));
  const tensors = views(c.params, (n) => n);
  const metadata: Record<string, string> = { 'dptrain.format': CHECKPOINT_FORMAT, 'dptrain.spec': JSON.stringify(spec) };
  if (c.optimizer) {
    const config = validateOptimizerConfig(c.optimizer.config);
    const { t, slots } = c.optimizer.state;
    if (!Number.isSafeInteger(t) || t < 0) throw new ShapeError(`checkpoint: optimizer state t must be an integer >= 0, got ${t}`);
    const names = optimizerSlotNames(config.name);
    for (const k of Object.keys(slots)) if (!names.includes(k)) throw new ShapeError(`checkpoint: optimizer ${config.name} has no state slot ${k} (expected ${names.join(', ') || 'none'})`);
    for (const s of names) {
      const a = slots[s];
      if (!(a instanceof Float32Array) || a.length !== layout.total) throw new ShapeError(`checkpoint: optimizer slot ${s} must be a Float32Array of ${layout.total} values, got ${a?.length}`);
      tensors.push(...views(a, (n) => slotTensor(s, n)));
    }
    metadata['dptrain.optimizer'] = JSON.stringify({ config, t });
  }
  if (c.training !== undefined) {
    if (typeof c.training !== 'object' || c.training === null || Array.isArray(c.training)) fail('training state must be a plain object');
    metadata['dptrain.training'] = json('training state', c.training);
  }
  const { data, entries } = packTensors(tensors);
  metadata['dptrain.checksum'] = bytesToHex(sha256(data));
  return assembleSafetensors(entries, data, metadata);
}

/** Path and values of the first difference between two JSON values, or undefined. */
function firstDiff(a: unknown, b: unknown, path: string): string | undefined {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = firstDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return a === b ? undefined : `${path}: file has ${JSON.stringify(a) ?? 'nothing'}, expected ${JSON.stringify(b) ?? 'nothing'}`;
}

function parseJson(what: string, s: string): unknown {
  try {
    return JSON.parse(s);
  } catch (e) {
    return fail(`${what} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Decode and verify a checkpoint: the safetensors structure, the checksum, the stored spec (and,
 * when `expect.spec` is given, that every tensor has that spec's shape and the specs agree), the
 * optimizer state. Returned arrays are fresh copies. Every failure is a CheckpointError.
 */
export function decodeCheckpoint(bytes: Uint8Array, expect?: { spec?: ModelSpec }): CheckpointContents {
  const { tensors, metadata, dataSection } = readSafetensors(bytes);
  const format = metadata['dptrain.format'];
  if (format === undefined) fail('not a dptrain checkpoint (no dptrain.format metadata)');
  if (format !== CHECKPOINT_FORMAT) fail(`unsupported format version ${JSON.stringify(format)} (this build reads ${CHECKPOINT_FORMAT})`);
  const checksum = metadata['dptrain.checksum'];
  if (checksum === undefined) fail('no dptrain.checksum metadata');
  if (bytesToHex(sha256(dataSection)) !== checksum.toLowerCase()) fail('checksum mismatch (file corrupted)');

  if (metadata['dptrain.spec'] === undefined) fail('no dptrain.spec metadata');
  let spec: ModelSpec;
  try {
    spec = validateModelSpec(parseJson('dptrain.spec', metadata['dptrain.spec']));
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    return fail(`stored model spec is invalid: ${(e as Error).message}`);
  }
  const expected = expect?.spec === undefined ? spec : validateModelSpec(expect.spec);
  const layout = paramLayout(expected);
  const used = new Set<string>();
  const gather = (name: (n: string) => string): Float32Array => {
    const flat = new Float32Array(layout.total);
    for (const t of layout.tensors) {
      const n = name(t.name);
      const got = tensors.get(n);
      if (!got) fail(`missing tensor ${n} ${fmtShape(t.shape)}`);
      if (fmtShape(got.shape) !== fmtShape(t.shape)) fail(`tensor ${n} has shape ${fmtShape(got.shape)}, expected ${fmtShape(t.shape)}`);
      flat.set(got.data, t.offset);
      used.add(n);
    }
    return flat;
  };
  const params = gather((n) => n);
  if (expect?.spec !== undefined) {
    const d = firstDiff(spec, expected, 'model');
    if (d) fail(`model spec differs from the expected one at ${d}`);
  }
  const out: CheckpointContents = { spec, params };
  const opt = metadata['dptrain.optimizer'];
  if (opt !== undefined) out.optimizer = decodeOptimizer(opt, gather);
  for (const n of tensors.keys()) if (!used.has(n)) fail(`unexpected tensor ${n}`);
  const training = metadata['dptrain.training'];
  if (training !== undefined) {
    const t = parseJson('dptrain.training', training);
    if (typeof t !== 'object' || t === null || Array.isArray(t)) fail('dptrain.training is not a JSON object');
    out.training = t as Record<string, unknown>;
  }
  return out;
}

function decodeOptimizer(text: string, gather: (name: (n: string) => string) => Float32Array): CheckpointContents['optimizer'] {
  const o = parseJson('dptrain.optimizer', text);
  if (typeof o !== 'object' || o === null) fail('dptrain.optimizer is not a JSON object { config, t }');
  const { config: raw, t } = o as { config?: unknown; t?: unknown };
  let config: OptimizerConfig;
  try {
    config = validateOptimizerConfig(raw);
  } catch (e) {
    return fail(`stored optimizer config is invalid: ${(e as Error).message}`);
  }
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) fail(`stored optimizer step t must be an integer >= 0, got ${JSON.stringify(t)}`);
  const slots: Record<string, Float32Array> = {};
  for (const s of optimizerSlotNames(config.name)) slots[s] = gather((n) => slotTensor(s, n));
  return { config, state: { t, slots } };
}
