import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, lstatSync, readdirSync, rmSync, statSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ProtocolError, type ShmOffer, SlotReader, type SlotIo, SlotWriter, fileHeader, positionedSlotIo, slotFileBytes } from '@dptrain/protocol';
import { ownerGone, writeOwner } from './shm-owner.js';

/** Slots of the params file: versions alternate between them. */
const PARAMS_SLOTS = 2;
/** Slots of each worker's result file (a ring; a slot is rewritten after this many results). */
export const RESULT_SLOTS = 4;
const PREFIX = 'dptrain-';

/** pread/pwrite of whole ranges on a file descriptor (short transfers are retried until 0). */
export function fdSlotIo(fd: number): SlotIo {
  return positionedSlotIo((b, o, n, p) => readSync(fd, b, o, n, p), (b, o, n, p) => writeSync(fd, b, o, n, p));
}

interface WorkerFile {
  fd: number;
  path: string;
  bytes: number;
  reader: SlotReader;
}

/** Options of ShmHost.create. */
export interface ShmHostOptions {
  /**
   * Most bytes the host's files may take in the directory (default: the file system's free
   * space at creation, from statfs, and at most half of its size). Every file is written in
   * full when it is created, so a full /dev/shm (64 MiB in a default Docker container) shows
   * as a refused offer at join time, never as a failed write mid-run.
   */
  maxBytes?: number;
}

/**
 * The coordinator's side of the shared-memory data plane (PROTOCOL.md §3.10): a private
 * directory under `root` (default /dev/shm) holding the params file, written once per
 * version, and one result file per worker that took the offer. Files are created 0600, so
 * only processes of the same user on this host can open them; the nonce in each header
 * proves to a worker that it opened the files of this run.
 */
export class ShmHost {
  readonly offer: ShmOffer;
  private readonly paramsFd: number;
  private readonly params: SlotWriter;
  private readonly workers = new Map<string, WorkerFile>();
  private written: { version: number; slot: number; seq: number } | undefined;
  private closed = false;
  /** Bytes of the files created and not deleted. */
  private used = 0;

  private constructor(
    readonly dir: string,
    readonly paramCount: number,
    private readonly budget: number,
  ) {
    const nonce = randomBytes(16).toString('hex');
    this.offer = { dir, nonce, resultSlots: RESULT_SLOTS };
    this.paramsFd = this.createFile('params', PARAMS_SLOTS);
    this.params = new SlotWriter(fdSlotIo(this.paramsFd), paramCount, PARAMS_SLOTS);
    // a coordinator that exits without close() (an uncaught error, process.exit) still removes its files
    process.once('exit', this.onExit);
  }

  private readonly onExit = () => {
    rmSync(this.dir, { recursive: true, force: true });
  };

  private live(): void {
    if (this.closed) throw new ProtocolError('E_SHM', `the shared-memory directory ${this.dir} is closed`);
  }

