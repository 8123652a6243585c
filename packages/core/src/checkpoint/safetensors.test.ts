import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../errors.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

const u32 = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** A file built by hand: u64 LE header length, header text, data bytes. */
function rawFile(header: string, data: Uint8Array, pad = 0): Uint8Array {
  const h = new TextEncoder().encode(header + ' '.repeat(pad));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function f32le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
  return out;
}

function errorOf(bytes: Uint8Array): string {
  try {
    decodeSafetensors(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return (e as Error).message;
  }
  throw new Error('expected a CheckpointError');
}

describe('encodeSafetensors byte layout', () => {
  it('writes u64 LE N, a space-padded JSON header (N % 8 = 0), then packed LE float32 data in header order', () => {
    const a = Float32Array.from([1.5, -2]);
    const b = Float32Array.from([0.25, 3, -0, 7]);
    const bytes = encodeSafetensors([{ name: 'b.weight', shape: [2, 2], data: b }, { name: 'a', shape: [2], data: a }], { k: 'v', 'ü': 'ñ' });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = dv.getUint32(0, true);
    expect(dv.getUint32(4, true)).toBe(0);
    expect(n % 8).toBe(0);
    expect(bytes.length).toBe(8 + n + 24);
    const headerBytes = bytes.subarray(8, 8 + n);
    expect(headerBytes[0]).toBe(0x7b);
    const text = new TextDecoder().decode(headerBytes);
    const trimmed = text.replace(/ +$/, '');
    expect(trimmed.endsWith('}')).toBe(true);
    expect(n - new TextEncoder().encode(trimmed).length).toBeLessThan(8);
    const header = JSON.parse(text);
    expect(Object.keys(header)).toEqual(['__metadata__', 'b.weight', 'a']);
    expect(header).toEqual({
      __metadata__: { k: 'v', 'ü': 'ñ' },
      'b.weight': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      a: { dtype: 'F32', shape: [2], data_offsets: [16, 24] },
    });
    const data = [];
    for (let i = 0; i < 6; i++) data.push(dv.getFloat32(8 + n + 4 * i, true));
    expect(data).toEqual([0.25, 3, -0, 7, 1.5, -2]);
    expect(Object.is(data[2], -0)).toBe(true);
  });

  it('omits __metadata__ when none is given and handles zero-size tensors', () => {
    const bytes = encodeSafetensors([{ name: 'e', shape: [0, 3], data: new Float32Array(0) }]);
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))).toEqual({ e: { dtype: 'F32', shape: [0, 3], data_offsets: [0, 0] } });
    expect(bytes.length).toBe(8 + n);
    expect(decodeSafetensors(bytes).tensors.get('e')!.shape).toEqual([0, 3]);
  });

  it('refuses bad input tensors', () => {
    expect(() => encodeSafetensors([{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).toThrow(/shape \[2,2\] needs 4/);
    expect(() => encodeSafetensors([{ name: 'x', shape: [1], data: new Float32Array(1) }, { name: 'x', shape: [1], data: new Float32Array(1) }])).toThrow(/duplicate/);
    expect(() => encodeSafetensors([{ name: '__metadata__', shape: [1], data: new Float32Array(1) }])).toThrow(/name/);
  });
});

describe('decodeSafetensors', () => {
  it('round-trips bit-exactly (NaN payloads, -0, subnormals, extremes) into aligned copies', () => {
    const bits = Uint32Array.from([0x7fc00001, 0xffa00000, 0x80000000, 0x00000001, 0x7f7fffff, 0x3f800000, 0xff800000]);
    const x = new Float32Array(bits.buffer);
    const bytes = encodeSafetensors([{ name: 'odd', shape: [1], data: Float32Array.from([2]) }, { name: 'x', shape: [7], data: x }]);
    // decode from an odd byte offset: results must still be aligned copies
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const { tensors, metadata } = decodeSafetensors(shifted.subarray(1));
    expect(metadata).toEqual({});
    const got = tensors.get('x')!;
    expect(got.shape).toEqual([7]);
    expect(u32(got.data)).toEqual(Array.from(bits));
    expect(got.data.byteOffset % 4).toBe(0);
    expect(got.data.buffer).not.toBe(shifted.buffer);
    shifted.fill(0);
    expect(u32(got.data)).toEqual(Array.from(bits));
  });

  it('reads a file written by another writer (unpadded header, tensors not in offset order)', () => {
    const file = rawFile('{"w":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', f32le([9, 1, 2]));
    const { tensors } = decodeSafetensors(file);
    expect([...tensors.keys()]).toEqual(['w', 'b']);
    expect(tensors.get('w')).toEqual({ shape: [1, 2], data: Float32Array.from([1, 2]) });
    expect(tensors.get('b')).toEqual({ shape: [], data: Float32Array.from([9]) });
  });

  it('gives a specific error for each kind of bad file', () => {
    const t = (o: object) => JSON.stringify(o);
    const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expect(errorOf(new Uint8Array(5))).toMatch(/truncated: 5 bytes/);
    const big = rawFile(t(ok), f32le([1, 2]));
    new DataView(big.buffer).setUint32(0, 4096, true);
    expect(errorOf(big)).toBe(`checkpoint: header length 4096 is larger than the file (${big.length - 8} bytes after the 8-byte prefix): truncated or not a safetensors file`);
    const huge = rawFile(t(ok), f32le([1, 2]));
    new DataView(huge.buffer).setUint32(4, 1, true);
    expect(errorOf(huge)).toMatch(/header length 4294967\d+ is larger than the file/);
    expect(errorOf(rawFile(t(ok), f32le([1])))).toBe('checkpoint: file is truncated: header says 8 bytes of data, file has 4');
    expect(errorOf(rawFile(t(ok), f32le([1, 2, 3])))).toMatch(/4 unexpected bytes after the last tensor/);
    expect(errorOf(rawFile('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]', f32le([1, 2])))).toMatch(/header is not valid JSON/);
    expect(errorOf(rawFile('[1,2]', new Uint8Array(0)))).toMatch(/does not start with "\{"/);
    expect(errorOf(rawFile(t({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }), f32le([1, 2])))).toBe('checkpoint: tensor a has dtype "F16", only F32 is supported');
    expect(errorOf(rawFile(t({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), f32le([1, 2])))).toMatch(/tensor a spans 8 bytes, shape \[3\] of F32 needs 12/);
    expect(errorOf(rawFile(t({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }), f32le([1, 2])))).toMatch(/invalid data_offsets/);
    expect(
      errorOf(rawFile(t({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }), f32le([1, 2, 3]))),
    ).toMatch(/tensor b \[4,12\) overlaps tensor a/);
    expect(errorOf(rawFile(t({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), f32le([1, 2])))).toMatch(/gap in the data section before tensor a/);
    expect(errorOf(rawFile(t({ __metadata__: { n: 1 } }), new Uint8Array(0)))).toMatch(/__metadata__.n is not a string/);
    expect(errorOf(rawFile(t({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), new Uint8Array(0)))).toMatch(/invalid shape/);
  });
});
