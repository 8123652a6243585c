import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError, SlotReader, SlotWriter, fileHeader, slotFileBytes, type ShmOffer, type SlotIo } from '@dptrain/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShmClient } from './shm-client.js';

const PC = 1100; // two pages per slot
const PARAMS_SLOTS = 2;
const NONCE = '00112233445566778899aabbccddeeff';
const OTHER = 'ffeeddccbbaa99887766554433221100';

let dir: string;
let offer: ShmOffer;
const fds: number[] = [];
const clients: ShmClient[] = [];

/** A slot file as the coordinator makes it: the header, then room for `slots` slots. */
function makeFile(name: string, slots: number, nonce = NONCE, paramCount = PC): string {
  const path = join(dir, name);
  const fd = openSync(path, 'wx+', 0o600);
  try {
    const h = fileHeader(nonce, paramCount, slots);
    writeSync(fd, h, 0, h.byteLength, 0);
    ftruncateSync(fd, slotFileBytes(paramCount, slots));
  } finally {
    closeSync(fd);
  }
  return path;
}

function fdIo(path: string): SlotIo {
  const fd = openSync(path, 'r+');
  fds.push(fd);
  return {
    read: (b, pos) => readSync(fd, b, 0, b.byteLength, pos),
    write: (b, pos) => writeSync(fd, b, 0, b.byteLength, pos),
  };
}

function open(workerId = 'wk-1', o: ShmOffer = offer, paramCount = PC): ShmClient {
  const c = ShmClient.open(o, workerId, paramCount);
  clients.push(c);
  return c;
}

