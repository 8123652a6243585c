import { ProtocolError } from './errors.js';
import { isObj, type Obj } from './fields.js';
import { FRAME_PREFIX_BYTES, assertLittleEndian, maxFrameBytes, packHeader, readFrame, writeFrame, writePrefix } from './frame.js';
import { PAYLOADS, PROTOCOL_VERSION, type Message, type MessageInit, type PayloadType, type ResultMessage } from './messages.js';
import { validateMessage, type DecodeContext } from './validate.js';

const payloadSpec = (type: unknown) =>
  typeof type === 'string' && Object.prototype.hasOwnProperty.call(PAYLOADS, type) ? PAYLOADS[type as PayloadType] : undefined;

/** The message without its typed-array field, as it goes into the msgpack header. */
function headerOf(msg: Message): Obj {
  const spec = payloadSpec(msg.type);
  const h: Obj = { ...msg };
  if (spec) delete h[spec.field];
  return h;
}

/**
 * Encode a message into one binary frame (see PROTOCOL.md). The message is validated
 * first (fields, ranges, payload lengths), except that float payloads are not scanned
 * for NaN/Infinity, which the receiver does; use findNonFinite to check before sending.
 * The payload is copied once into the frame. Throws ProtocolError.
 */
export function encode(msg: MessageInit): Uint8Array {
  if (!isObj(msg)) throw new ProtocolError('E_FIELD', 'encode: expected a message object');
  const m = validateMessage({ ...msg, v: msg.v ?? PROTOCOL_VERSION }, {}, { checkFinite: false });
  const spec = payloadSpec(m.type);
  return writeFrame(headerOf(m), spec ? (m as unknown as Record<string, ArrayBufferView>)[spec.field] : undefined);
}

/** Encode a result message; same as encode({ type: 'result', ...header, grad }). */
export function encodeResult(header: Omit<ResultMessage, 'type' | 'v' | 'grad'>, grad: Float32Array): Uint8Array {
  return encode({ ...header, type: 'result', grad });
}

/** A view of `payload` as `kind` values; copies only if unaligned or asked to. */
function typedView(payload: Uint8Array, kind: 'f32' | 'i32', copy: boolean): Float32Array | Int32Array {
  const src = copy || payload.byteOffset % 4 !== 0 ? new Uint8Array(payload) : payload;
  return kind === 'f32' ? new Float32Array(src.buffer, src.byteOffset, src.length / 4) : new Int32Array(src.buffer, src.byteOffset, src.length / 4);
}

function toBytes(input: unknown): Uint8Array {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new ProtocolError('E_DECODE', `expected a binary frame (Uint8Array or ArrayBuffer), got ${typeof input === 'string' ? 'a text frame' : typeof input}`);
}

/**
 * Decode and validate one frame. Float and index payloads are returned as views over
 * `bytes` when they are 4-byte aligned in memory (the normal case: the encoder aligns
 * them within the frame and ws hands over fresh buffers), and as copies otherwise or
 * when ctx.copyPayload is set. Keep `bytes` untouched while the message is in use.
 * Throws ProtocolError, and nothing else.
 */
