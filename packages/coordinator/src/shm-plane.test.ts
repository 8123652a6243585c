import { mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MessageInit, ProtocolError, SlotReader, SlotWriter } from '@dptrain/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Connection } from './connection.js';
import { RESULT_SLOTS, fdSlotIo } from './shm-host.js';
import { ShmPlane } from './shm-plane.js';

const PC = 300;
let root: string;
let planes: ShmPlane[] = [];
let logs: string[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'dpt-shm-plane-'));
  logs = [];
});
afterEach(() => {
  for (const p of planes) p.close();
  planes = [];
  rmSync(root, { recursive: true, force: true });
});

function plane(enabled = true, dir = root): ShmPlane {
  const p = new ShmPlane({ enabled, dir, paramCount: PC, log: (l) => logs.push(l) });
  planes.push(p);
  return p;
}

/** The parts of a Connection the plane uses. */
function conn(id: string, loopback = true) {
  const sent: MessageInit[] = [];
  const c = {
    id,
    loopback,
    shm: false,
    shmOffered: false,
    shmBytesIn: 0,
    shmBytesOut: 0,
    sent,
    send(m: MessageInit) {
      sent.push(m);
    },
    shmSent(b: number) {
      this.shmBytesOut += b;
    },
    shmReceived(b: number) {
      this.shmBytesIn += b;
    },
  };
  return c as typeof c & Connection;
}

const params = (k: number) => Float32Array.from({ length: PC }, (_, i) => Math.fround(Math.sin(i + k)));
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
const ref = (slot: number, seq: number, step = 3) => ({ type: 'result_ref' as const, v: 1 as const, step, nodeLo: 0, nodeSize: 1, samples: 8, lossSum: 1.5, correct: 2, computeMs: 1, slot, seq });

