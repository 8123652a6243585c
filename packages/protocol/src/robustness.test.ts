import { Rng } from '@dptrain/core';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';
import { EXAMPLE_PARAM_COUNT, exampleMessageList, exampleMessages } from './examples.js';
import { FRAME_PREFIX_BYTES, maxFrameBytes, writeFrame } from './frame.js';
import { LIMITS } from './messages.js';
import { MAX_HEADER_DEPTH, scanMsgpack } from './msgpack-scan.js';
import type { DecodeContext } from './validate.js';

const ctx: DecodeContext = { paramCount: EXAMPLE_PARAM_COUNT };

function codeOf(bytes: unknown, c: DecodeContext = ctx): ProtocolErrorCode | 'ok' {
  try {
    decode(bytes as Uint8Array, c);
    return 'ok';
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw new Error(`non-ProtocolError escaped: ${String(e)}`);
    expect(e.code).not.toBe('E_INTERNAL');
    return e.code;
  }
}

/** A frame whose header is the given raw msgpack bytes. */
function rawHeaderFrame(header: number[], payload = 0): Uint8Array {
  const o = (FRAME_PREFIX_BYTES + header.length + 3) & ~3;
  const f = new Uint8Array(o + payload);
  const dv = new DataView(f.buffer);
  dv.setUint32(0, header.length, true);
  dv.setUint32(4, o, true);
  dv.setUint32(8, payload, true);
  f.set(header, FRAME_PREFIX_BYTES);
  return f;
}
const str = (s: string) => [0xa0 | s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

describe('hostile frames', () => {
  it('random bytes never decode and never throw anything but ProtocolError', () => {
    const rng = new Rng(7);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const b = new Uint8Array(rng.nextInt(80));
      for (let j = 0; j < b.length; j++) b[j] = rng.nextInt(256);
      const c = codeOf(b);
      expect(c).not.toBe('ok');
      seen.add(c);
    }
    expect(seen.has('E_DECODE')).toBe(true);
  });

  it('every truncation of every example frame is E_DECODE', () => {
    for (const m of exampleMessageList()) {
      const f = encode(m);
      for (let cut = 0; cut < f.length; cut++) expect(codeOf(f.subarray(0, cut)), `${m.type} cut at ${cut}`).toBe('E_DECODE');
      // and trailing garbage
      const longer = new Uint8Array(f.length + 4);
      longer.set(f);
      expect(codeOf(longer)).toBe('E_DECODE');
    }
  });

  it('huge declared lengths fail in the scanner before anything is allocated', () => {
    const cases: [string, number[]][] = [
      ['bin32 of 4 GiB', [0x81, ...str('type'), 0xc6, 0xff, 0xff, 0xff, 0xff]],
      ['str32 of 4 GiB', [0x81, ...str('type'), 0xdb, 0xff, 0xff, 0xff, 0xff]],
      ['array32 of 4G entries', [0x81, ...str('type'), 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00]],
      ['map32 of 4G entries', [0xdf, 0xff, 0xff, 0xff, 0xff, 0x00]],
    ];
    for (const [name, header] of cases) {
      let err: unknown;
      try {
        decode(rawHeaderFrame(header));
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code, name).toBe('E_DECODE');
      expect((err as ProtocolError).message, name).toMatch(/needs 4294967295 more bytes|declares 4294967295 entries/);
    }
  });

  it('a prefix declaring a 4 GiB payload or header is refused without reading it', () => {
    const f = encode(exampleMessages().bye);
    const dv = new DataView(f.buffer);
    dv.setUint32(8, 0xfffffffc, true);
    expect(codeOf(f)).toBe('E_DECODE');
    const g = encode(exampleMessages().bye);
    new DataView(g.buffer).setUint32(0, 0xffffffff, true);
    expect(codeOf(g)).toBe('E_DECODE');
  });

  it('frames above maxFrameBytes are E_TOO_LARGE with close code 1009', () => {
    const f = encode({ type: 'params', version: 1, data: new Float32Array(100) });
    expect(codeOf(f, { maxFrameBytes: f.length - 1 })).toBe('E_TOO_LARGE');
    expect(codeOf(f, { paramCount: 100, maxFrameBytes: f.length })).toBe('ok');
    try {
      decode(f, { maxFrameBytes: 10 });
    } catch (e) {
      expect((e as ProtocolError).closeCode).toBe(1009);
    }
    // with paramCount and maxIndices the limit is maxFrameBytes(...): a bigger frame is refused before parsing
    const big = encode({ type: 'params', version: 1, data: new Float32Array(100 + LIMITS.maxHeaderBytes) });
    expect(codeOf(big, { paramCount: 100, maxIndices: 10 })).toBe('E_TOO_LARGE');
    expect(codeOf(big, { paramCount: 100 })).toBe('E_LENGTH');
  });

  it('maxFrameBytes bounds every valid frame and rejects bad arguments', () => {
    for (const m of exampleMessageList()) expect(encode(m).length).toBeLessThanOrEqual(maxFrameBytes(EXAMPLE_PARAM_COUNT, 5));
    expect(maxFrameBytes(1000, 10)).toBe(FRAME_PREFIX_BYTES + LIMITS.maxHeaderBytes + 4000);
    expect(maxFrameBytes(10, 1000)).toBe(FRAME_PREFIX_BYTES + LIMITS.maxHeaderBytes + 4000);
    expect(() => maxFrameBytes(-1)).toThrow(RangeError);
    expect(() => maxFrameBytes(1.5)).toThrow(/paramCount/);
  });

  it('refuses ext types, the reserved byte, non-string keys, deep nesting, stray bytes, dirty padding, non-map headers', () => {
    const t = [...str('type'), ...str('bye'), ...str('v'), 1, ...str('reason'), ...str('x')];
    expect(codeOf(rawHeaderFrame([0x83, ...t]))).toBe('ok');
    expect(codeOf(rawHeaderFrame([0x84, ...t, ...str('d'), 0xd4, 0x74, 0x00]))).toBe('E_DECODE'); // fixext1
    expect(codeOf(rawHeaderFrame([0x84, ...t, ...str('d'), 0xc7, 0x01, 0x65, 0x00]))).toBe('E_DECODE'); // ext8
    expect(codeOf(rawHeaderFrame([0x84, ...t, ...str('d'), 0xc1]))).toBe('E_DECODE');
    expect(codeOf(rawHeaderFrame([0x84, ...t, 0x05, 0x01]))).toBe('E_DECODE'); // int key
    const deep = [0x84, ...t, ...str('d'), ...new Array(MAX_HEADER_DEPTH + 1).fill(0x91), 0x00];
    expect(codeOf(rawHeaderFrame(deep))).toBe('E_DECODE');
    const ok = [0x84, ...t, ...str('d'), ...new Array(MAX_HEADER_DEPTH - 1).fill(0x91), 0x00];
    expect(codeOf(rawHeaderFrame(ok))).toBe('ok');
    const stray = rawHeaderFrame([0x83, ...t, 0x00]);
    expect(codeOf(stray)).toBe('E_DECODE');
    const f = encode({ type: 'params', version: 1, data: Float32Array.from([1, 2]) }); // has 3 bytes of padding
    f[FRAME_PREFIX_BYTES + new DataView(f.buffer).getUint32(0, true)] = 1;
    expect(codeOf(f, {})).toBe('E_DECODE');
    expect(codeOf(rawHeaderFrame([0x93, 1, 2, 3]))).toBe('E_DECODE');
    expect(codeOf(rawHeaderFrame([0xc0]))).toBe('E_DECODE');
  });

  it('non-binary input is E_DECODE', () => {
    expect(codeOf('{"type":"bye"}')).toBe('E_DECODE');
    expect(codeOf(undefined)).toBe('E_DECODE');
    expect(codeOf(new Uint8Array(0))).toBe('E_DECODE');
  });
});

