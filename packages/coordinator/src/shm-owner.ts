import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Who made a dptrain shared-memory directory, written into it as `owner`: the process id,
 * its pid namespace and its start time (clock ticks since boot, /proc/<pid>/stat field 22).
 * From the same pid namespace, that tells for certain whether the coordinator still runs:
 * its pid is gone, or now names another process (a different start time). From another
 * namespace (a container sharing /dev/shm) the pid means nothing, and the sweep falls back
 * to waiting until the directory has not been written for a while.
 */
export interface DirOwner {
  pid: number;
  pidns: string;
  start: string;
}

export const OWNER_FILE = 'owner';

/** The start time of process `pid` as /proc shows it, or undefined (no such process, no /proc). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; fields resume after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = rest[19]; // field 22; rest[0] is field 3
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let pidNamespace: { ns: string | undefined } | undefined;

/** This process's pid namespace (read once: it never changes), or undefined without /proc. */
function ownPidNamespace(): string | undefined {
  if (!pidNamespace) {
    try {
      pidNamespace = { ns: readlinkSync('/proc/self/ns/pid') };
    } catch {
      pidNamespace = { ns: undefined };
    }
  }
  return pidNamespace.ns;
}

/** This process as an owner, or undefined where /proc does not say (then no owner file is written). */
export function selfOwner(): DirOwner | undefined {
  const pidns = ownPidNamespace();
  const start = processStartTime(process.pid);
  return pidns && start ? { pid: process.pid, pidns, start } : undefined;
}

/** Write `owner` (0600) into `dir` if this process can describe itself. */
export function writeOwner(dir: string): void {
  const o = selfOwner();
  if (o) writeFileSync(join(dir, OWNER_FILE), `${o.pid} ${o.pidns} ${o.start}\n`, { mode: 0o600, flag: 'wx' });
}

/** The owner recorded in `dir`, or undefined (no file, or not one this code wrote). */
export function readOwner(dir: string): DirOwner | undefined {
  try {
    const m = /^(\d+) (\S+) (\d+)\n$/.exec(readFileSync(join(dir, OWNER_FILE), 'latin1'));
    return m ? { pid: Number(m[1]), pidns: m[2]!, start: m[3]! } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the coordinator that made `dir` (whose name says pid `pid`) is certainly gone:
 * true (its recorded pid, in this pid namespace, is gone or is another process now),
 * false (it runs), or undefined when this process cannot tell (no owner file, another pid
 * namespace, a pid that disagrees with the name, no /proc).
 */
export function ownerGone(dir: string, pid: number): boolean | undefined {
  const o = readOwner(dir);
  const ns = ownPidNamespace();
  if (!o || o.pid !== pid || !ns || o.pidns !== ns) return undefined;
  const start = processStartTime(pid);
  return start !== o.start;
}
