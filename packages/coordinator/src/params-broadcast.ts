import { ParamsFrame } from '@dptrain/protocol';

/**
 * Sends one frame; returns false if it did not send (closed). When it returns true it must call
 * `done` once the transport no longer reads the bytes: the write completed or failed.
 */
export type FrameSender = (bytes: Uint8Array, done: () => void) => boolean;

interface Slot {
  frame: ParamsFrame;
  bytes: Uint8Array | undefined;
  version: number;
  /** Sends of `bytes` not completed yet. */
  pending: number;
}

/**
 * The coordinator's encoded `params` frames, rewritten in place from version to version
 * instead of allocating a frame of 4 × paramCount bytes per update. Normally two frames
 * alternate.
 *
 * When a frame may be rewritten: ws does not copy what it sends, the socket reads the frame's
 * bytes until the kernel has taken them (then ws calls the send callback; it also calls it,
 * with an error, when the socket dies). In a synchronous run, version v + 1 is broadcast only
 * after step v completed, i.e. after every node of step v came back; a worker computes for
 * step v only after it decoded params v, which reach it after params v − 1 on the same ordered
 * socket. So every worker that took part in step v has received the frame of v − 1 in full
 * before the frame of v + 1 is written: with two frames alternating, the one rewritten for
 * v + 1 (the one v − 1 used) is free. That reasoning covers only workers that answered,
 * though: a worker past the step deadline (its nodes re-executed elsewhere), one that joined
 * mid-step or one whose connection is dying may still have an old params frame queued in its
 * socket. So each frame also counts its sends in flight, and a frame with a send in flight is
 * never rewritten: a further frame is allocated instead (and reused later like the others).
 */
export class ParamsBroadcast {
  private readonly slots: Slot[] = [];
  private current: Slot | undefined;

  constructor(readonly paramCount: number) {}

  /** Frames allocated so far (2 in a run where no socket lags behind). */
  get frames(): number {
    return this.slots.length;
  }

  /**
   * Send the params of `version` with each sender. The frame is encoded once per version
   * (from `params`, copied into a free frame); later calls for the same version resend it.
   */
  send(version: number, params: Float32Array, senders: Iterable<FrameSender>): void {
    const slot = this.frameOf(version, params);
    const bytes = slot.bytes!;
    for (const send of senders) {
      slot.pending++;
      let open = true;
      const done = () => {
        if (!open) return;
        open = false;
        slot.pending--;
      };
      let sent = false;
      try {
        sent = send(bytes, done);
      } finally {
        if (!sent) done();
      }
    }
  }

  private frameOf(version: number, params: Float32Array): Slot {
    const cur = this.current;
    if (cur && cur.version === version) return cur;
    // the least recently written free frame other than the current one (two alternate, so even a
    // miscounted send to a worker that answered is safe by the reasoning above), else the current
    // one if free and two exist, else a new one
    let slot = this.slots.find((s) => s !== cur && s.pending === 0);
    if (!slot && this.slots.length >= 2 && cur && cur.pending === 0) slot = cur;
    if (!slot) {
      slot = { frame: new ParamsFrame(this.paramCount), bytes: undefined, version: -1, pending: 0 };
      this.slots.push(slot);
    }
    slot.bytes = undefined;
    slot.version = -1;
    slot.bytes = slot.frame.write(version, params);
    slot.version = version;
    // keep the order of reuse: the slot just written goes last
    this.slots.splice(this.slots.indexOf(slot), 1);
    this.slots.push(slot);
    this.current = slot;
    return slot;
  }
}