describe('scanMsgpack', () => {
  it('finds exactly the end of values msgpackr writes', () => {
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    const rng = new Rng(11);
    const value = (depth: number): unknown => {
      const k = rng.nextInt(depth > 3 ? 6 : 8);
      switch (k) {
        case 0: return rng.nextInt(2) === 0 ? rng.nextInt(300) : -rng.nextInt(70000);
        case 1: return rng.nextFloat() * 1e6;
        case 2: return 'é'.repeat(rng.nextInt(3)) + 'x'.repeat(rng.nextInt(rng.nextInt(2) ? 40 : 70000));
        case 3: return rng.nextInt(2) === 0;
        case 4: return null;
        case 5: return rng.nextU32() * 65536;
        case 6: return Array.from({ length: rng.nextInt(rng.nextInt(2) ? 5 : 20) }, () => value(depth + 1));
        default: return Object.fromEntries(Array.from({ length: rng.nextInt(20) }, (_, i) => [`k${i}`, value(depth + 1)]));
      }
    };
    for (let i = 0; i < 200; i++) {
      const b = packr.pack({ root: value(0) });
      const padded = new Uint8Array(b.length + 3);
      padded.set(b, 1);
      expect(scanMsgpack(padded, 1, padded.length)).toBe(b.length + 1);
    }
  });
});
