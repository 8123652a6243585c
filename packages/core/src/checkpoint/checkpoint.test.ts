import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { CheckpointError, ShapeError } from '../errors.js';
import { createOptimizerState } from '../optim/state.js';
import { validateOptimizerConfig } from '../optim/config.js';
import { Rng } from '../rng.js';
import { type ModelSpec, paramLayout } from '../spec.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointContents } from './checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

const spec: ModelSpec = {
  inputSize: 3,
  layers: [
    { units: 4, activation: 'relu' },
    { units: 2, activation: 'softmax' },
  ],
  loss: 'softmax_cross_entropy',
};
const P = 3 * 4 + 4 + 4 * 2 + 2;

function randomArray(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextNormal();
  return a;
}
const u32 = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function sample(): CheckpointContents {
  const rng = new Rng(42);
  const config = validateOptimizerConfig({ name: 'adam', lr: 0.001, schedule: { type: 'cosine', totalSteps: 100 } });
  const state = createOptimizerState(config, P);
  state.t = 7;
  state.slots.m.set(randomArray(rng, P));
  state.slots.v.set(randomArray(rng, P).map(Math.abs));
  const params = randomArray(rng, P);
  params[0] = -0;
  params[1] = 1e-45;
  return { spec, params, optimizer: { config, state }, training: { step: 7, epoch: 1, rng: [1, 2, 3, 4], note: 'ünïcode' } };
}

/** The data section and header length of a safetensors file. */
function sections(bytes: Uint8Array): { n: number; data: Uint8Array } {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return { n, data: bytes.subarray(8 + n) };
}

/** Byte index of the first occurrence of `text` in the header. */
function headerIndex(bytes: Uint8Array, text: string): number {
  const needle = new TextEncoder().encode(text);
  const end = 8 + sections(bytes).n;
  for (let i = 8; i + needle.length <= end; i++) if (needle.every((b, j) => bytes[i + j] === b)) return i;
  throw new Error(`${text} not in header`);
}

function errorOf(bytes: Uint8Array, expect_?: { spec?: ModelSpec }): string {
  try {
    decodeCheckpoint(bytes, expect_);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return (e as Error).message;
  }
  throw new Error('expected a CheckpointError');
}

/** Re-encode a checkpoint's tensors with a tweak, keeping its metadata and a valid checksum. */
function rewrite(bytes: Uint8Array, tweak: (t: { name: string; shape: number[]; data: Float32Array }[]) => void): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const list = [...tensors].map(([name, t]) => ({ name, ...t }));
  tweak(list);
  const draft = encodeSafetensors(list, metadata);
  return encodeSafetensors(list, { ...metadata, 'dptrain.checksum': bytesToHex(sha256(sections(draft).data)) });
}

