import { spawnSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError, SlotReader, SlotWriter, checkFileHeader, slotFileBytes } from '@dptrain/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESULT_SLOTS, ShmHost, fdSlotIo } from './shm-host.js';
import { OWNER_FILE, processStartTime, readOwner, selfOwner } from './shm-owner.js';

const PC = 1100; // two pages per slot

let root: string;
const hosts: ShmHost[] = [];
const fds: number[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'shm-host-test-'));
});

afterEach(() => {
  for (const h of hosts.splice(0)) h.close();
  for (const fd of fds.splice(0)) closeSync(fd);
  rmSync(root, { recursive: true, force: true });
});

function host(paramCount = PC): ShmHost {
  const h = ShmHost.create(root, paramCount);
  if (h instanceof Error) throw h;
  hosts.push(h);
  return h;
}

function open(path: string, flags: string): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

/** Floats with awkward bit patterns: ±0, subnormals, ±max, and ordinary values that depend on `k`. */
function floats(k: number, n = PC): Float32Array {
  const a = new Float32Array(n).map((_, i) => Math.fround(Math.sin(i * k + 1)));
  const u = new Uint32Array(a.buffer);
  u.set([0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff]);
  return a;
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

function shmError(fn: () => unknown, text: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProtocolError);
  expect((err as ProtocolError).code).toBe('E_SHM');
  expect((err as Error).message).toContain(text);
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe('ShmHost.create', () => {
  it('makes a private dptrain-<pid>-* directory holding a 0600 params file', () => {
    const h = host();
    expect(readdirSync(root)).toHaveLength(1);
    const name = readdirSync(root)[0]!;
    expect(name).toMatch(new RegExp(`^dptrain-${process.pid}-`));
    expect(h.dir).toBe(join(root, name));
    expect(statSync(h.dir).mode & 0o777).toBe(0o700);
    const params = join(h.dir, 'params');
    expect(statSync(params).mode & 0o777).toBe(0o600);
    expect(statSync(params).size).toBe(slotFileBytes(PC, 2));
    expect(h.offer.dir).toBe(h.dir);
    expect(h.offer.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(h.offer.resultSlots).toBe(RESULT_SLOTS);
    expect(() => checkFileHeader(fdSlotIo(open(params, 'r')), h.offer.nonce, PC, 2)).not.toThrow();
  });

  it('each host gets its own directory and nonce', () => {
    const a = host();
    const b = host();
    expect(a.dir).not.toBe(b.dir);
    expect(a.offer.nonce).not.toBe(b.offer.nonce);
  });

  it('a missing root → an Error returned, not thrown; a failed setup leaves no directory behind', () => {
    const missing = ShmHost.create(join(root, 'nope'), PC);
    expect(missing).toBeInstanceOf(Error);
    expect((missing as Error).message).toContain(join(root, 'nope'));
    const bad = ShmHost.create(root, 0);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as Error).message).toMatch(/paramCount/);
    expect(readdirSync(root)).toEqual([]);
  });

  it('sweeps directories of dead coordinators not written for 10 minutes, keeps those of live ones, recently written ones and unrelated ones', () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    expect(dead).toBeGreaterThan(0);
    // dptrain-<dead>-fresh: the pid looks dead but its params file was written just now (a
    // coordinator in another pid namespace sharing the directory): kept
    const names = [`dptrain-${dead}-xyz`, `dptrain-${process.pid}-mine`, `dptrain-${process.ppid}-live`, 'dptrain-abc-x', 'other', `dptrain-${dead}-fresh`];
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const n of names) {
      mkdirSync(join(root, n));
      writeFileSync(join(root, n, 'params'), 'x');
      if (!n.endsWith('-fresh')) utimesSync(join(root, n, 'params'), hourAgo, hourAgo);
    }
    const h = host();
    const left = readdirSync(root);
    expect(left).not.toContain(`dptrain-${dead}-xyz`);
    expect(left.sort()).toEqual([...names.slice(1), h.dir.slice(root.length + 1)].sort());
  });
});

