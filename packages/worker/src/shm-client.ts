import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type ParamsRefMessage, type ShmOffer, SlotReader, type SlotIo, SlotWriter, checkFileHeader, positionedSlotIo } from '@dptrain/protocol';

/** Slots of the coordinator's params file (versions alternate between them). */
const PARAMS_SLOTS = 2;

/** pread/pwrite of whole ranges on a file descriptor (short transfers are retried until 0). */
function fdSlotIo(fd: number): SlotIo {
  return positionedSlotIo((b, o, n, p) => readSync(fd, b, o, n, p), (b, o, n, p) => writeSync(fd, b, o, n, p));
}

/**
 * The worker's side of the shared-memory data plane (PROTOCOL.md §3.10): the run's params
 * file, read-only, and this worker's result file, written as a ring of slots. open()
 * succeeds only if both files carry the nonce of the offer, so a worker on another host,
 * or one pointed at files of another run, declines and keeps to the socket; nothing is
 * ever written to a file whose header was not checked.
 */
export class ShmClient {
  private readonly params: SlotReader;
  private readonly results: SlotWriter;
  private next = 0;
  /** Seq last written to each result slot (0: never written). */
  private readonly written: number[];
  /** Highest result seq the coordinator has dealt with (task.resultsRead). */
  private acked = 0;

  private constructor(
    private readonly fds: number[],
    paramCount: number,
    readonly resultSlots: number,
  ) {
    this.params = new SlotReader(fdSlotIo(fds[0]!), paramCount, PARAMS_SLOTS, 'params file (tag: version)');
    this.results = new SlotWriter(fdSlotIo(fds[1]!), paramCount, resultSlots);
    this.written = new Array<number>(resultSlots).fill(0);
  }

  /** Open the files of `offer` for `workerId`; throws (E_SHM, or the file system's error) when they cannot be used. */
  static open(offer: ShmOffer, workerId: string, paramCount: number): ShmClient {
    if (!/^[A-Za-z0-9_.-]+$/.test(workerId) || workerId.startsWith('.')) throw new Error(`worker id ${JSON.stringify(workerId)} cannot name a file`);
    const fds: number[] = [];
    try {
      // O_NOFOLLOW: never through a symbolic link planted in the directory; O_NONBLOCK: a
      // FIFO or device there must not hang the worker (it is then refused as not a file)
      const openFile = (name: string, mode: number) => {
        const fd = openSync(join(offer.dir, name), mode | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        fds.push(fd);
        if (!fstatSync(fd).isFile()) throw new Error(`${join(offer.dir, name)} is not a regular file`);
        return fd;
      };
      checkFileHeader(fdSlotIo(openFile('params', constants.O_RDONLY)), offer.nonce, paramCount, PARAMS_SLOTS);
      checkFileHeader(fdSlotIo(openFile(`${workerId}.res`, constants.O_RDWR)), offer.nonce, paramCount, offer.resultSlots);
      return new ShmClient(fds, paramCount, offer.resultSlots);
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
  }

  /** Read the params a params_ref names into `dst`; throws E_SHM if the slot no longer holds them. */
  readParams(ref: Pick<ParamsRefMessage, 'version' | 'slot' | 'seq'>, dst: Float32Array): void {
    this.params.read(ref.slot, ref.seq, ref.version, dst);
  }

  /** The coordinator has dealt with every result this session wrote up to `seq` (task.resultsRead). */
  ack(seq: number): void {
    if (seq > this.acked) this.acked = seq;
  }

  /**
   * Write a gradient of `step` into a free slot of the ring (never written, or dealt with
   * by the coordinator); returns the slot and seq for the result_ref, or undefined when
   * every slot still holds a result the coordinator has not dealt with (the caller then
   * sends a frame: results come faster than the coordinator reads them). The write is
   * synchronous and reads `grad` in place (a view of the kernels' memory, say): `grad` may
   * be overwritten as soon as this returns.
   */
  writeResult(step: number, grad: Float32Array): { slot: number; seq: number } | undefined {
    for (let k = 0; k < this.resultSlots; k++) {
      const slot = (this.next + k) % this.resultSlots;
      if (this.written[slot] > this.acked) continue;
      this.next = (slot + 1) % this.resultSlots;
      const seq = this.results.write(slot, step, grad);
      this.written[slot] = seq;
      return { slot, seq };
    }
    return undefined;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