  /**
   * A host in a fresh directory under `root`, or an Error saying why there can be none (no
   * such directory, not writable, out of space): the caller then keeps to the socket.
   * Directories left by coordinators that died (their pid is gone) are removed first.
   */
  static create(root: string, paramCount: number, opts: ShmHostOptions = {}): ShmHost | Error {
    try {
      if (!existsSync(root)) return new Error(`${root} does not exist`);
      sweepStale(root);
      let budget = opts.maxBytes;
      if (budget === undefined) {
        // what is free, and at most half of the file system: /dev/shm is shared with every
        // other program on the host
        const fs = statfsSync(root);
        budget = Math.min(fs.bavail * fs.bsize, (fs.blocks * fs.bsize) / 2);
      }
      const dir = mkdtempSync(join(root, `${PREFIX}${process.pid}-`));
      try {
        writeOwner(dir);
        return new ShmHost(dir, paramCount, budget);
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Write the params of `version` (once per version; later calls return the same slot). Throws E_SHM on a failed write. */
  writeParams(version: number, params: Float32Array): { slot: number; seq: number } {
    this.live();
    const w = this.written;
    if (w && w.version === version) return { slot: w.slot, seq: w.seq };
    const slot = version % PARAMS_SLOTS;
    this.written = undefined;
    const seq = this.params.write(slot, version, params);
    this.written = { version, slot, seq };
    return { slot, seq };
  }

  /** Create the result file of `workerId` (before the welcome that offers it). */
  addWorker(workerId: string): void {
    this.live();
    this.removeWorker(workerId);
    const name = `${workerId}.res`;
    const fd = this.createFile(name, RESULT_SLOTS);
    const bytes = slotFileBytes(this.paramCount, RESULT_SLOTS);
    this.workers.set(workerId, { fd, path: join(this.dir, name), bytes, reader: new SlotReader(fdSlotIo(fd), this.paramCount, RESULT_SLOTS, `result file of ${workerId} (tag: step)`) });
  }

  hasWorker(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  /** Read the gradient a result_ref names into `dst`; throws E_SHM if the slot does not hold that write. */
  readResult(workerId: string, slot: number, seq: number, step: number, dst: Float32Array): void {
    this.live();
    const f = this.workers.get(workerId);
    if (!f) throw new ProtocolError('E_SHM', `worker ${workerId} has no result file`);
    f.reader.read(slot, seq, step, dst);
  }

  /** Close and delete the result file of `workerId` (its session ended or it declined the offer). */
  removeWorker(workerId: string): void {
    const f = this.workers.get(workerId);
    if (!f) return;
    this.workers.delete(workerId);
    closeQuietly(f.fd);
    rmSync(f.path, { force: true });
    this.used -= f.bytes;
  }

  /** Close every file and delete the directory. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.workers.keys()]) this.removeWorker(id);
    closeQuietly(this.paramsFd);
    rmSync(this.dir, { recursive: true, force: true });
    process.removeListener('exit', this.onExit);
  }

  /** Create a slot file and write it in full (header, zeroed slots), within the budget; throws if there is no room. */
  private createFile(name: string, slots: number): number {
    const size = slotFileBytes(this.paramCount, slots);
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    if (this.used + size > this.budget) {
      throw new Error(`not enough room in ${this.dir}: ${name} needs ${mb(size)}, ${mb(Math.max(0, this.budget - this.used))} of ${mb(this.budget)} left`);
    }
    const path = join(this.dir, name);
    const fd = openSync(path, 'wx+', 0o600);
    try {
      const header = fileHeader(this.offer.nonce, this.paramCount, slots);
      if (writeSync(fd, header, 0, header.byteLength, 0) !== header.byteLength) throw new Error(`short write of the header of ${name}`);
      // allocate every page now: a memory file system that fills up refuses here, at join time
      const zeros = new Uint8Array(Math.min(1 << 20, size));
      for (let at = header.byteLength; at < size; ) {
        const n = writeSync(fd, zeros, 0, Math.min(zeros.byteLength, size - at), at);
        if (n <= 0) throw new Error(`short write while allocating ${name}`);
        at += n;
      }
      this.used += size;
      return fd;
    } catch (e) {
      closeQuietly(fd);
      rmSync(path, { force: true });
      throw e;
    }
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** A directory whose params file changed this recently is kept even if its pid looks dead (another pid namespace may share the directory). */
const STALE_AFTER_MS = 10 * 60_000;

/**
 * Remove dptrain-<pid>-* directories under `root` whose coordinator is gone: at once when
 * its `owner` file shows it was in this pid namespace and its pid is gone or names another
 * process now (shm-owner.ts); otherwise (no owner file, another namespace) when its pid
 * does not exist here and its params file has not been written for STALE_AFTER_MS (a live
 * run rewrites it every step; a coordinator in another pid namespace sharing the directory
 * would look dead by its pid alone).
 */
function sweepStale(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  const uid = process.getuid?.();
  for (const name of names) {
    const m = /^dptrain-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    const gone = ownerGone(join(root, name), Number(m[1]));
    if (gone === false || (gone === undefined && (alive(Number(m[1])) || recentlyWritten(join(root, name, 'params'))))) continue;
    try {
      // only this user's directories (another user's are not ours to judge, nor to delete)
      const st = lstatSync(join(root, name));
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      rmSync(join(root, name), { recursive: true, force: true });
    } catch {
      // not removable: left alone, it does not stop this run from using shared memory
    }
  }
}

function recentlyWritten(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < STALE_AFTER_MS;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
