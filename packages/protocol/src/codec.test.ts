import { describe, expect, it } from 'vitest';
import { decode, encode, encodeResult, ParamsFrame, ResultFrame } from './codec.js';
import { EXAMPLE_PARAM_COUNT, exampleMessages } from './examples.js';
import { FRAME_PREFIX_BYTES, readFrame, writeFrame } from './frame.js';
import { ProtocolError } from './errors.js';
import { MESSAGE_TYPES, PROTOCOL_VERSION, type Message } from './messages.js';

const ctx = { paramCount: EXAMPLE_PARAM_COUNT };
const bits = (a: Float32Array | Int32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function expectSame(got: Message, want: Message) {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, v] of Object.entries(want)) {
    const g = (got as unknown as Record<string, unknown>)[k];
    if (v instanceof Float32Array || v instanceof Int32Array) {
      expect(g).toBeInstanceOf(v.constructor);
      expect(bits(g as Float32Array)).toEqual(bits(v));
    } else expect(g).toEqual(v);
  }
}

function catchErr(f: () => unknown): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('encode/decode round trip', () => {
  const all = exampleMessages();
  it.each(MESSAGE_TYPES.map((t) => [t]))('%s survives encode → decode unchanged', (type) => {
    const m = all[type];
    const frame = encode(m);
    expect(frame.length % 4).toBe(0);
    expect(new DataView(frame.buffer).getUint32(4, true) % 4).toBe(0);
    expectSame(decode(frame, ctx), m);
  });

  it('keeps -0, subnormals and extreme floats bit-exact', () => {
    const data = Float32Array.from([-0, 0, 1e-45, -1e-45, 3.4028234663852886e38, -1.1754943508222875e-38, Math.PI]);
    const out = decode(encode({ type: 'params', version: 1, data }));
    expect(out.type).toBe('params');
    const got = (out as { data: Float32Array }).data;
    expect(bits(got)).toEqual(bits(data));
    expect(Object.is(got[0], -0)).toBe(true);
  });

  it('fills in v and refuses another version on encode', () => {
    const frame = encode({ type: 'bye', reason: 'done' });
    expect(readFrame(frame).header.v).toBe(PROTOCOL_VERSION);
    expect(catchErr(() => encode({ type: 'bye', reason: 'x', v: 2 as 1 })).code).toBe('E_VERSION');
  });

  it('validates on encode: a bad field never reaches the wire', () => {
    const e = catchErr(() => encode({ ...exampleMessages().task, leafLo: 4 }));
    expect(e.code).toBe('E_FIELD');
    expect(e.message).toContain('task.leafLo');
  });

  it('drops unknown fields and optional nils', () => {
    const frame = writeFrame({ type: 'heartbeat', v: 1, t: 5, step: null, extra: 'ignored' });
    const m = decode(frame);
    expect(m).toEqual({ type: 'heartbeat', v: 1, t: 5 });
  });
});

describe('payload views', () => {
  it.each([['params', 'data'], ['result', 'grad'], ['task', 'indices']] as const)('%s.%s is a view over the input when aligned', (type, field) => {
    const frame = encode(exampleMessages()[type]);
    const m = decode(frame, ctx) as unknown as Record<string, Float32Array>;
    expect(m[field].buffer).toBe(frame.buffer);
    const o = new DataView(frame.buffer).getUint32(4, true);
    expect(m[field].byteOffset).toBe(o);
  });

  it('copies when the frame sits at an unaligned offset, with identical bits', () => {
    const frame = encode(exampleMessages().params);
    const host = new Uint8Array(frame.length + 1);
    host.set(frame, 1);
    const input = host.subarray(1);
    const m = decode(input, ctx) as { data: Float32Array };
    expect(m.data.buffer).not.toBe(host.buffer);
    expect(bits(m.data)).toEqual(bits(exampleMessages().params.data));
  });

  it('copies when asked to (copyPayload)', () => {
    const frame = encode(exampleMessages().result);
    const m = decode(frame, { ...ctx, copyPayload: true }) as { grad: Float32Array };
    expect(m.grad.buffer).not.toBe(frame.buffer);
    frame.fill(0);
    expect(bits(m.grad)).toEqual(bits(exampleMessages().result.grad));
  });

  it('accepts an ArrayBuffer', () => {
    const frame = encode(exampleMessages().params);
    const m = decode(frame.buffer as ArrayBuffer, ctx) as { data: Float32Array };
    expect(m.data.buffer).toBe(frame.buffer);
  });
});

