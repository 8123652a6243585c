import { ProtocolError } from './errors.js';

/** Deepest nesting of maps and arrays accepted in a header. */
export const MAX_HEADER_DEPTH = 16;

const fail = (msg: string) => new ProtocolError('E_DECODE', `header: ${msg}`);

/**
 * Walk one msgpack value in bytes[start, end) without building it, and return where it ends.
 * This runs before msgpackr sees the bytes, so a hostile header cannot make the decoder
 * allocate or loop: every declared length and count is checked against the bytes that are
 * actually there, nesting is capped at MAX_HEADER_DEPTH, ext types (msgpackr's
 * structured-clone extensions, timestamps, undefined) and the reserved byte 0xc1 are
 * refused, and map keys must be strings. Throws ProtocolError E_DECODE.
 */
export function scanMsgpack(bytes: Uint8Array, start: number, end: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  // Values still to read at each open level (arrays: elements; maps: keys + values).
  const pending: number[] = [];
  // For maps: whether the next value at that level is a key.
  const isMap: boolean[] = [];
  let expectKey = false;

  const need = (n: number, what: string) => {
    if (n > end - pos) throw fail(`truncated ${what} at byte ${pos} (needs ${n} more bytes, ${end - pos} left)`);
  };
  let opened = false;
  const open = (count: number, map: boolean, at: number) => {
    const items = map ? count * 2 : count;
    // Every item takes at least one byte: refuse counts the remaining bytes cannot hold.
    if (items > end - pos) throw fail(`${map ? 'map' : 'array'} at byte ${at} declares ${count} entries but only ${end - pos} bytes remain`);
    if (items === 0) return;
    if (pending.length >= MAX_HEADER_DEPTH) throw fail(`nesting deeper than ${MAX_HEADER_DEPTH} at byte ${at}`);
    pending.push(items);
    isMap.push(map);
    opened = true;
  };

  for (;;) {
    need(1, 'value');
    const at = pos;
    const b = bytes[pos++];
    if (expectKey && !((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))) {
      throw fail(`map key at byte ${at} is not a string (0x${b.toString(16).padStart(2, '0')})`);
    }
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, negative fixint, nil, false, true
    } else if (b <= 0x8f) open(b & 0x0f, true, at);
    else if (b <= 0x9f) open(b & 0x0f, false, at);
    else if (b <= 0xbf) {
      need(b & 0x1f, 'string');
      pos += b & 0x1f;
    } else {
      switch (b) {
        case 0xc4: case 0xd9: { need(1, 'length'); const n = bytes[pos]; pos += 1; need(n, 'string/bin'); pos += n; break; }
        case 0xc5: case 0xda: { need(2, 'length'); const n = view.getUint16(pos); pos += 2; need(n, 'string/bin'); pos += n; break; }
        case 0xc6: case 0xdb: { need(4, 'length'); const n = view.getUint32(pos); pos += 4; need(n, 'string/bin'); pos += n; break; }
        case 0xca: need(4, 'float32'); pos += 4; break;
        case 0xcb: need(8, 'float64'); pos += 8; break;
        case 0xcc: case 0xd0: need(1, 'int'); pos += 1; break;
        case 0xcd: case 0xd1: need(2, 'int'); pos += 2; break;
        case 0xce: case 0xd2: need(4, 'int'); pos += 4; break;
        case 0xcf: case 0xd3: need(8, 'int'); pos += 8; break;
        case 0xdc: { need(2, 'array length'); const n = view.getUint16(pos); pos += 2; open(n, false, at); break; }
        case 0xdd: { need(4, 'array length'); const n = view.getUint32(pos); pos += 4; open(n, false, at); break; }
        case 0xde: { need(2, 'map length'); const n = view.getUint16(pos); pos += 2; open(n, true, at); break; }
        case 0xdf: { need(4, 'map length'); const n = view.getUint32(pos); pos += 4; open(n, true, at); break; }
        default:
          // 0xc1 (never used), 0xc7–0xc9 and 0xd4–0xd8 (ext types)
          throw fail(`msgpack type 0x${b.toString(16)} at byte ${at} is not allowed`);
      }
    }
    if (opened) {
      opened = false;
      expectKey = isMap[isMap.length - 1];
      continue;
    }
    // A scalar (or an empty container) finished: pop completed levels.
    while (pending.length > 0) {
      const top = pending.length - 1;
      pending[top] -= 1;
      if (pending[top] > 0) break;
      pending.pop();
      isMap.pop();
    }
    if (pending.length === 0) return pos;
    const top = pending.length - 1;
    expectKey = isMap[top] && pending[top] % 2 === 0;
  }
}