export function decode(bytes: Uint8Array | ArrayBuffer, ctx: DecodeContext = {}): Message {
  try {
    const input = toBytes(bytes);
    const limit =
      ctx.maxFrameBytes ?? (ctx.paramCount !== undefined && ctx.maxIndices !== undefined ? maxFrameBytes(ctx.paramCount, ctx.maxIndices) : undefined);
    const { header, payload } = readFrame(input, limit);
    const spec = header.v === PROTOCOL_VERSION ? payloadSpec(header.type) : undefined;
    if (spec) header[spec.field] = typedView(payload, spec.kind, ctx.copyPayload === true);
    const msg = validateMessage(header, ctx);
    if (!spec && payload.length > 0) {
      throw new ProtocolError('E_LENGTH', `${msg.type}: this message carries no payload, got ${payload.length} bytes`, { field: msg.type });
    }
    return msg;
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError('E_INTERNAL', `decode failed unexpectedly: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}

/** A frame buffer with `headerReserve` bytes for the prefix and header, then an aligned payload of paramCount float32. */
function payloadFrame(paramCount: number, headerReserve: number): { frame: Uint8Array; offset: number; payload: Float32Array } {
  if (!Number.isInteger(paramCount) || paramCount < 1) throw new RangeError(`paramCount must be a positive integer, got ${paramCount}`);
  if (!Number.isInteger(headerReserve) || headerReserve < 1 || headerReserve > 65536) {
    throw new RangeError(`headerReserve must be an integer in [1, 65536], got ${headerReserve}`);
  }
  const offset = (FRAME_PREFIX_BYTES + headerReserve + 3) & ~3;
  const frame = new Uint8Array(offset + 4 * paramCount);
  return { frame, offset, payload: new Float32Array(frame.buffer, offset, paramCount) };
}

/**
 * A result frame allocated before the gradient is computed: write the gradient into
 * `grad` (a view into the frame), then finish(header) writes the header in front of it
 * and returns the frame without copying the gradient. The returned bytes share memory
 * with `grad`: do not reuse the ResultFrame until the send has completed.
 */
export class ResultFrame {
  /** The gradient region of the frame: paramCount float32 values. */
  readonly grad: Float32Array;
  private readonly frame: Uint8Array;
  private readonly offset: number;

  constructor(paramCount: number, headerReserve = 256) {
    ({ frame: this.frame, offset: this.offset, payload: this.grad } = payloadFrame(paramCount, headerReserve));
  }

  /** Validate the header and return the complete frame (a copy only if the header outgrew the reserve). */
  finish(header: Omit<ResultMessage, 'type' | 'v' | 'grad'>): Uint8Array {
    const m = validateMessage({ ...header, type: 'result', v: PROTOCOL_VERSION, grad: this.grad }, {}, { checkFinite: false });
    const h = headerOf(m);
    const packed = packHeader(h);
    if (FRAME_PREFIX_BYTES + packed.length > this.offset) return writeFrame(h, this.grad);
    writePrefix(this.frame, packed, this.offset, this.grad.byteLength);
    this.frame.fill(0, FRAME_PREFIX_BYTES + packed.length, this.offset);
    return this.frame;
  }
}

/**
 * A params frame allocated once and rewritten for each parameter version: copy the
 * parameters into `data` (a view into the frame), or call write(version, params), then
 * finish(version) writes the header in front of them and returns the frame: byte for byte
 * what encode({ type: 'params', version, data }) gives, as a view into this object's buffer
 * (the header is placed so that the payload offset is the encoder's minimal one).
 * The returned bytes share memory with `data`: do not rewrite `data` or call finish/write
 * again while a send of earlier bytes may still be reading them.
 */
export class ParamsFrame {
  /** The payload region of the frame: paramCount float32 values. */
  readonly data: Float32Array;
  private readonly frame: Uint8Array;
  private readonly offset: number;

  constructor(paramCount: number, headerReserve = 64) {
    ({ frame: this.frame, offset: this.offset, payload: this.data } = payloadFrame(paramCount, headerReserve));
  }

  /** Validate the header and return the complete frame over `data` (a copy only if the header outgrew the reserve). */
  finish(version: number): Uint8Array {
    assertLittleEndian();
    const m = validateMessage({ type: 'params', v: PROTOCOL_VERSION, version, data: this.data }, {}, { checkFinite: false });
    const h = headerOf(m);
    const packed = packHeader(h);
    const o = (FRAME_PREFIX_BYTES + packed.length + 3) & ~3;
    if (o > this.offset) return writeFrame(h, this.data);
    const frame = this.frame.subarray(this.offset - o);
    writePrefix(frame, packed, o, this.data.byteLength);
    frame.fill(0, FRAME_PREFIX_BYTES + packed.length, o);
    return frame;
  }

  /** Copy `params` into `data`, then finish(version). */
  write(version: number, params: Float32Array): Uint8Array {
    if (!(params instanceof Float32Array) || params.length !== this.data.length) {
      throw new ProtocolError('E_LENGTH', `params.data: expected ${this.data.length} float32 values, got ${params instanceof Float32Array ? params.length : typeof params}`, {
        field: 'params.data',
      });
    }
    this.data.set(params);
    return this.finish(version);
  }
}