/** Floats with awkward bit patterns: ±0, subnormals, ±max, and ordinary values that depend on `k`. */
function floats(k: number): Float32Array {
  const a = new Float32Array(PC).map((_, i) => Math.fround(Math.cos(i * k + 1)));
  new Uint32Array(a.buffer).set([0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff]);
  return a;
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const openFds = () => readdirSync('/proc/self/fd').length;

/** open() throws and leaves no file descriptor open; returns the error. */
function openFails(workerId: string, o: ShmOffer = offer, paramCount = PC): Error {
  const before = openFds();
  let err: unknown;
  try {
    clients.push(ShmClient.open(o, workerId, paramCount));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(Error);
  expect(openFds()).toBe(before);
  return err as Error;
}

function expectShm(e: Error, text: string): void {
  expect(e).toBeInstanceOf(ProtocolError);
  expect((e as ProtocolError).code).toBe('E_SHM');
  expect(e.message).toContain(text);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shm-client-test-'));
  offer = { dir, nonce: NONCE, resultSlots: 3 };
  makeFile('params', PARAMS_SLOTS);
  makeFile('wk-1.res', offer.resultSlots);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

describe('ShmClient', () => {
  it('opens the files of the offer and reads the params a SlotWriter wrote, bit for bit', () => {
    const c = open();
    expect(c.resultSlots).toBe(3);
    const w = new SlotWriter(fdIo(join(dir, 'params')), PC, PARAMS_SLOTS);
    const dst = new Float32Array(PC);
    for (const version of [6, 7, 8]) {
      const p = floats(version);
      const slot = version % PARAMS_SLOTS;
      const seq = w.write(slot, version, p);
      c.readParams({ version, slot, seq }, dst);
      expect(bitsOf(dst)).toEqual(bitsOf(p));
    }
  });

  it('readParams of a slot rewritten since (a stale seq) or of another version → E_SHM', () => {
    const c = open();
    const w = new SlotWriter(fdIo(join(dir, 'params')), PC, PARAMS_SLOTS);
    const dst = new Float32Array(PC);
    const seq1 = w.write(1, 1, floats(1));
    w.write(1, 3, floats(3));
    let e: unknown;
    try {
      c.readParams({ version: 1, slot: 1, seq: seq1 }, dst);
    } catch (x) {
      e = x;
    }
    expectShm(e as Error, 'slot 1 was rewritten');
    expect(() => c.readParams({ version: 1, slot: 0, seq: 2 }, dst)).toThrow(/slot 0 was never written/);
    expect(() => c.readParams({ version: 1, slot: 2, seq: 2 }, dst)).toThrow(/slot 2 does not exist/);
  });

  it('writeResult cycles through the ring of slots as the coordinator acknowledges them; a SlotReader reads each result back', () => {
    const c = open();
    const r = new SlotReader(fdIo(join(dir, 'wk-1.res')), PC, offer.resultSlots);
    const dst = new Float32Array(PC);
    const slots: number[] = [];
    let lastSeq = 0;
    for (let step = 10; step < 10 + 2 * offer.resultSlots + 1; step++) {
      const g = floats(step);
      const got = c.writeResult(step, g);
      if (!got) throw new Error(`no free slot at step ${step}`);
      const { slot, seq } = got;
      slots.push(slot);
      expect(seq % 2).toBe(0);
      expect(seq).toBeGreaterThan(lastSeq);
      lastSeq = seq;
      r.read(slot, seq, step, dst);
      expect(bitsOf(dst)).toEqual(bitsOf(g));
      c.ack(seq); // the coordinator read it
    }
    expect(slots).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it('never rewrites a slot the coordinator has not dealt with: writeResult gives undefined until an ack frees one', () => {
    const c = open();
    const seqs = [1, 2, 3].map((k) => c.writeResult(k, floats(k))!.seq);
    expect(c.writeResult(4, floats(4))).toBeUndefined();
    // acknowledging the first frees exactly its slot; a stale (lower) ack changes nothing
    c.ack(seqs[0]);
    c.ack(seqs[0] - 2);
    expect(c.writeResult(4, floats(4))).toMatchObject({ slot: 0 });
    expect(c.writeResult(5, floats(5))).toBeUndefined();
    // an ack covers every seq up to it: slots 1 and 2 are free, slot 0 (step 4, not acked) is not
    const step4 = c.writeResult(4, floats(4)) === undefined;
    expect(step4).toBe(true);
    c.ack(seqs[2]);
    expect(c.writeResult(5, floats(5))).toMatchObject({ slot: 1 });
    expect(c.writeResult(6, floats(6))).toMatchObject({ slot: 2 });
    expect(c.writeResult(7, floats(7))).toBeUndefined();
    // the unacknowledged result of step 4 in slot 0 is intact
    const r = new SlotReader(fdIo(join(dir, 'wk-1.res')), PC, offer.resultSlots);
    const dst = new Float32Array(PC);
    r.read(0, seqs[2] + 2, 4, dst);
    expect(bitsOf(dst)).toEqual(bitsOf(floats(4)));
  });

  it('close() releases both files and is safe to call twice', () => {
    const before = openFds();
    const c = ShmClient.open(offer, 'wk-1', PC);
    expect(openFds()).toBe(before + 2);
    c.close();
    expect(openFds()).toBe(before);
    expect(() => c.close()).not.toThrow();
  });
});

describe('ShmClient.open refuses, leaving no file descriptor open', () => {
  it('a nonce that differs from the files (another run, another host)', () => {
    expectShm(openFails('wk-1', { ...offer, nonce: OTHER }), 'nonce differs');
  });

  it('a result file of another run, next to the right params file', () => {
    rmSync(join(dir, 'wk-1.res'));
    makeFile('wk-1.res', offer.resultSlots, OTHER);
    expectShm(openFails('wk-1'), 'nonce differs');
  });

  it('files made for another paramCount, or a result file with fewer slots than offered', () => {
    expectShm(openFails('wk-1', offer, PC + 1), `made for ${PC} parameters`);
    expectShm(openFails('wk-1', { ...offer, resultSlots: 4 }), '3 slots, expected at least 4');
  });

  it('a missing params file', () => {
    rmSync(join(dir, 'params'));
    expect((openFails('wk-1') as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('a missing result file (after the params file was opened)', () => {
    expect((openFails('wk-2') as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('a result file that is a symbolic link, even to a file with a valid header (O_NOFOLLOW)', () => {
    makeFile('elsewhere', offer.resultSlots);
    rmSync(join(dir, 'wk-1.res'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'wk-1.res'));
    expect((openFails('wk-1') as NodeJS.ErrnoException).code).toBe('ELOOP');
  });

  it('a params file that is a symbolic link', () => {
    makeFile('elsewhere', PARAMS_SLOTS);
    rmSync(join(dir, 'params'));
    symlinkSync('elsewhere', join(dir, 'params'));
    expect((openFails('wk-1') as NodeJS.ErrnoException).code).toBe('ELOOP');
  });

  it('a params "file" that is a FIFO: refused at once as not a regular file (a plain open would block forever)', () => {
    rmSync(join(dir, 'params'));
    const made = spawnSync('mkfifo', [join(dir, 'params')]);
    expect(made.status).toBe(0);
    // (a blocking open would hang here until the test's own timeout)
    expect(openFails('wk-1').message).toMatch(/params is not a regular file/);
  });

  it('a worker id that cannot name a file in the directory', () => {
    makeFile('.hidden.res', offer.resultSlots);
    for (const id of ['../wk-1', 'a/b', '..', '.hidden', '', 'wk 1']) {
      expect(openFails(id).message).toContain('cannot name a file');
    }
  });
});
