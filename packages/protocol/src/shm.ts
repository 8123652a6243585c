import { ProtocolError } from './errors.js';

/**
 * Slot files of the shared-memory data plane (PROTOCOL.md §3.10). A worker on the
 * coordinator's host reads each parameter version from, and writes each gradient into, a
 * slot of a file in a memory-backed directory (/dev/shm); only small `params_ref` /
 * `result_ref` messages naming the slot go through the socket. This module is the layout
 * and the slot discipline over a file-like `SlotIo` (the Node packages bind it to a file
 * descriptor; tests bind it to memory), so it runs anywhere.
 *
 * File: a 4096-byte header (magic, nonce, paramCount, slots), then `slots` slots of
 * `slotStride(paramCount)` bytes. Slot: a 16-byte header (u32 seq, u32 tag, 8 bytes zero),
 * then paramCount float32, all little-endian.
 *
 * Every slot is a seqlock: the writer stores an odd seq, then the payload, then the next
 * even seq with the tag; the reader checks the header (seq and tag as the message says),
 * reads the payload, and checks the header again. A slot rewritten while, or before, it
 * was read fails the check (E_SHM) instead of handing over a mix of two payloads.
 */

/** Positioned reads and writes of whole byte ranges (like pread/pwrite); return the bytes moved. */
export interface SlotIo {
  read(dst: Uint8Array, position: number): number;
  write(src: Uint8Array, position: number): number;
}

export const SHM_MAGIC = 'DPTSHM01';
export const SHM_FILE_HEADER_BYTES = 4096;
export const SHM_SLOT_HEADER_BYTES = 16;
const U32_MAX = 0xffffffff;

/** Bytes between slot starts: header plus payload, rounded up to 4096 (page-aligned slots). */
export function slotStride(paramCount: number): number {
  return Math.ceil((SHM_SLOT_HEADER_BYTES + 4 * paramCount) / 4096) * 4096;
}

/** Size of a slot file with `slots` slots. */
export function slotFileBytes(paramCount: number, slots: number): number {
  return SHM_FILE_HEADER_BYTES + slots * slotStride(paramCount);
}