describe('ShmHost owner file and the sweep by owner', () => {
  const me = selfOwner();
  const hourAgo = new Date(Date.now() - 3_600_000);
  /** A directory as a coordinator with this pid / namespace / start time would leave it; params written just now unless `old`. */
  const leave = (name: string, owner: string | undefined, old = false) => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, 'params'), 'x');
    if (old) utimesSync(join(root, name, 'params'), hourAgo, hourAgo);
    if (owner !== undefined) writeFileSync(join(root, name, OWNER_FILE), owner);
  };

  it('a host records its pid, pid namespace and start time in an owner file (0600)', () => {
    expect(me).toBeDefined(); // Linux with /proc
    const h = host();
    expect(readOwner(h.dir)).toEqual(me);
    expect(statSync(join(h.dir, OWNER_FILE)).mode & 0o777).toBe(0o600);
  });

  it('sweeps at once the directory of a coordinator of this pid namespace that is gone or whose pid now names another process; keeps a live one, and judges other namespaces by the 10-minute rule', () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const parent = process.ppid;
    const parentStart = processStartTime(parent);
    expect(parentStart).toMatch(/^\d+$/);
    const ns = me!.pidns;
    leave(`dptrain-${dead}-gone`, `${dead} ${ns} 12345\n`); // written just now, but its process is gone: swept
    leave(`dptrain-${parent}-reused`, `${parent} ${ns} 1\n`); // the pid lives but is another process: swept
    leave(`dptrain-${parent}-live`, `${parent} ${ns} ${parentStart}\n`, true); // its coordinator runs: kept, however old
    leave(`dptrain-${dead}-otherns`, `${dead} pid:[1] 12345\n`); // another namespace, written just now: kept
    leave(`dptrain-${dead}-otherns-old`, `${dead} pid:[1] 12345\n`, true); // another namespace, not written for an hour: swept
    leave(`dptrain-${dead}-garbled`, 'not an owner'); // unreadable owner, fresh: kept (the 10-minute rule)
    const h = host();
    expect(readdirSync(root).sort()).toEqual([`dptrain-${dead}-garbled`, `dptrain-${dead}-otherns`, `dptrain-${parent}-live`, h.dir.slice(root.length + 1)].sort());
  });
});

describe('ShmHost params', () => {
  it('writes once per version, alternating slots, and a SlotReader reads the params back bit for bit', () => {
    const h = host();
    const reader = new SlotReader(fdSlotIo(open(join(h.dir, 'params'), 'r')), PC, 2);
    const dst = new Float32Array(PC);

    const p2 = floats(2);
    const r2 = h.writeParams(2, p2);
    expect(r2.slot).toBe(0);
    expect(r2.seq % 2).toBe(0);
    expect(h.writeParams(2, floats(99))).toEqual(r2); // same version: not rewritten
    reader.read(r2.slot, r2.seq, 2, dst);
    expect(bitsOf(dst)).toEqual(bitsOf(p2));

    const p3 = floats(3);
    const r3 = h.writeParams(3, p3);
    expect(r3.slot).toBe(1);
    expect(r3.seq).toBeGreaterThan(r2.seq);
    reader.read(r3.slot, r3.seq, 3, dst);
    expect(bitsOf(dst)).toEqual(bitsOf(p3));
    reader.read(r2.slot, r2.seq, 2, dst); // the previous version is still readable
    expect(bitsOf(dst)).toEqual(bitsOf(p2));

    const r4 = h.writeParams(4, floats(4));
    expect(r4.slot).toBe(0);
    expect(r4.seq).toBeGreaterThan(r3.seq);
    shmError(() => reader.read(r2.slot, r2.seq, 2, dst), 'was rewritten'); // version 2's slot now holds version 4
  });
});

describe('ShmHost result files', () => {
  it('addWorker creates <id>.res (0600) whose header matches the offer', () => {
    const h = host();
    h.addWorker('wk-1');
    const path = join(h.dir, 'wk-1.res');
    expect(h.hasWorker('wk-1')).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(slotFileBytes(PC, RESULT_SLOTS));
    const io = fdSlotIo(open(path, 'r'));
    expect(() => checkFileHeader(io, h.offer.nonce, PC, h.offer.resultSlots)).not.toThrow();
    shmError(() => checkFileHeader(io, 'f'.repeat(32), PC, h.offer.resultSlots), 'nonce differs');
  });

  it('readResult reads what a SlotWriter wrote into the file; a wrong seq, step or worker → E_SHM', () => {
    const h = host();
    h.addWorker('wk-1');
    const writer = new SlotWriter(fdSlotIo(open(join(h.dir, 'wk-1.res'), 'r+')), PC, RESULT_SLOTS);
    const dst = new Float32Array(PC);
    shmError(() => h.readResult('wk-1', 0, 2, 0, dst), 'was never written');
    for (let step = 0; step < RESULT_SLOTS + 1; step++) {
      const g = floats(step + 10);
      const slot = step % RESULT_SLOTS;
      const seq = writer.write(slot, step, g);
      h.readResult('wk-1', slot, seq, step, dst);
      expect(bitsOf(dst)).toEqual(bitsOf(g));
      shmError(() => h.readResult('wk-1', slot, seq + 2, step, dst), 'was rewritten');
      shmError(() => h.readResult('wk-1', slot, seq, step + 1, dst), 'was rewritten');
    }
    shmError(() => h.readResult('wk-2', 0, 2, 0, dst), 'worker wk-2 has no result file');
  });

  it('removeWorker closes and deletes the file; unknown ids are ignored', () => {
    const h = host();
    const fds0 = openFds();
    h.addWorker('wk-1');
    h.addWorker('wk-2');
    expect(openFds()).toBe(fds0 + 2);
    h.removeWorker('wk-1');
    h.removeWorker('wk-9');
    expect(openFds()).toBe(fds0 + 1);
    expect(existsSync(join(h.dir, 'wk-1.res'))).toBe(false);
    expect(existsSync(join(h.dir, 'wk-2.res'))).toBe(true);
    expect(h.hasWorker('wk-1')).toBe(false);
    shmError(() => h.readResult('wk-1', 0, 2, 0, new Float32Array(PC)), 'has no result file');
  });

  it('addWorker again for the same id starts a fresh file', () => {
    const h = host();
    h.addWorker('wk-1');
    const path = join(h.dir, 'wk-1.res');
    const seq = new SlotWriter(fdSlotIo(open(path, 'r+')), PC, RESULT_SLOTS).write(0, 5, floats(1));
    const ino = statSync(path).ino;
    h.addWorker('wk-1');
    expect(statSync(path).ino).not.toBe(ino);
    shmError(() => h.readResult('wk-1', 0, seq, 5, new Float32Array(PC)), 'never written');
  });
});

