import { Rng } from '@dptrain/core';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { ERROR_CODES, ProtocolError } from './errors.js';
import { EXAMPLE_PARAM_COUNT, exampleMessageList } from './examples.js';
import type { Message } from './messages.js';
import type { DecodeContext } from './validate.js';

const ctx: DecodeContext = { paramCount: EXAMPLE_PARAM_COUNT, maxIndices: 64, datasetSize: 100, leafSize: 3 };

/** Apply 1–4 random edits: flip a bit, set a byte, set a u32 of the prefix, insert, delete, truncate, duplicate. */
function mutate(rng: Rng, src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  const edits = 1 + rng.nextInt(4);
  for (let e = 0; e < edits; e++) {
    const at = b.length ? rng.nextInt(b.length) : 0;
    switch (rng.nextInt(7)) {
      case 0: if (b.length) b[at] ^= 1 << rng.nextInt(8); break;
      case 1: if (b.length) b[at] = rng.nextInt(256); break;
      case 2: if (b.length >= 12) new DataView(b.buffer).setUint32(4 * rng.nextInt(3), rng.nextInt(2) ? rng.nextU32() : rng.nextInt(256), true); break;
      case 3: { const n = new Uint8Array(b.length + 1); n.set(b.subarray(0, at)); n[at] = rng.nextInt(256); n.set(b.subarray(at), at + 1); b = n; break; }
      case 4: { const n = new Uint8Array(Math.max(0, b.length - 1)); n.set(b.subarray(0, at)); n.set(b.subarray(at + 1), at); b = n; break; }
      case 5: b = b.slice(0, at); break;
      default: { const len = rng.nextInt(8); const n = new Uint8Array(b.length + len); n.set(b.subarray(0, at)); n.set(b.subarray(at, at + len), at); n.set(b.subarray(at), at + Math.min(len, b.length - at)); b = n.subarray(0, b.length + Math.min(len, b.length - at)); break; }
    }
  }
  return b;
}

describe('mutation fuzz', () => {
  it('2000 mutated real frames: a valid message or a ProtocolError with a known code, never anything else', () => {
    const rng = new Rng(20240601);
    const corpus = exampleMessageList().map((m) => encode(m));
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const frame = mutate(rng, corpus[rng.nextInt(corpus.length)]);
      let msg: Message | undefined;
      try {
        msg = decode(frame, ctx);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw new Error(`iteration ${i}: ${String(e)}`, { cause: e });
        expect(Object.keys(ERROR_CODES)).toContain(e.code);
        expect(e.code, `iteration ${i}: ${e.message}`).not.toBe('E_INTERNAL');
        counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
        continue;
      }
      // A frame that decodes is a valid message: it re-encodes and decodes to the same thing.
      expect(decode(encode(msg), ctx)).toEqual(msg);
      counts.set('ok', (counts.get('ok') ?? 0) + 1);
    }
    // The fuzz reaches past the frame checks into validation, and some mutations survive.
    expect(counts.get('E_DECODE')).toBeGreaterThan(100);
    expect(counts.get('ok')).toBeGreaterThan(10);
    expect([...counts.keys()].filter((k) => k !== 'ok' && k !== 'E_DECODE').length).toBeGreaterThanOrEqual(3);
  });
});
