import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { ProtocolError } from './errors.js';
import { exampleMessages } from './examples.js';
import { writeFrame } from './frame.js';
import {
  SHM_FILE_HEADER_BYTES,
  SHM_MAGIC,
  SHM_SLOT_HEADER_BYTES,
  SlotReader,
  SlotWriter,
  StaleSlotError,
  checkFileHeader,
  fileHeader,
  memorySlotIo,
  nextSeq,
  slotFileBytes,
  slotStride,
  type SlotIo,
} from './shm.js';
import { validateMessage } from './validate.js';

const NONCE = '0123456789abcdef0123456789abcdef';
const PC = 8;
const SLOTS = 3;

/** A memory-backed slot file of PC floats and SLOTS slots, with its header. */
function memFile(pc = PC, slots = SLOTS): { bytes: Uint8Array; io: SlotIo } {
  const bytes = new Uint8Array(slotFileBytes(pc, slots));
  bytes.set(fileHeader(NONCE, pc, slots), 0);
  return { bytes, io: memorySlotIo(bytes) };
}

/** Floats whose bit patterns are awkward: ±0, subnormals, ±max, ±Infinity, a NaN with payload bits. */
function awkward(): Float32Array {
  const bits = Uint32Array.from([0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0x7fc00123]);
  return new Float32Array(bits.buffer);
}

const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** The error `fn` throws (fails the test if it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

function shmFails(fn: () => unknown, ...texts: string[]): ProtocolError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(ProtocolError);
  const pe = e as ProtocolError;
  expect(pe.code, pe.message).toBe('E_SHM');
  expect(pe.closeCode).toBe(4006);
  for (const t of texts) expect(pe.message).toContain(t);
  return pe;
}

describe('slot layout', () => {
  it('slotStride is a multiple of 4096 and holds the slot header and the payload', () => {
    for (const pc of [1, 2, 1019, 1020, 1021, 4096, 100_000, 1_234_567]) {
      const s = slotStride(pc);
      expect(s % 4096, `pc ${pc}`).toBe(0);
      expect(s).toBeGreaterThanOrEqual(SHM_SLOT_HEADER_BYTES + 4 * pc);
      expect(s - 4096).toBeLessThan(SHM_SLOT_HEADER_BYTES + 4 * pc); // no page wasted
    }
    expect(slotStride(1020)).toBe(4096); // 16 + 4080 fits exactly
    expect(slotStride(1021)).toBe(8192);
    expect(slotFileBytes(1021, 3)).toBe(SHM_FILE_HEADER_BYTES + 3 * 8192);
  });

  it('nextSeq gives even numbers that increase and wrap to 2 below 2^32', () => {
    expect(nextSeq(0)).toBe(2);
    expect(nextSeq(2)).toBe(4);
    expect(nextSeq(0xfffffffc)).toBe(0xfffffffe);
    expect(nextSeq(0xfffffffe)).toBe(2);
  });
});