describe('ShmHost.close', () => {
  it('closes every file, deletes the directory, and is safe to call twice', () => {
    const fds0 = openFds();
    const h = ShmHost.create(root, PC) as ShmHost;
    expect(h).toBeInstanceOf(ShmHost);
    h.addWorker('a');
    h.addWorker('b');
    h.writeParams(1, floats(1));
    expect(openFds()).toBe(fds0 + 3);
    h.close();
    expect(existsSync(h.dir)).toBe(false);
    expect(readdirSync(root)).toEqual([]);
    expect(openFds()).toBe(fds0);
    expect(() => h.close()).not.toThrow();
    expect(h.hasWorker('a')).toBe(false);
  });
});

describe('fdSlotIo', () => {
  it('moves whole ranges and reports short reads at the end of the file', () => {
    const path = join(root, 'f');
    writeFileSync(path, new Uint8Array(10));
    const fd = open(path, 'r+');
    const io = fdSlotIo(fd);
    expect(io.write(Uint8Array.from([1, 2, 3, 4]), 8)).toBe(4);
    expect(fstatSync(fd).size).toBe(12);
    const dst = new Uint8Array(8);
    expect(io.read(dst, 6)).toBe(6);
    expect([...dst]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
  });
});

describe('ShmHost room', () => {
  it('writes every file in full at creation, so later writes cannot run out of room', () => {
    const h = host();
    h.addWorker('w1');
    for (const [name, slots] of [
      ['params', 2],
      ['w1.res', RESULT_SLOTS],
    ] as const) {
      const st = statSync(join(h.dir, name));
      expect(st.size).toBe(slotFileBytes(PC, slots));
      expect(st.blocks * 512).toBeGreaterThanOrEqual(st.size);
    }
  });

  it('refuses a file beyond its budget with a message naming the room needed and left, and counts deleted files back', () => {
    const params = slotFileBytes(PC, 2);
    const res = slotFileBytes(PC, RESULT_SLOTS);
    expect(ShmHost.create(root, PC, { maxBytes: params - 1 })).toBeInstanceOf(Error);
    expect((ShmHost.create(root, PC, { maxBytes: params - 1 }) as Error).message).toMatch(/not enough room in .*: params needs [\d.]+ MiB, [\d.]+ MiB of [\d.]+ MiB left/);
    // the refused directories were removed
    expect(readdirSync(root)).toEqual([]);
    const h = ShmHost.create(root, PC, { maxBytes: params + res });
    if (h instanceof Error) throw h;
    hosts.push(h);
    h.addWorker('a');
    expect(() => h.addWorker('b')).toThrow(/not enough room .*: b\.res needs/);
    expect(existsSync(join(h.dir, 'b.res'))).toBe(false);
    expect(h.hasWorker('b')).toBe(false);
    h.removeWorker('a');
    h.addWorker('b');
    expect(h.hasWorker('b')).toBe(true);
  });
});

describe('ShmHost lifecycle', () => {
  it('removes its directory at process exit if close() was never called; close() takes that hook away', () => {
    const before = process.listeners('exit').length;
    const h = ShmHost.create(root, PC);
    if (h instanceof Error) throw h;
    const added = process.listeners('exit').slice(before);
    expect(added).toHaveLength(1);
    (added[0] as () => void)();
    expect(existsSync(h.dir)).toBe(false);
    h.close();
    expect(process.listeners('exit')).toHaveLength(before);
  });

  it('refuses to write, read or add after close() (its file descriptors may belong to other files by then)', () => {
    const h = host();
    h.addWorker('w1');
    h.close();
    for (const f of [() => h.writeParams(1, new Float32Array(PC)), () => h.addWorker('w2'), () => h.readResult('w1', 0, 2, 0, new Float32Array(PC))]) {
      expect(f).toThrow(/is closed/);
    }
  });

  it("the sweep leaves another user's directory alone", () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const other = join(root, `dptrain-${dead}-other`);
    mkdirSync(other);
    writeFileSync(join(other, 'params'), 'x');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(join(other, 'params'), hourAgo, hourAgo);
    chownSync(other, 54321, 54321);
    host();
    expect(existsSync(other)).toBe(process.getuid?.() === 54321 ? false : true);
  });
});
