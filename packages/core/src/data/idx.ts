import { gunzipSync } from 'fflate';
import { ConfigError, DataError } from '../errors.js';
import type { Dataset } from './dataset.js';
import { oneHot } from './dataset.js';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** IDX element types by type byte: [name, bytes per element]. */
const TYPES: Record<number, [string, number]> = {
  0x08: ['uint8', 1],
  0x09: ['int8', 1],
  0x0b: ['int16', 2],
  0x0c: ['int32', 4],
  0x0d: ['float32', 4],
  0x0e: ['float64', 8],
};

/** Inflate if the bytes start with the gzip magic 1f 8b; otherwise return them as they are. */
export function maybeGunzip(bytes: Uint8Array, what = 'data'): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes);
    } catch (e) {
      throw new DataError(`${what}: gzip data is corrupt or truncated (${(e as Error).message})`);
    }
  }
  return bytes;
}

/**
 * Parse an IDX file (the MNIST distribution format): magic 00 00, a type byte, the number of
 * dimensions, each dimension as a big-endian u32, then the big-endian elements. Gzipped
 * input (1f 8b) is inflated first. Returns the dims and the elements in a native typed array.
 */
export function parseIdx(input: Uint8Array, what = 'idx'): { dims: number[]; data: IdxData } {
  const bytes = maybeGunzip(input, what);
  if (bytes.length < 4) throw new DataError(`${what}: truncated header, got ${bytes.length} bytes, expected at least 4`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(`${what}: bad magic ${got}, expected an IDX file starting 00 00 <type> <ndims>`);
  }
  const type = TYPES[bytes[2]];
  if (!type) throw new DataError(`${what}: unknown element type byte 0x${bytes[2].toString(16)}, expected one of 08 09 0b 0c 0d 0e`);
  const ndims = bytes[3];
  if (ndims < 1) throw new DataError(`${what}: 0 dimensions, expected at least 1`);
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) throw new DataError(`${what}: truncated header, ${ndims} dimensions need ${headerLen} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(dv.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const [name, size] = type;
  const expected = headerLen + count * size;
  if (bytes.length < expected) {
    throw new DataError(`${what}: truncated data, dims [${dims.join(', ')}] of ${name} need ${expected} bytes, got ${bytes.length}`);
  }
  if (bytes.length > expected) {
    throw new DataError(`${what}: dims [${dims.join(', ')}] of ${name} need ${expected} bytes, but the file has ${bytes.length - expected} extra bytes`);
  }
  let data: IdxData;
  switch (name) {
    case 'uint8':
      data = bytes.slice(headerLen, expected);
      break;
    case 'int8':
      data = new Int8Array(bytes.slice(headerLen, expected).buffer);
      break;
    case 'int16':
      data = new Int16Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getInt16(headerLen + 2 * i, false);
      break;
    case 'int32':
      data = new Int32Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getInt32(headerLen + 4 * i, false);
      break;
    case 'float32':
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat32(headerLen + 4 * i, false);
      break;
    default:
      data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = dv.getFloat64(headerLen + 8 * i, false);
  }
  return { dims, data };
}

export interface IdxDatasetOptions {
  /** Number of classes; default max label + 1. Must exceed every label. */
  classes?: number;
  /** Dataset name (default 'idx'). */
  name?: string;
}

/**
 * A classification dataset from an IDX images file ([n, ...] of uint8, scaled to [0, 1], or
 * of float32/float64, kept as is) and an IDX labels file ([n] of integers), raw or gzipped.
 */
export function idxDataset(images: Uint8Array, labelBytes: Uint8Array, opts: IdxDatasetOptions = {}): Dataset {
  const img = parseIdx(images, 'idx images');
  const lab = parseIdx(labelBytes, 'idx labels');
  if (img.dims.length < 2) throw new DataError(`idx images: expected at least 2 dimensions [n, ...], got [${img.dims.join(', ')}]`);
  if (lab.dims.length !== 1) throw new DataError(`idx labels: expected 1 dimension [n], got [${lab.dims.join(', ')}]`);
  const n = img.dims[0];
  if (lab.dims[0] !== n) throw new DataError(`idx: ${n} images but ${lab.dims[0]} labels`);
  if (lab.data instanceof Float32Array || lab.data instanceof Float64Array) throw new DataError('idx labels: expected an integer type, got floats');
  const inputSize = img.dims.slice(1).reduce((a, b) => a * b, 1);
  if (inputSize < 1) throw new DataError(`idx images: empty sample shape [${img.dims.slice(1).join(', ')}]`);
  let x: Float32Array;
  if (img.data instanceof Uint8Array) {
    x = new Float32Array(img.data.length);
    for (let i = 0; i < x.length; i++) x[i] = img.data[i] / 255;
  } else if (img.data instanceof Float32Array || img.data instanceof Float64Array) {
    x = Float32Array.from(img.data);
  } else {
    throw new DataError('idx images: expected uint8, float32 or float64 elements');
  }
  const labels = Int32Array.from(lab.data);
  let max = -1;
  for (let i = 0; i < n; i++) {
    if (labels[i] < 0) throw new DataError(`idx labels[${i}]: expected a class index >= 0, got ${labels[i]}`);
    if (labels[i] > max) max = labels[i];
  }
  const classes = opts.classes ?? Math.max(1, max + 1);
  if (!Number.isInteger(classes) || classes < max + 1 || classes < 1) {
    throw new ConfigError('classes', `expected an integer >= ${max + 1} (max label + 1), got ${opts.classes}`);
  }
  return { name: opts.name ?? 'idx', n, inputSize, outputSize: classes, x, y: oneHot(labels, classes), labels, classes };
}