describe('SlotWriter / SlotReader over memory', () => {
  it('round-trips awkward floats bit for bit, in every slot', () => {
    const { io } = memFile();
    const w = new SlotWriter(io, PC, SLOTS);
    const r = new SlotReader(io, PC, SLOTS);
    const src = awkward();
    for (let slot = 0; slot < SLOTS; slot++) {
      const data = src.slice();
      new Uint32Array(data.buffer)[slot] ^= 0x80000000; // a different payload per slot (sign bit flipped)
      const seq = w.write(slot, 100 + slot, data);
      const dst = new Float32Array(PC).fill(9);
      r.read(slot, seq, 100 + slot, dst);
      expect(bitsOf(dst)).toEqual(bitsOf(data));
    }
  });

  it('writes each slot where the layout says (page-aligned, 2 pages each here), touching nothing else', () => {
    const pc = 1100; // 16 + 4400 bytes: a stride of 8192
    const { bytes, io } = memFile(pc, 3);
    const before = bytes.slice();
    const data = new Float32Array(pc).map((_, i) => i + 0.5);
    new SlotWriter(io, pc, 3).write(1, 0xdeadbeef, data);
    const at = SHM_FILE_HEADER_BYTES + 8192;
    const changed = [...bytes.keys()].filter((i) => bytes[i] !== before[i]);
    expect(Math.min(...changed)).toBe(at);
    expect(Math.max(...changed)).toBe(at + SHM_SLOT_HEADER_BYTES + 4 * pc - 1);
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint32(at, true)).toBe(2);
    expect(dv.getUint32(at + 4, true)).toBe(0xdeadbeef);
    expect(dv.getUint32(at + 8, true) + dv.getUint32(at + 12, true)).toBe(0);
    expect(bitsOf(new Float32Array(bytes.buffer.slice(at + 16, at + 16 + 4 * pc)))).toEqual(bitsOf(data));
    const dst = new Float32Array(pc);
    new SlotReader(io, pc, 3).read(1, 2, 0xdeadbeef, dst);
    expect(bitsOf(dst)).toEqual(bitsOf(data));
  });

  it('seq numbers are even and increase across slots', () => {
    const { io } = memFile();
    const w = new SlotWriter(io, PC, SLOTS);
    const seqs = [0, 1, 2, 0, 1].map((slot) => w.write(slot, 1, awkward()));
    expect(seqs).toEqual([2, 4, 6, 8, 10]);
  });

  it('seq wraps below 2^32 and the wrapped write still reads back', () => {
    const { io } = memFile();
    const w = new SlotWriter(io, PC, SLOTS);
    const r = new SlotReader(io, PC, SLOTS);
    (w as unknown as { seq: number }).seq = 0xfffffffc; // as after 2^31 writes
    const last = w.write(0, 5, awkward());
    expect(last).toBe(0xfffffffe);
    const wrapped = w.write(1, 6, awkward());
    expect(wrapped).toBe(2);
    const dst = new Float32Array(PC);
    r.read(0, last, 5, dst);
    r.read(1, wrapped, 6, dst);
    expect(bitsOf(dst)).toEqual(bitsOf(awkward()));
  });

  it('a wrong seq or a wrong tag → E_SHM "was rewritten"', () => {
    const { io } = memFile();
    const w = new SlotWriter(io, PC, SLOTS);
    const r = new SlotReader(io, PC, SLOTS);
    const seq = w.write(0, 7, awkward());
    const dst = new Float32Array(PC);
    shmFails(() => r.read(0, seq + 2, 7, dst), 'slot 0 was rewritten', `expected seq ${seq + 2}`);
    shmFails(() => r.read(0, seq, 8, dst), 'slot 0 was rewritten', 'tag 7', 'expected seq 2 tag 8');
    // a newer write to the same slot makes the old reference stale
    w.write(0, 7, awkward());
    shmFails(() => r.read(0, seq, 7, dst), 'was rewritten', 'before the read');
  });

  it('a slot never written → E_SHM "was never written"', () => {
    const { io } = memFile();
    new SlotWriter(io, PC, SLOTS).write(0, 1, awkward());
    shmFails(() => new SlotReader(io, PC, SLOTS).read(2, 2, 1, new Float32Array(PC)), 'slot 2 was never written');
  });

  it('a rewritten or half-written slot is a StaleSlotError (the writer moved on); a never-written one is not', () => {
    const { io } = memFile();
    const w = new SlotWriter(io, PC, SLOTS);
    const r = new SlotReader(io, PC, SLOTS);
    const first = w.write(1, 5, awkward());
    w.write(1, 7, awkward());
    const stale = (() => {
      try {
        r.read(1, first, 5, new Float32Array(PC));
      } catch (e) {
        return e;
      }
    })();
    expect(stale).toBeInstanceOf(StaleSlotError);
    expect(stale).toMatchObject({ code: 'E_SHM', stale: true });
    const never = (() => {
      try {
        r.read(2, 2, 1, new Float32Array(PC));
      } catch (e) {
        return e;
      }
    })();
    expect(never).toBeInstanceOf(ProtocolError);
    expect(never).not.toBeInstanceOf(StaleSlotError);
  });

  it('a rewrite during the payload read (torn read) → E_SHM, not a mix of two payloads', () => {
    const { bytes } = memFile();
    const mem = memorySlotIo(bytes);
    const payloadAt = SHM_FILE_HEADER_BYTES + SHM_SLOT_HEADER_BYTES; // slot 0
    let w: SlotWriter | undefined;
    let rewrites = 0;
    // reads the first half of the payload, then the writer rewrites the slot, then the rest
    const racing: SlotIo = {
      write: (src, pos) => mem.write(src, pos),
      read(dst, pos) {
        if (pos !== payloadAt || !w) return mem.read(dst, pos);
        const half = dst.byteLength / 2;
        const a = mem.read(dst.subarray(0, half), pos);
        rewrites++;
        w.write(0, 1, new Float32Array(PC).fill(2));
        return a + mem.read(dst.subarray(half), pos + half);
      },
    };
    w = new SlotWriter(racing, PC, SLOTS);
    const seq = w.write(0, 1, new Float32Array(PC).fill(1));
    const dst = new Float32Array(PC);
    shmFails(() => new SlotReader(racing, PC, SLOTS).read(0, seq, 1, dst), 'slot 0 was rewritten', 'after the read', `expected seq ${seq}`);
    expect(rewrites).toBe(1);
    expect([...dst].slice(0, 3)).toContain(1); // dst really did receive a mix: the check is what caught it
    expect([...dst].slice(-3)).toContain(2);
  });

  it('a writer that died after its first header write leaves an odd seq → E_SHM "is being rewritten"', () => {
    const { io } = memFile();
    let writes = 0;
    const dying: SlotIo = {
      read: (dst, pos) => io.read(dst, pos),
      write: (src, pos) => (++writes === 1 ? io.write(src, pos) : 0), // header lands, payload does not
    };
    shmFails(() => new SlotWriter(dying, PC, SLOTS).write(1, 3, awkward()), `wrote 0 of ${4 * PC} bytes`);
    shmFails(() => new SlotReader(io, PC, SLOTS).read(1, 2, 3, new Float32Array(PC)), 'slot 1 is being rewritten', 'seq 1');
  });

  it('short reads → E_SHM naming the bytes read', () => {
    const { io } = memFile();
    const seq = new SlotWriter(io, PC, SLOTS).write(0, 1, awkward());
    const short = (which: number): SlotIo => ({
      write: (src, pos) => io.write(src, pos),
      read: (dst, pos) => (dst.byteLength === which ? io.read(dst.subarray(0, which - 3), pos) : io.read(dst, pos)),
    });
    const dst = new Float32Array(PC);
    shmFails(() => new SlotReader(short(4 * PC), PC, SLOTS).read(0, seq, 1, dst), `read ${4 * PC - 3} of ${4 * PC} payload bytes`);
    shmFails(() => new SlotReader(short(SHM_SLOT_HEADER_BYTES), PC, SLOTS).read(0, seq, 1, dst), 'read 13 of 16 header bytes');
  });

  it('short writes → E_SHM naming bytes and offset; a truncated file too', () => {
    const { io } = memFile();
    const short: SlotIo = { read: (d, p) => io.read(d, p), write: (src, pos) => io.write(src.subarray(0, src.byteLength - 1), pos) };
    shmFails(() => new SlotWriter(short, PC, SLOTS).write(0, 1, awkward()), 'wrote 15 of 16 bytes', `offset ${SHM_FILE_HEADER_BYTES}`);
    // a file cut short in the middle of slot 2's payload
    const cut = new Uint8Array(SHM_FILE_HEADER_BYTES + 2 * slotStride(PC) + SHM_SLOT_HEADER_BYTES + 8);
    shmFails(() => new SlotWriter(memorySlotIo(cut), PC, SLOTS).write(2, 1, awkward()), `wrote 8 of ${4 * PC} bytes`);
  });

  it('slot out of range: E_SHM on read, RangeError on write', () => {
    const { io } = memFile();
    const dst = new Float32Array(PC);
    const r = new SlotReader(io, PC, SLOTS);
    shmFails(() => r.read(SLOTS, 2, 1, dst), `slot ${SLOTS} does not exist`, `has ${SLOTS}`);
    shmFails(() => r.read(-1, 2, 1, dst), 'slot -1 does not exist');
    shmFails(() => r.read(0.5, 2, 1, dst), 'does not exist');
    const w = new SlotWriter(io, PC, SLOTS);
    for (const slot of [SLOTS, -1, 1.5]) {
      const e = thrown(() => w.write(slot, 1, awkward()));
      expect(e).toBeInstanceOf(RangeError);
      expect((e as Error).message).toContain(`[0, ${SLOTS})`);
    }
  });

  it('wrong payload lengths and sizes are RangeErrors', () => {
    const { io } = memFile();
    expect(() => new SlotWriter(io, PC, SLOTS).write(0, 1, new Float32Array(PC + 1))).toThrow(RangeError);
    expect(() => new SlotReader(io, PC, SLOTS).read(0, 2, 1, new Float32Array(PC - 1))).toThrow(RangeError);
    expect(() => new SlotWriter(io, 0, SLOTS)).toThrow(/paramCount/);
    expect(() => new SlotReader(io, PC, 65)).toThrow(/slots/);
  });
});

