import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from './errors.js';
import { LIMITS } from './messages.js';
import { scanMsgpack } from './msgpack-scan.js';
import { isObj, type Obj } from './fields.js';

/**
 * Frame layout (all integers little-endian):
 *
 *   0   u32  headerLen      H, bytes of the msgpack header (≥ 1)
 *   4   u32  payloadOffset  O, multiple of 4, 12 + H ≤ O ≤ 12 + LIMITS.maxHeaderBytes
 *   8   u32  payloadLength  N, multiple of 4; the frame is exactly O + N bytes
 *   12  H bytes             the header: one msgpack map with string keys
 *   12+H .. O               zero padding
 *   O   N bytes             the payload: raw little-endian float32 or int32 values
 *
 * The encoder uses O = 12 + H rounded up to a multiple of 4, so a payload starts 4-byte
 * aligned relative to the frame and decode can return a typed-array view over it.
 */
export const FRAME_PREFIX_BYTES = 12;

/** The header and the payload bytes of a frame (payload is a view into the input). */
export interface RawFrame {
  header: Obj;
  payload: Uint8Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws unless the host stores typed arrays little-endian (payloads are copied raw). */
export function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new ProtocolError('E_INTERNAL', 'dptrain frames need a little-endian host');
}

// No records, no structured clone, no extensions on either side; maps become plain objects.
const options = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  useFloat32: 0,
  int64AsType: 'number',
} as const;
const packr = new Packr(options);
const unpackr = new Unpackr(options);

/** The largest frame a peer may send for these sizes; use it as the WebSocket maxPayload. */
export function maxFrameBytes(paramCount: number, maxIndices = 0): number {
  for (const [name, v] of [['paramCount', paramCount], ['maxIndices', maxIndices]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > LIMITS.maxParamCount) {
      throw new RangeError(`${name} must be an integer in [0, ${LIMITS.maxParamCount}], got ${v}`);
    }
  }
  return FRAME_PREFIX_BYTES + LIMITS.maxHeaderBytes + 4 * Math.max(paramCount, maxIndices);
}

/** Pack a header; throws E_TOO_LARGE if it exceeds the limit. */
export function packHeader(header: Obj): Uint8Array {
  const h = packr.pack(header);
  if (h.length > LIMITS.maxHeaderBytes) {
    throw new ProtocolError('E_TOO_LARGE', `header is ${h.length} bytes, the limit is ${LIMITS.maxHeaderBytes}`);
  }
  return h;
}

/** Write prefix and header into `frame` (whose payload region starts at payloadOffset). */
export function writePrefix(frame: Uint8Array, h: Uint8Array, payloadOffset: number, payloadLength: number): void {
  const dv = new DataView(frame.buffer, frame.byteOffset, FRAME_PREFIX_BYTES);
  dv.setUint32(0, h.length, true);
  dv.setUint32(4, payloadOffset, true);
  dv.setUint32(8, payloadLength, true);
  frame.set(h, FRAME_PREFIX_BYTES);
}

/** Build a frame: header (a plain map without typed arrays) plus raw payload bytes (copied once). */
export function writeFrame(header: Obj, payload?: ArrayBufferView): Uint8Array {
  assertLittleEndian();
  const h = packHeader(header);
  const n = payload ? payload.byteLength : 0;
  if (n % 4 !== 0) throw new ProtocolError('E_LENGTH', `payload is ${n} bytes, not a multiple of 4`);
  const o = (FRAME_PREFIX_BYTES + h.length + 3) & ~3;
  const frame = new Uint8Array(o + n);
  writePrefix(frame, h, o, n);
  if (payload && n > 0) frame.set(new Uint8Array(payload.buffer, payload.byteOffset, n), o);
  return frame;
}

/** Check the prefix and padding, scan and unpack the header. Throws ProtocolError (E_DECODE, E_TOO_LARGE). */
export function readFrame(bytes: Uint8Array, maxBytes?: number): RawFrame {
  assertLittleEndian();
  const len = bytes.length;
  if (maxBytes !== undefined && len > maxBytes) {
    throw new ProtocolError('E_TOO_LARGE', `frame is ${len} bytes, the limit is ${maxBytes}`);
  }
  if (len < FRAME_PREFIX_BYTES + 1) throw new ProtocolError('E_DECODE', `frame is ${len} bytes, shorter than the ${FRAME_PREFIX_BYTES}-byte prefix plus a header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, FRAME_PREFIX_BYTES);
  const hl = dv.getUint32(0, true);
  const o = dv.getUint32(4, true);
  const n = dv.getUint32(8, true);
  if (hl < 1 || hl > LIMITS.maxHeaderBytes) throw new ProtocolError('E_DECODE', `headerLen ${hl} is outside [1, ${LIMITS.maxHeaderBytes}]`);
  if (o % 4 !== 0 || o < FRAME_PREFIX_BYTES + hl || o > FRAME_PREFIX_BYTES + LIMITS.maxHeaderBytes) {
    throw new ProtocolError('E_DECODE', `payloadOffset ${o} must be a multiple of 4 in [${FRAME_PREFIX_BYTES + hl}, ${FRAME_PREFIX_BYTES + LIMITS.maxHeaderBytes}]`);
  }
  if (n % 4 !== 0) throw new ProtocolError('E_DECODE', `payloadLength ${n} is not a multiple of 4`);
  if (o + n !== len) throw new ProtocolError('E_DECODE', `frame is ${len} bytes but its prefix declares ${o + n} (payloadOffset ${o} + payloadLength ${n}): truncated or padded`);
  const hEnd = FRAME_PREFIX_BYTES + hl;
  for (let i = hEnd; i < o; i++) {
    if (bytes[i] !== 0) throw new ProtocolError('E_DECODE', `padding byte ${i} is 0x${bytes[i].toString(16)}, expected 0`);
  }
  const end = scanMsgpack(bytes, FRAME_PREFIX_BYTES, hEnd);
  if (end !== hEnd) throw new ProtocolError('E_DECODE', `header is ${end - FRAME_PREFIX_BYTES} bytes of msgpack followed by ${hEnd - end} stray bytes`);
  if (bytes[FRAME_PREFIX_BYTES] !== 0xde && bytes[FRAME_PREFIX_BYTES] !== 0xdf && (bytes[FRAME_PREFIX_BYTES] & 0xf0) !== 0x80) {
    throw new ProtocolError('E_DECODE', 'header is not a msgpack map');
  }
  let header: unknown;
  try {
    header = unpackr.unpack(bytes.subarray(FRAME_PREFIX_BYTES, hEnd));
  } catch (e) {
    throw new ProtocolError('E_DECODE', `header: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  if (!isObj(header)) throw new ProtocolError('E_DECODE', 'header is not a msgpack map');
  return { header, payload: bytes.subarray(o, o + n) };
}