describe('non-finite payloads', () => {
  it('NaN payload bits travel bit-exact but decode rejects them with the first bad index', () => {
    const data = new Float32Array(EXAMPLE_PARAM_COUNT).fill(0.5);
    const raw = new Uint32Array(data.buffer);
    raw[7] = 0x7fc0beef; // a quiet NaN with payload bits
    raw[9] = 0xff800000; // -Infinity
    const frame = encode({ type: 'params', version: 2, data });
    const { payload } = readFrame(frame);
    expect(new Uint32Array(payload.slice().buffer)[7]).toBe(0x7fc0beef);
    const e = catchErr(() => decode(frame, ctx));
    expect(e.code).toBe('E_NONFINITE');
    expect(e.message).toContain('params.data[7]');
  });

  it('with receiverScansParams, leaves only the params scan to the receiver (the values arrive as sent); gradients are still scanned', () => {
    const data = new Float32Array(EXAMPLE_PARAM_COUNT).fill(0.5);
    data[3] = Number.NaN;
    const m = decode(encode({ type: 'params', version: 2, data }), { ...ctx, receiverScansParams: true }) as { data: Float32Array };
    expect(Number.isNaN(m.data[3])).toBe(true);
    expect(m.data[4]).toBe(0.5);
    const grad = new Float32Array(EXAMPLE_PARAM_COUNT);
    grad[0] = Number.NaN;
    const frame = encodeResult({ step: 1, nodeLo: 0, nodeSize: 1, samples: 1, lossSum: 0, correct: 0, computeMs: 0 }, grad);
    expect(catchErr(() => decode(frame, { ...ctx, receiverScansParams: true })).code).toBe('E_NONFINITE');
    // the length is still checked
    expect(catchErr(() => decode(encode({ type: 'params', version: 2, data: new Float32Array(2) }), { ...ctx, receiverScansParams: true })).code).toBe('E_LENGTH');
  });

  it('rejects Infinity in a gradient', () => {
    const grad = new Float32Array(EXAMPLE_PARAM_COUNT);
    grad[EXAMPLE_PARAM_COUNT - 1] = Infinity;
    const e = catchErr(() => decode(encodeResult({ step: 1, nodeLo: 0, nodeSize: 1, samples: 1, lossSum: 0, correct: 0, computeMs: 0 }, grad), ctx));
    expect(e.code).toBe('E_NONFINITE');
    expect(e.field).toBe(`result.grad[${EXAMPLE_PARAM_COUNT - 1}]`);
  });
});

describe('ResultFrame', () => {
  const header = { step: 3, nodeLo: 8, nodeSize: 8, samples: 64, lossSum: 101.25, correct: 50, computeMs: 4 };

  it('produces the same message as encodeResult without copying the gradient', () => {
    const rf = new ResultFrame(EXAMPLE_PARAM_COUNT);
    rf.grad.set(exampleMessages().result.grad);
    const frame = rf.finish(header);
    expect(frame.buffer).toBe(rf.grad.buffer);
    const m = decode(frame, ctx);
    expectSame(m, { type: 'result', v: 1, ...header, grad: exampleMessages().result.grad });
    expect(decode(encodeResult(header, rf.grad), ctx)).toEqual(m);
  });

  it('can be reused, and zeroes stale header bytes', () => {
    const rf = new ResultFrame(EXAMPLE_PARAM_COUNT);
    rf.finish({ ...header, lossSum: 1.5, computeMs: 2.25 }); // float64 fields: a longer header
    const frame = rf.finish({ ...header, lossSum: 1, computeMs: 2 }); // ints: a shorter one
    const m = decode(frame, ctx) as { lossSum: number };
    expect(m.lossSum).toBe(1);
  });

  it('falls back to a copy when the header outgrows the reserve', () => {
    const rf = new ResultFrame(EXAMPLE_PARAM_COUNT, 8);
    rf.grad.fill(0.25);
    const frame = rf.finish(header);
    expect(frame.buffer).not.toBe(rf.grad.buffer);
    expect(Array.from((decode(frame, ctx) as { grad: Float32Array }).grad)).toEqual(new Array(EXAMPLE_PARAM_COUNT).fill(0.25));
  });

  it('validates the header', () => {
    const rf = new ResultFrame(4);
    expect(catchErr(() => rf.finish({ ...header, nodeSize: 3 })).code).toBe('E_FIELD');
  });
});