describe('file header', () => {
  it('fileHeader is 4096 bytes with magic, nonce, paramCount and slots', () => {
    const h = fileHeader(NONCE, 123456, 5);
    expect(h.byteLength).toBe(SHM_FILE_HEADER_BYTES);
    expect(String.fromCharCode(...h.subarray(0, 8))).toBe(SHM_MAGIC);
    const dv = new DataView(h.buffer);
    expect([dv.getUint32(40, true), dv.getUint32(44, true)]).toEqual([123456, 5]);
    expect(() => fileHeader(NONCE.toUpperCase(), 1, 1)).toThrow(/nonce/);
  });

  it('checkFileHeader accepts the header fileHeader made (and fewer slots than the file has)', () => {
    const { io } = memFile();
    expect(() => checkFileHeader(io, NONCE, PC, SLOTS)).not.toThrow();
    expect(() => checkFileHeader(io, NONCE, PC, 1)).not.toThrow();
  });

  it('checkFileHeader rejects each difference with E_SHM naming it', () => {
    const { bytes, io } = memFile();
    shmFails(() => checkFileHeader(io, 'f'.repeat(32), PC, SLOTS), 'nonce differs');
    shmFails(() => checkFileHeader(io, NONCE, PC + 1, SLOTS), `made for ${PC} parameters, the run has ${PC + 1}`);
    shmFails(() => checkFileHeader(io, NONCE, PC, SLOTS + 1), `${SLOTS} slots, expected at least ${SLOTS + 1}`);
    bytes[7] = 0x32; // DPTSHM02
    shmFails(() => checkFileHeader(io, NONCE, PC, SLOTS), `expected magic ${SHM_MAGIC}`, '"DPTSHM02"');
    shmFails(() => checkFileHeader(memorySlotIo(fileHeader(NONCE, PC, SLOTS).slice(0, 20)), NONCE, PC, SLOTS), 'expected 48 bytes, read 20');
    shmFails(() => checkFileHeader(memorySlotIo(new Uint8Array(0)), NONCE, PC, SLOTS), 'read 0');
  });
});