describe('ShmPlane', () => {
  it('offers nothing when off, to a peer that is not on loopback, or when the directory is missing (then never again)', () => {
    expect(plane(false).offer(conn('w1'))).toBeUndefined();
    expect(plane().offer(conn('w1', false))).toBeUndefined();
    const missing = plane(true, join(root, 'nope'));
    expect(missing.offer(conn('w1'))).toBeUndefined();
    expect(logs.join('\n')).toMatch(/shared memory unavailable \(.*nope does not exist\); local workers use the socket/);
    expect(missing.offer(conn('w2'))).toBeUndefined();
    expect(readdirSync(root)).toEqual([]);
  });

  it('offer → ready(took): the worker uses it; ready(declined) deletes its file', () => {
    const p = plane();
    const a = conn('a');
    const b = conn('b');
    const offer = p.offer(a)!;
    expect(offer).toMatchObject({ resultSlots: RESULT_SLOTS, nonce: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(p.offer(b)).toEqual(offer);
    expect(readdirSync(offer.dir).sort()).toEqual(['a.res', 'b.res', 'owner', 'params']);
    p.ready(a, true);
    p.ready(b, false);
    expect([a.shm, b.shm, b.shmOffered]).toEqual([true, false, false]);
    expect(readdirSync(offer.dir).sort()).toEqual(['a.res', 'owner', 'params']);
    p.drop(a);
    expect(a.shm).toBe(false);
    expect(readdirSync(offer.dir).sort()).toEqual(['owner', 'params']);
  });

  it('gives params through the file, written once per version: the reference goes with the task, else as a params_ref at the end of the tick', async () => {
    const p = plane();
    const a = conn('a');
    const b = conn('b');
    const offer = p.offer(a)!;
    p.offer(b);
    p.ready(a, true);
    p.ready(b, true);
    const v5 = params(5);
    expect(p.sendParams(a, 5, v5)).toBe(true);
    expect(p.sendParams(b, 5, v5)).toBe(true);
    expect([a.sent, b.sent]).toEqual([[], []]);
    // a's task takes the reference (a task of another version would not)
    expect(p.takeRef(a, 4)).toBeUndefined();
    expect(a.sent).toMatchObject([{ type: 'params_ref', version: 5 }]);
    a.sent.length = 0;
    expect(p.sendParams(a, 5, v5)).toBe(true);
    const taken = p.takeRef(a, 5)!;
    expect(p.takeRef(a, 5)).toBeUndefined();
    // b has no task this tick: a params_ref goes out at its end
    await Promise.resolve();
    expect(a.sent).toEqual([]);
    const rb = b.sent[0] as Extract<MessageInit, { type: 'params_ref' }>;
    expect(rb).toMatchObject({ type: 'params_ref', version: 5, slot: 1 });
    const ra = { type: 'params_ref', version: 5, ...taken };
    expect(rb).toEqual(ra);
    // counted per worker and version given (a was given version 5 twice)
    expect([a.shmBytesOut, b.shmBytesOut]).toEqual([8 * PC, 4 * PC]);
    const got = new Float32Array(PC);
    new SlotReader(fdSlotIo(openSync(join(offer.dir, 'params'), 'r')), PC, 2).read(ra.slot, ra.seq, 5, got);
    expect(bits(got)).toEqual(bits(v5));
    const off = conn('c');
    expect(p.sendParams(off, 5, v5)).toBe(false);
    expect(off.sent).toEqual([]);
  });

  it('after a failed params write every worker gets frames, and its results are still read', () => {
    const p = plane();
    const a = conn('a');
    const offer = p.offer(a)!;
    p.ready(a, true);
    // the params file's write fails (as on a full file system)
    const host = (p as unknown as { host: { writeParams: () => never } }).host;
    host.writeParams = () => {
      throw new Error('ENOSPC: no space left on device');
    };
    expect(p.sendParams(a, 1, params(1))).toBe(false);
    expect(logs.join('\n')).toMatch(/writing params to shared memory failed \(ENOSPC.*\); every worker gets params through the socket from now on/);
    expect(p.sendParams(a, 2, params(2))).toBe(false);
    const grad = params(9);
    const seq = new SlotWriter(fdSlotIo(openSync(join(offer.dir, 'a.res'), 'r+')), PC, RESULT_SLOTS).write(0, 3, grad);
    const r = p.readResult(a, ref(0, seq), new Float32Array(PC));
    if (r instanceof ProtocolError) throw r;
    expect(bits(r.grad)).toEqual(bits(grad));
  });

  it('reads a result_ref into a result (fields kept), and refuses a slot that does not hold that write', () => {
    const p = plane();
    const a = conn('a');
    const offer = p.offer(a)!;
    p.ready(a, true);
    const w = new SlotWriter(fdSlotIo(openSync(join(offer.dir, 'a.res'), 'r+')), PC, RESULT_SLOTS);
    const grad = params(2);
    const seq = w.write(1, 3, grad);
    const into = new Float32Array(PC);
    const r = p.readResult(a, ref(1, seq), into);
    if (r instanceof ProtocolError) throw r;
    // read straight into the caller's buffer (a reduction buffer in the coordinator)
    expect(r.grad).toBe(into);
    expect(r).toMatchObject({ type: 'result', step: 3, nodeLo: 0, nodeSize: 1, samples: 8, lossSum: 1.5, correct: 2, computeMs: 1 });
    expect(r).not.toHaveProperty('slot');
    expect(bits(r.grad)).toEqual(bits(grad));
    expect(a.shmBytesIn).toBe(4 * PC);
    const stale = p.readResult(a, ref(1, seq + 2), new Float32Array(PC));
    expect(stale).toBeInstanceOf(ProtocolError);
    expect(stale).toMatchObject({ code: 'E_SHM', message: expect.stringMatching(/slot 1 was rewritten/) });
    expect(p.readResult(a, ref(2, 2), new Float32Array(PC))).toMatchObject({ code: 'E_SHM', message: expect.stringMatching(/never written/) });
    const off = conn('b');
    expect(p.readResult(off, ref(0, 2), new Float32Array(PC))).toMatchObject({ code: 'E_SHM', message: 'worker b does not use shared memory' });
  });

  it('close() deletes the directory', () => {
    const p = plane();
    const offer = p.offer(conn('a'))!;
    p.close();
    expect(readdirSync(root)).not.toContain(offer.dir.slice(root.length + 1));
  });
});
