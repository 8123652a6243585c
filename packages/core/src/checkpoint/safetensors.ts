import { bytesToUtf8, utf8ToBytes } from '@noble/hashes/utils.js';
import { CheckpointError, ShapeError } from '../errors.js';

/**
 * The safetensors format (huggingface/safetensors), F32 only:
 *   8 bytes  little-endian u64 N
 *   N bytes  UTF-8 JSON header {"__metadata__": {k: string}, name: {dtype, shape, data_offsets: [begin, end]}, ...},
 *            padded with spaces so N is a multiple of 8 (as the reference writer does)
 *   rest     the data section: tensors' raw little-endian bytes, offsets relative to its start.
 * We write `__metadata__` first, then the tensors in the given order, packed back to back.
 */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface DecodedSafetensors {
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  metadata: Record<string, string>;
}

/** Headers larger than this are refused (the reference reader's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function fail(msg: string): never {
  throw new CheckpointError(`checkpoint: ${msg}`);
}
const fmtShape = (s: number[]) => `[${s.join(',')}]`;
const shapeSize = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Float32 values as little-endian bytes (copied). */
function f32ToBytes(src: Float32Array, dst: Uint8Array, at: number): void {
  if (LITTLE_ENDIAN) {
    dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), at);
    return;
  }
  const dv = new DataView(dst.buffer, dst.byteOffset + at, src.byteLength);
  for (let i = 0; i < src.length; i++) dv.setFloat32(i * 4, src[i], true);
}

/** Little-endian bytes to a fresh, aligned Float32Array (never a view into the file). */
function bytesToF32(src: Uint8Array): Float32Array {
  const out = new Float32Array(src.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(src);
  else {
    const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  }
  return out;
}

/** The data section for `tensors` and their header entries (JSON text, in order). */
export function packTensors(tensors: NamedTensor[]): { data: Uint8Array; entries: string[] } {
  const seen = new Set<string>();
  let total = 0;
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '' || t.name === '__metadata__') throw new ShapeError(`safetensors: invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new ShapeError(`safetensors: duplicate tensor name ${t.name}`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new ShapeError(`safetensors: tensor ${t.name} has invalid shape ${JSON.stringify(t.shape)}`);
    if (!(t.data instanceof Float32Array)) throw new ShapeError(`safetensors: tensor ${t.name} data must be a Float32Array`);
    if (shapeSize(t.shape) !== t.data.length) throw new ShapeError(`safetensors: tensor ${t.name} has ${t.data.length} values, shape ${fmtShape(t.shape)} needs ${shapeSize(t.shape)}`);
    total += t.data.byteLength;
  }
  const data = new Uint8Array(total);
  const entries: string[] = [];
  let at = 0;
  for (const t of tensors) {
    f32ToBytes(t.data, data, at);
    const info = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    entries.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    at += t.data.byteLength;
  }
  return { data, entries };
}

/** Length prefix + space-padded header + data. */
export function assembleSafetensors(entries: string[], data: Uint8Array, metadata?: Record<string, string>): Uint8Array {
  const parts = [...entries];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new ShapeError(`safetensors: metadata ${k} must be a string, got ${typeof v}`);
    parts.unshift(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const json = utf8ToBytes(`{${parts.join(',')}}`);
  const n = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + n + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, n, true);
  dv.setUint32(4, Math.floor(n / 4294967296), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  out.set(data, 8 + n);
  return out;
}

/** Write F32 tensors (in the given order) and optional string metadata as a safetensors file. */
export function encodeSafetensors(tensors: NamedTensor[], metadata?: Record<string, string>): Uint8Array {
  const { data, entries } = packTensors(tensors);
  return assembleSafetensors(entries, data, metadata);
}

interface RawEntry {
  name: string;
  shape: number[];
  begin: number;
  end: number;
}

/** Parse and check a safetensors file; also returns the data section (a view) for checksums. */
export function readSafetensors(bytes: Uint8Array): DecodedSafetensors & { dataSection: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) fail('expected the file as a Uint8Array');
  if (bytes.length < 8) fail(`file is truncated: ${bytes.length} bytes, the header length alone needs 8`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 4294967296;
  if (n > bytes.length - 8) fail(`header length ${n} is larger than the file (${bytes.length - 8} bytes after the 8-byte prefix): truncated or not a safetensors file`);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2 || bytes[8] !== 0x7b) fail('header does not start with "{": not a safetensors file');
  let header: unknown;
  try {
    header = JSON.parse(bytesToUtf8(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const h = header as Record<string, unknown>;
  const metadata: Record<string, string> = {};
  const raw: RawEntry[] = [];
  for (const [name, v] of Object.entries(h)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('__metadata__ is not an object');
      for (const [k, s] of Object.entries(v as object)) {
        if (typeof s !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = s;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null) fail(`tensor ${name} has no {dtype, shape, data_offsets} entry`);
    const e = v as Record<string, unknown>;
    if (e.dtype !== 'F32') fail(`tensor ${name} has dtype ${JSON.stringify(e.dtype)}, only F32 is supported`);
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor ${name} has invalid shape ${JSON.stringify(shape)}`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => !Number.isSafeInteger(d) || d < 0) || off[0] > off[1]) {
      fail(`tensor ${name} has invalid data_offsets ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as number[];
    const want = shapeSize(shape as number[]) * 4;
    if (end - begin !== want) fail(`tensor ${name} spans ${end - begin} bytes, shape ${fmtShape(shape as number[])} of F32 needs ${want}`);
    raw.push({ name, shape: shape as number[], begin, end });
  }
  const sorted = [...raw].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const [i, e] of sorted.entries()) {
    if (e.begin < at) fail(`tensor ${e.name} [${e.begin},${e.end}) overlaps tensor ${sorted[i - 1].name}`);
    if (e.begin > at) fail(`gap in the data section before tensor ${e.name} (bytes ${at} to ${e.begin} unused)`);
    at = e.end;
  }
  const have = bytes.length - 8 - n;
  if (at > have) fail(`file is truncated: header says ${at} bytes of data, file has ${have}`);
  if (at < have) fail(`${have - at} unexpected bytes after the last tensor`);
  const dataSection = bytes.subarray(8 + n);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of raw) tensors.set(e.name, { shape: [...e.shape], data: bytesToF32(dataSection.subarray(e.begin, e.end)) });
  return { tensors, metadata, dataSection };
}

/** Read a safetensors file of F32 tensors (in header order); every check fails with a CheckpointError. */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  const { tensors, metadata } = readSafetensors(bytes);
  return { tensors, metadata };
}