/** The sequence number after `seq` (even, ≥ 2, wrapping below 2^32). */
export function nextSeq(seq: number): number {
  return seq + 2 > U32_MAX - 1 ? 2 : seq + 2;
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function shmError(message: string): ProtocolError {
  return new ProtocolError('E_SHM', message);
}

/**
 * E_SHM for a slot that a later write has taken over (its seq moved on, or a write is in
 * progress): the payload the message named is gone, and the writer has moved past it. For
 * the params file this proves the reader lags at least two versions behind, so the task
 * that goes with those params is stale too.
 */
export class StaleSlotError extends ProtocolError {
  readonly stale = true;
  constructor(message: string) {
    super('E_SHM', message);
  }
}

function checkSizes(paramCount: number, slots: number): void {
  if (!Number.isInteger(paramCount) || paramCount < 1) throw new RangeError(`paramCount must be a positive integer, got ${paramCount}`);
  if (!Number.isInteger(slots) || slots < 1 || slots > 64) throw new RangeError(`slots must be an integer in [1, 64], got ${slots}`);
}

/** The file header for `nonce` (32 hex digits). */
export function fileHeader(nonce: string, paramCount: number, slots: number): Uint8Array {
  checkSizes(paramCount, slots);
  if (!/^[0-9a-f]{32}$/.test(nonce)) throw new RangeError('nonce must be 32 lower-case hex digits');
  const h = new Uint8Array(SHM_FILE_HEADER_BYTES);
  for (let i = 0; i < 8; i++) h[i] = SHM_MAGIC.charCodeAt(i);
  for (let i = 0; i < 32; i++) h[8 + i] = nonce.charCodeAt(i);
  const dv = new DataView(h.buffer);
  dv.setUint32(40, paramCount, true);
  dv.setUint32(44, slots, true);
  return h;
}

/**
 * Check that `io` holds a slot file made for this run: magic, nonce, paramCount and at
 * least `slots` slots. Throws E_SHM naming the first difference. This is how a worker
 * proves it shares the coordinator's file system (and will not write into a file it did
 * not expect).
 */
export function checkFileHeader(io: SlotIo, nonce: string, paramCount: number, slots: number): void {
  const h = new Uint8Array(48);
  const n = io.read(h, 0);
  if (n !== h.length) throw shmError(`slot file header: expected ${h.length} bytes, read ${n}`);
  const magic = String.fromCharCode(...h.subarray(0, 8));
  if (magic !== SHM_MAGIC) throw shmError(`slot file header: expected magic ${SHM_MAGIC}, found ${JSON.stringify(magic)}`);
  if (String.fromCharCode(...h.subarray(8, 40)) !== nonce) throw shmError('slot file header: the nonce differs from the one offered (another run, or another host)');
  const dv = new DataView(h.buffer);
  const pc = dv.getUint32(40, true);
  const sl = dv.getUint32(44, true);
  if (pc !== paramCount) throw shmError(`slot file header: made for ${pc} parameters, the run has ${paramCount}`);
  if (sl < slots) throw shmError(`slot file header: ${sl} slots, expected at least ${slots}`);
}

/** One slot file seen through a SlotIo: its sizes, and a reusable slot-header buffer. */
abstract class SlotFile {
  protected readonly hdr = new Uint8Array(SHM_SLOT_HEADER_BYTES);
  protected readonly dv = new DataView(this.hdr.buffer);

  constructor(
    protected readonly io: SlotIo,
    readonly paramCount: number,
    readonly slots: number,
    /** Names the file in error messages, e.g. "params file" or "result file of w1". */
    readonly label = 'slot file',
  ) {
    checkSizes(paramCount, slots);
  }

  /** File offset of slot `slot`'s header. */
  protected offsetOf(slot: number): number {
    return SHM_FILE_HEADER_BYTES + slot * slotStride(this.paramCount);
  }
}

/** Writes payloads into the slots of one file; the only writer of that file. */
export class SlotWriter extends SlotFile {
  private seq = 0;

  /** Write `data` (paramCount floats) into `slot` with `tag` (u32); returns the seq a reader must find. Throws E_SHM on a short write. */
  write(slot: number, tag: number, data: Float32Array): number {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new RangeError(`slot must be an integer in [0, ${this.slots}), got ${slot}`);
    if (data.length !== this.paramCount) throw new RangeError(`expected ${this.paramCount} floats, got ${data.length}`);
    const seq = nextSeq(this.seq);
    this.seq = seq;
    const at = this.offsetOf(slot);
    this.dv.setUint32(0, seq - 1, true); // odd: a write in progress
    this.dv.setUint32(4, tag >>> 0, true);
    this.put(this.hdr, at);
    this.put(bytesOf(data), at + SHM_SLOT_HEADER_BYTES);
    this.dv.setUint32(0, seq, true);
    this.put(this.hdr, at);
    return seq;
  }

  private put(b: Uint8Array, at: number): void {
    const n = this.io.write(b, at);
    if (n !== b.byteLength) throw shmError(`slot file: wrote ${n} of ${b.byteLength} bytes at offset ${at}`);
  }
}

/** Reads payloads out of the slots of one file, checking each slot's seqlock. */
export class SlotReader extends SlotFile {
  /**
   * Read slot `slot` into `dst` (paramCount floats) and check that it holds the write the
   * message named (`seq`, `tag`) from start to end. Throws E_SHM otherwise: `dst` then
   * holds nothing usable.
   */
  read(slot: number, seq: number, tag: number, dst: Float32Array): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw shmError(`${this.label}: slot ${slot} does not exist (the file has ${this.slots})`);
    if (dst.length !== this.paramCount) throw new RangeError(`expected room for ${this.paramCount} floats, got ${dst.length}`);
    const at = this.offsetOf(slot);
    this.check(at, slot, seq, tag, 'before');
    const b = bytesOf(dst);
    const n = this.io.read(b, at + SHM_SLOT_HEADER_BYTES);
    if (n !== b.byteLength) throw shmError(`${this.label}: slot ${slot}: read ${n} of ${b.byteLength} payload bytes`);
    this.check(at, slot, seq, tag, 'after');
  }

  private check(at: number, slot: number, seq: number, tag: number, when: string): void {
    const n = this.io.read(this.hdr, at);
    if (n !== this.hdr.byteLength) throw shmError(`${this.label}: slot ${slot}: read ${n} of ${this.hdr.byteLength} header bytes`);
    const s = this.dv.getUint32(0, true);
    const t = this.dv.getUint32(4, true);
    if (s !== seq || t !== tag >>> 0) {
      const what = s % 2 === 1 ? 'is being rewritten' : s === 0 ? 'was never written' : 'was rewritten';
      const message = `${this.label}: slot ${slot} ${what} (${when} the read: seq ${s} tag ${t}, expected seq ${seq} tag ${tag >>> 0})`;
      throw s === 0 ? shmError(message) : new StaleSlotError(message);
    }
  }
}

/** A positioned transfer of up to `length` bytes of `b` from offset `offset`, at file position `position` (like pread/pwrite); returns the bytes moved. */
export type PositionedTransfer = (b: Uint8Array, offset: number, length: number, position: number) => number;

/**
 * A SlotIo from positioned read and write calls (e.g. Node's fs.readSync / fs.writeSync on
 * one file descriptor): short transfers are continued until the range is done or a call
 * moves 0 bytes (end of file), and the total is returned.
 */
export function positionedSlotIo(read: PositionedTransfer, write: PositionedTransfer): SlotIo {
  const whole = (op: PositionedTransfer) => (b: Uint8Array, position: number) => {
    let done = 0;
    for (let n = 1; done < b.byteLength && n > 0; done += n) n = op(b, done, b.byteLength - done, position + done);
    return done;
  };
  return { read: whole(read), write: whole(write) };
}

/** A SlotIo over memory (tests, and a reference for the file-backed ones). */
export function memorySlotIo(bytes: Uint8Array): SlotIo {
  return {
    read(dst, position) {
      const n = Math.max(0, Math.min(dst.byteLength, bytes.byteLength - position));
      dst.set(bytes.subarray(position, position + n));
      return n;
    },
    write(src, position) {
      const n = Math.max(0, Math.min(src.byteLength, bytes.byteLength - position));
      bytes.set(src.subarray(0, n), position);
      return n;
    },
  };
}
