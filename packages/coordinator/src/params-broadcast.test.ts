import { decode, encode } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { type FrameSender, ParamsBroadcast } from './params-broadcast.js';

const N = 6;
const params = (v: number) => Float32Array.from({ length: N }, (_, i) => v * 10 + i);
const same = (a: Uint8Array, b: Uint8Array) => expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);

/** A fake socket: remembers what it was given and completes sends only when told to. */
class FakeSocket {
  readonly got: Uint8Array[] = [];
  readonly waiting: Array<() => void> = [];
  open = true;
  sender: FrameSender = (bytes, done) => {
    if (!this.open) return false;
    this.got.push(bytes);
    this.waiting.push(done);
    return true;
  };
  flush(): void {
    for (const d of this.waiting.splice(0)) d();
  }
}

describe('ParamsBroadcast', () => {
  it('encodes each version once, as encode() would, and alternates two frames when sends complete', () => {
    const pb = new ParamsBroadcast(N);
    const [s1, s2] = [new FakeSocket(), new FakeSocket()];
    const buffers = new Set<ArrayBufferLike>();
    for (let v = 0; v < 6; v++) {
      pb.send(v, params(v), [s1.sender, s2.sender]);
      pb.send(v, params(99), [s2.sender]); // a later send of the same version reuses its bytes
      const [a, b, c] = [s1.got[v], s2.got[2 * v], s2.got[2 * v + 1]];
      expect(b).toBe(a);
      expect(c).toBe(a);
      same(a, encode({ type: 'params', version: v, data: params(v) }));
      buffers.add(a.buffer);
      s1.flush();
      s2.flush();
    }
    expect(pb.frames).toBe(2);
    expect(buffers.size).toBe(2);
  });

  it('never rewrites a frame a socket may still be reading: a lagging socket gets its bytes intact', () => {
    const pb = new ParamsBroadcast(N);
    const [fast, slow] = [new FakeSocket(), new FakeSocket()];
    pb.send(0, params(0), [fast.sender, slow.sender]); // slow never completes this send
    const held = slow.got[0];
    for (let v = 1; v < 5; v++) {
      // the fast socket completes each send only after the next version went out: two frames busy
      const before = fast.waiting.splice(0);
      pb.send(v, params(v), [fast.sender]);
      for (const d of before) d();
      // the frame still being read by the previous send was not touched by this version
      same(fast.got[v - 1], encode({ type: 'params', version: v - 1, data: params(v - 1) }));
    }
    // version 0's frame was not reused: its bytes are still those of version 0
    same(held, encode({ type: 'params', version: 0, data: params(0) }));
    expect((decode(held) as { version: number }).version).toBe(0);
    expect(pb.frames).toBe(3);
    // once the slow send completes (or fails), the frame is reused and no more frames are made
    slow.flush();
    for (let v = 5; v < 9; v++) {
      pb.send(v, params(v), [fast.sender, slow.sender]);
      fast.flush();
      slow.flush();
      same(fast.got[fast.got.length - 1], encode({ type: 'params', version: v, data: params(v) }));
    }
    expect(pb.frames).toBe(3);
  });

  it('does not count a send to a closed socket, nor one that threw', () => {
    const pb = new ParamsBroadcast(N);
    const closed = new FakeSocket();
    closed.open = false;
    const throwing: FrameSender = () => {
      throw new Error('boom');
    };
    pb.send(0, params(0), [closed.sender]);
    expect(() => pb.send(1, params(1), [throwing])).toThrow('boom');
    const s = new FakeSocket();
    for (let v = 2; v < 6; v++) {
      pb.send(v, params(v), [s.sender]);
      s.flush();
    }
    expect(pb.frames).toBe(2);
  });
});
