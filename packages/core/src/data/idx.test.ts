import { gzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { DataError } from '../errors.js';
import { idxDataset, parseIdx } from './idx.js';

/** Build an IDX file by hand: big-endian header and elements. */
function idx(type: number, dims: number[], values: number[]): Uint8Array {
  const size = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 }[type]!;
  const head = 4 + 4 * dims.length;
  const out = new Uint8Array(head + values.length * size);
  const dv = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  values.forEach((v, i) => {
    const o = head + i * size;
    if (type === 0x08) dv.setUint8(o, v);
    else if (type === 0x09) dv.setInt8(o, v);
    else if (type === 0x0b) dv.setInt16(o, v, false);
    else if (type === 0x0c) dv.setInt32(o, v, false);
    else if (type === 0x0d) dv.setFloat32(o, v, false);
    else dv.setFloat64(o, v, false);
  });
  return out;
}

describe('parseIdx', () => {
  it('reads uint8 dims and data', () => {
    const r = parseIdx(idx(0x08, [2, 3], [1, 2, 3, 250, 251, 252]));
    expect(r.dims).toEqual([2, 3]);
    expect(r.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(r.data)).toEqual([1, 2, 3, 250, 251, 252]);
  });

  it('reads big-endian int16, int32, float32, float64 and int8', () => {
    expect(Array.from(parseIdx(idx(0x0b, [3], [-2, 300, 7])).data)).toEqual([-2, 300, 7]);
    expect(Array.from(parseIdx(idx(0x0c, [2], [-70000, 123456])).data)).toEqual([-70000, 123456]);
    const f = parseIdx(idx(0x0d, [2], [1.5, -0.25]));
    expect(f.data).toBeInstanceOf(Float32Array);
    expect(Array.from(f.data)).toEqual([1.5, -0.25]);
    expect(Array.from(parseIdx(idx(0x0e, [1], [Math.PI])).data)).toEqual([Math.PI]);
    expect(Array.from(parseIdx(idx(0x09, [2], [-5, 5])).data)).toEqual([-5, 5]);
  });

  it('inflates gzip input to the same result', () => {
    const raw = idx(0x08, [4, 2, 2], Array.from({ length: 16 }, (_, i) => i * 13));
    const gz = gzipSync(raw);
    expect(gz[0]).toBe(0x1f);
    const a = parseIdx(raw);
    const b = parseIdx(gz);
    expect(b.dims).toEqual([4, 2, 2]);
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it('rejects bad magic, unknown types, truncation and extra bytes', () => {
    expect(() => parseIdx(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]))).toThrow(/bad magic 50 4b 03 04/);
    expect(() => parseIdx(Uint8Array.from([0, 0, 0x42, 1, 0, 0, 0, 0]))).toThrow(/unknown element type/);
    expect(() => parseIdx(Uint8Array.from([0, 0]))).toThrow(DataError);
    expect(() => parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6]).subarray(0, 16))).toThrow(/truncated data.*\[2, 3\]/);
    expect(() => parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6]).subarray(0, 10))).toThrow(/truncated header/);
    const extra = new Uint8Array(20);
    extra.set(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 6]));
    expect(() => parseIdx(extra)).toThrow(/extra bytes/);
    const gz = gzipSync(idx(0x08, [100], new Array(100).fill(7)));
    expect(() => parseIdx(gz.subarray(0, gz.length - 12))).toThrow(DataError);
  });
});

describe('idxDataset', () => {
  it('scales uint8 images to [0, 1] and one-hot encodes labels', () => {
    const images = idx(0x08, [3, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4, 255, 255, 0, 0]);
    const labels = idx(0x08, [3], [2, 0, 1]);
    const ds = idxDataset(images, gzipSync(labels));
    expect(ds).toMatchObject({ n: 3, inputSize: 4, outputSize: 3, classes: 3 });
    expect(Array.from(ds.x.subarray(0, 4))).toEqual([0, 1, Math.fround(0.2), Math.fround(0.4)]);
    expect(Array.from(ds.labels!)).toEqual([2, 0, 1]);
    expect(Array.from(ds.y)).toEqual([0, 0, 1, 1, 0, 0, 0, 1, 0]);
    expect(idxDataset(images, labels, { classes: 10 }).outputSize).toBe(10);
  });

  it('rejects mismatched counts and too few classes', () => {
    const images = idx(0x08, [3, 2], [0, 0, 0, 0, 0, 0]);
    expect(() => idxDataset(images, idx(0x08, [2], [0, 1]))).toThrow(/3 images but 2 labels/);
    expect(() => idxDataset(images, idx(0x08, [3], [0, 1, 5]), { classes: 4 })).toThrow(/classes/);
  });
});