describe('ParamsFrame', () => {
  const data = exampleMessages().params.data;
  const same = (a: Uint8Array, b: Uint8Array) => expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);

  it.each([0, 9, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1])('gives exactly the bytes of encode() for version %d, aligned, without copying', (version) => {
    const pf = new ParamsFrame(EXAMPLE_PARAM_COUNT);
    const frame = pf.write(version, data);
    same(frame, encode({ type: 'params', version, data }));
    expect(frame.buffer).toBe(pf.data.buffer);
    expect(frame.byteOffset % 4).toBe(0);
    const m = decode(frame, ctx) as { version: number; data: Float32Array };
    expect(m.version).toBe(version);
    expect(bits(m.data)).toEqual(bits(data));
  });

  it('can be rewritten for another version and other values (header length changes both ways)', () => {
    const pf = new ParamsFrame(EXAMPLE_PARAM_COUNT);
    pf.write(70000, data); // 5-byte version: a longer header
    const other = data.map((x) => -2 * x);
    pf.data.set(other);
    const short = pf.finish(3); // 1-byte version
    same(short, encode({ type: 'params', version: 3, data: other }));
    same(pf.write(300, data), encode({ type: 'params', version: 300, data }));
  });

  it('falls back to a copy when the header outgrows the reserve, and validates', () => {
    const pf = new ParamsFrame(EXAMPLE_PARAM_COUNT, 4);
    const frame = pf.write(1, data);
    expect(frame.buffer).not.toBe(pf.data.buffer);
    same(frame, encode({ type: 'params', version: 1, data }));
    expect(catchErr(() => pf.finish(-1)).code).toBe('E_FIELD');
    expect(catchErr(() => pf.write(1, new Float32Array(EXAMPLE_PARAM_COUNT + 1))).code).toBe('E_LENGTH');
    expect(() => new ParamsFrame(0)).toThrow(RangeError);
  });
});

describe('frame layout', () => {
  const hex = (f: Uint8Array) => Array.from(f, (b) => b.toString(16).padStart(2, '0')).join('');

  it('matches the documented bytes of a heartbeat (no padding needed)', () => {
    // headerLen 36, payloadOffset 48, payloadLength 0, then the msgpack map
    expect(hex(encode({ type: 'heartbeat', t: 1700000000000, step: 7 }))).toBe(
      '24000000' + '30000000' + '00000000' +
        '84' + 'a474797065' + 'a9686561727462656174' + 'a176' + '01' + 'a174' + 'cb4278bcfe56800000' + 'a473746570' + '07',
    );
  });

  it('matches the documented bytes of a params frame (3 bytes of padding, then the floats)', () => {
    const frame = encode({ type: 'params', version: 9, data: Float32Array.from([1, -0]) });
    expect(hex(frame)).toBe(
      '19000000' + '28000000' + '08000000' +
        '83' + 'a474797065' + 'a6706172616d73' + 'a176' + '01' + 'a776657273696f6e' + '09' +
        '000000' +
        '0000803f' + '00000080',
    );
    expect(FRAME_PREFIX_BYTES).toBe(12);
  });
});