describe('params_ref / result_ref / shm fields on the wire', () => {
  const ex = exampleMessages();

  function fieldFails(raw: unknown, field: string): void {
    const e = thrown(() => validateMessage(raw));
    expect(e).toBeInstanceOf(ProtocolError);
    const pe = e as ProtocolError;
    expect(pe.code, pe.message).toBe('E_FIELD');
    expect(pe.field).toBe(field);
    expect(pe.message).toContain(field);
  }

  it('params_ref and result_ref round-trip through encode/decode, with no payload field', () => {
    for (const m of [ex.params_ref, ex.result_ref]) {
      const back = decode(encode(m));
      expect(back).toEqual(m);
      expect(validateMessage(m)).toEqual(m);
      expect('data' in back || 'grad' in back).toBe(false);
    }
    const big = { ...ex.params_ref, version: 2 ** 32 - 1, slot: 63, seq: 0xfffffffe };
    expect(decode(encode(big))).toEqual(big);
  });

  it('params_ref / result_ref frames with payload bytes are rejected', () => {
    for (const m of [ex.params_ref, ex.result_ref]) {
      const e = thrown(() => decode(writeFrame(m as unknown as Record<string, unknown>, new Float32Array(4))));
      expect((e as ProtocolError).code).toBe('E_LENGTH');
      expect((e as Error).message).toContain('carries no payload');
    }
  });

  for (const type of ['params_ref', 'result_ref'] as const) {
    it(`${type}: odd seq, seq 0, slot 64, negative slot → E_FIELD naming the field`, () => {
      const m = ex[type];
      fieldFails({ ...m, seq: 7 }, `${type}.seq`);
      fieldFails({ ...m, seq: 0 }, `${type}.seq`);
      fieldFails({ ...m, seq: 2 ** 32 }, `${type}.seq`);
      fieldFails({ ...m, seq: undefined }, `${type}.seq`);
      fieldFails({ ...m, slot: 64 }, `${type}.slot`);
      fieldFails({ ...m, slot: -1 }, `${type}.slot`);
      fieldFails({ ...m, slot: '1' }, `${type}.slot`);
      // decode says the same as validateMessage
      const e = thrown(() => decode(writeFrame({ ...(m as unknown as Record<string, unknown>), seq: 3 })));
      expect((e as ProtocolError).field).toBe(`${type}.seq`);
    });
  }

  it('task.paramsRef: round-trips with the task; slot and seq checked like a params_ref', () => {
    const t = { ...ex.task, paramsRef: { slot: 1, seq: 18 } };
    const back = decode(encode(t));
    expect(back).toMatchObject({ type: 'task', paramsRef: { slot: 1, seq: 18 } });
    expect(Array.from((back as typeof t).indices)).toEqual(Array.from(ex.task.indices));
    expect(decode(encode(ex.task))).not.toHaveProperty('paramsRef');
    fieldFails({ ...ex.task, paramsRef: { slot: 1, seq: 3 } }, 'task.paramsRef.seq');
    fieldFails({ ...ex.task, paramsRef: { slot: 64, seq: 2 } }, 'task.paramsRef.slot');
    fieldFails({ ...ex.task, paramsRef: 5 }, 'task.paramsRef');
  });

  it('result_ref shares the result checks (nodeSize a power of two, correct ≤ samples)', () => {
    fieldFails({ ...ex.result_ref, nodeSize: 3 }, 'result_ref.nodeSize');
    fieldFails({ ...ex.result_ref, correct: ex.result_ref.samples + 1 }, 'result_ref.correct');
  });

  it('welcome.shm round-trips; a bad dir, nonce or resultSlots → E_FIELD naming welcome.shm.<field>', () => {
    const shm = { dir: '/dev/shm/dptrain-1-abc', nonce: NONCE, resultSlots: 4 };
    const ok = { ...ex.welcome, shm };
    expect(decode(encode(ok))).toEqual(ok);
    expect('shm' in decode(encode(ex.welcome))).toBe(false);
    const bad: [string, unknown][] = [
      ['dir', 'dev/shm/x'],
      ['dir', '/dev/shm/../etc'],
      ['dir', '/dev/shm/x/..'],
      ['dir', ''],
      ['dir', 5],
      ['nonce', NONCE.toUpperCase()],
      ['nonce', NONCE.slice(1)],
      ['nonce', NONCE.slice(0, 31) + 'g'],
      ['resultSlots', 0],
      ['resultSlots', 65],
      ['resultSlots', 2.5],
    ];
    for (const [k, v] of bad) fieldFails({ ...ex.welcome, shm: { ...shm, [k]: v } }, `welcome.shm.${k}`);
    fieldFails({ ...ex.welcome, shm: 'yes' }, 'welcome.shm');
  });

  it('ready.shm must be a boolean when present', () => {
    expect(decode(encode({ ...ex.ready, shm: true }))).toEqual({ ...ex.ready, shm: true });
    expect(decode(encode({ ...ex.ready, shm: false }))).toEqual({ ...ex.ready, shm: false });
    for (const v of [1, 'true', {}]) fieldFails({ ...ex.ready, shm: v }, 'ready.shm');
  });
});