describe('encodeCheckpoint / decodeCheckpoint', () => {
  it('round-trips bit-exactly: params, optimizer slots, config, t, training state', () => {
    const c = sample();
    const back = decodeCheckpoint(encodeCheckpoint(c), { spec });
    expect(back.spec).toEqual(spec);
    expect(u32(back.params)).toEqual(u32(c.params));
    expect(back.optimizer!.config).toEqual(c.optimizer!.config);
    expect(back.optimizer!.state.t).toBe(7);
    expect(Object.keys(back.optimizer!.state.slots)).toEqual(['m', 'v']);
    expect(u32(back.optimizer!.state.slots.m)).toEqual(u32(c.optimizer!.state.slots.m));
    expect(u32(back.optimizer!.state.slots.v)).toEqual(u32(c.optimizer!.state.slots.v));
    expect(back.training).toEqual(c.training);
    expect(back.params.byteOffset % 4).toBe(0);
    // re-encoding the decoded contents gives the same bytes
    expect(encodeCheckpoint(back)).toEqual(encodeCheckpoint(c));
  });

  it('round-trips without optimizer / training, and with an optimizer that has no slots', () => {
    const plain = decodeCheckpoint(encodeCheckpoint({ spec, params: sample().params }));
    expect(plain.optimizer).toBeUndefined();
    expect(plain.training).toBeUndefined();
    const config = validateOptimizerConfig({ name: 'sgd', lr: 0.5 });
    const sgd = decodeCheckpoint(encodeCheckpoint({ spec, params: new Float32Array(P), optimizer: { config, state: { t: 3, slots: {} } } }));
    expect(sgd.optimizer).toEqual({ config, state: { t: 3, slots: {} } });
  });

  it('stores PyTorch-style tensor names and shapes and the dptrain metadata with a SHA-256 of the data', () => {
    const bytes = encodeCheckpoint(sample());
    const { tensors, metadata } = decodeSafetensors(bytes);
    const names = paramLayout(spec).tensors.map((t) => t.name);
    expect(names).toEqual(['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']);
    expect([...tensors.keys()]).toEqual([...names, ...names.map((n) => `optimizer.m.${n}`), ...names.map((n) => `optimizer.v.${n}`)]);
    expect(tensors.get('layers.0.weight')!.shape).toEqual([4, 3]);
    expect(tensors.get('optimizer.v.layers.1.bias')!.shape).toEqual([2]);
    expect(metadata['dptrain.format']).toBe('1');
    expect(JSON.parse(metadata['dptrain.spec'])).toEqual(spec);
    expect(JSON.parse(metadata['dptrain.optimizer']).t).toBe(7);
    expect(JSON.parse(metadata['dptrain.training']).step).toBe(7);
    expect(metadata['dptrain.checksum']).toBe(bytesToHex(sha256(sections(bytes).data)));
  });

  it('truncated file', () => {
    const bytes = encodeCheckpoint(sample());
    const need = 4 * P * 3;
    expect(errorOf(bytes.subarray(0, bytes.length - 10))).toBe(`checkpoint: file is truncated: header says ${need} bytes of data, file has ${need - 10}`);
  });

  it('flipped byte in the data section: checksum mismatch', () => {
    const bytes = encodeCheckpoint(sample()).slice();
    bytes[bytes.length - 5] ^= 0x10;
    expect(errorOf(bytes)).toBe('checkpoint: checksum mismatch (file corrupted)');
  });

  it('flipped byte in the header: invalid JSON', () => {
    const bytes = encodeCheckpoint(sample()).slice();
    const at = headerIndex(bytes, '"dtype"');
    expect(bytes[at]).toBe(0x22);
    bytes[at] ^= 0x01; // '"' -> '#'
    expect(errorOf(bytes)).toMatch(/^checkpoint: header is not valid JSON/);
  });

  it('header length larger than the file', () => {
    const bytes = encodeCheckpoint(sample()).slice();
    new DataView(bytes.buffer).setUint32(0, bytes.length, true);
    expect(errorOf(bytes)).toMatch(new RegExp(`^checkpoint: header length ${bytes.length} is larger than the file`));
  });

  it('wrong spec: names the tensor, its shape and the expected shape', () => {
    const bytes = encodeCheckpoint(sample());
    const other: ModelSpec = { ...spec, layers: [{ units: 4, activation: 'relu' }, { units: 10, activation: 'softmax' }] };
    expect(errorOf(bytes, { spec: other })).toBe('checkpoint: tensor layers.1.weight has shape [2,4], expected [10,4]');
    const wider: ModelSpec = { ...spec, inputSize: 5 };
    expect(errorOf(bytes, { spec: wider })).toBe('checkpoint: tensor layers.0.weight has shape [4,3], expected [4,5]');
    const act: ModelSpec = { ...spec, layers: [{ units: 4, activation: 'tanh' }, spec.layers[1]] };
    expect(errorOf(bytes, { spec: act })).toBe('checkpoint: model spec differs from the expected one at model.layers[0].activation: file has "relu", expected "tanh"');
  });

  it('missing tensor (with a valid checksum) names it and its shape', () => {
    const bytes = rewrite(encodeCheckpoint(sample()), (l) => l.splice(l.findIndex((t) => t.name === 'layers.1.bias'), 1));
    expect(errorOf(bytes)).toBe('checkpoint: missing tensor layers.1.bias [2]');
    const noSlot = rewrite(encodeCheckpoint(sample()), (l) => l.splice(l.findIndex((t) => t.name === 'optimizer.v.layers.0.weight'), 1));
    expect(errorOf(noSlot)).toBe('checkpoint: missing tensor optimizer.v.layers.0.weight [4,3]');
    const extra = rewrite(encodeCheckpoint(sample()), (l) => l.push({ name: 'layers.9.weight', shape: [1], data: new Float32Array(1) }));
    expect(errorOf(extra)).toBe('checkpoint: unexpected tensor layers.9.weight');
  });

  it('non-F32 dtype is rejected naming the dtype', () => {
    const bytes = encodeCheckpoint(sample()).slice();
    bytes.set(new TextEncoder().encode('"F16"'), headerIndex(bytes, '"F32"'));
    expect(errorOf(bytes)).toBe('checkpoint: tensor layers.0.weight has dtype "F16", only F32 is supported');
  });

  it('rejects a plain safetensors file and a bad stored spec', () => {
    expect(errorOf(encodeSafetensors([{ name: 'a', shape: [1], data: new Float32Array(1) }]))).toMatch(/not a dptrain checkpoint/);
    const bad = rewrite(encodeCheckpoint(sample()), () => {});
    const { tensors, metadata } = decodeSafetensors(bad);
    const list = [...tensors].map(([name, t]) => ({ name, ...t }));
    const broken = encodeSafetensors(list, { ...metadata, 'dptrain.spec': '{"inputSize":0}' });
    expect(errorOf(broken)).toMatch(/^checkpoint: stored model spec is invalid: model.inputSize/);
  });

  it('validates what it encodes', () => {
    expect(() => encodeCheckpoint({ spec, params: new Float32Array(P - 1) })).toThrow(ShapeError);
    const c = sample();
    c.optimizer!.state.slots.v = new Float32Array(3);
    expect(() => encodeCheckpoint(c)).toThrow(/slot v/);
    expect(() => encodeCheckpoint({ spec, params: new Float32Array(P), training: { big: 1n } as never })).toThrow(/not JSON-serialisable/);
  });
});
