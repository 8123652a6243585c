import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A throw-away network of Linux network namespaces for the "across hosts" test: one
 * bridge namespace with a bridge, and one namespace per host (coordinator, workers), each
 * joined to the bridge by a veth pair. Addresses are in TEST_SUBNET and exist only inside
 * these namespaces, so no traffic leaves them. Needs root and iproute2.
 */

/** The private range used inside the namespaces (nothing outside them uses it). */
export const TEST_SUBNET = '10.231.77';

/** One host of the lab: its namespace, its address, and the bridge-side end of its link. */
export interface LabHost {
  name: string;
  ns: string;
  addr: string;
  /** The veth end inside the bridge namespace (cutting it is cutting the cable). */
  port: string;
}

export interface CommandResult {
  ok: boolean;
  out: string;
}

/** Run a command synchronously, bounded by timeoutMs; never throws. */
export function sh(cmd: string, args: string[], timeoutMs = 10_000): CommandResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) return { ok: false, out: `${cmd} ${args.join(' ')}: ${r.error.message}` };
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return { ok: r.status === 0, out: r.status === 0 ? out : `${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${out}` };
}

/** Why namespaces cannot be used here (not Linux, not root, no `ip`), or undefined when they may. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return `network namespaces need root (uid ${process.getuid?.() ?? '?'})`;
  const v = sh('ip', ['-V']);
  if (!v.ok) return `iproute2 is missing (${v.out}); install it (apt-get install iproute2)`;
  return undefined;
}

/** The lab: create with setup(), remove with destroy() (safe to call twice, also after a failed setup). */
export class NetnsLab {
  readonly id = randomBytes(3).toString('hex');
  readonly bridgeNs = `dpt-b-${this.id}`;
  readonly hosts: LabHost[];
  /** Namespaces created so far (destroy() removes exactly these). */
  readonly created: string[] = [];

  /** `names`: short host names, e.g. ['c', 'w1', 'w2']; host i gets TEST_SUBNET.(i + 1). */
  constructor(names: string[]) {
    if (names.length > 200) throw new Error('at most 200 hosts');
    this.hosts = names.map((name, i) => ({ name, ns: `dpt-${name}-${this.id}`, addr: `${TEST_SUBNET}.${i + 1}`, port: `p${i}-${this.id}` }));
  }

  /** The host called `name`. */
  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in the lab`);
    return h;
  }

  private ip(...args: string[]): void {
    const r = sh('ip', args);
    if (!r.ok) throw new Error(`network namespace set-up failed: ${r.out}`);
  }

  /**
   * Create the namespaces, the bridge and the links. Returns a reason when the first
   * `ip netns add` is refused (namespaces not permitted here); throws on any later failure.
   */
  setup(): string | undefined {
    const first = sh('ip', ['netns', 'add', this.bridgeNs]);
    if (!first.ok) return `cannot create a network namespace: ${first.out}`;
    this.created.push(this.bridgeNs);
    const b = this.bridgeNs;
    this.ip('-n', b, 'link', 'set', 'lo', 'up');
    this.ip('-n', b, 'link', 'add', 'name', 'br0', 'type', 'bridge');
    this.ip('-n', b, 'link', 'set', 'br0', 'up');
    for (const h of this.hosts) {
      this.ip('netns', 'add', h.ns);
      this.created.push(h.ns);
      this.ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      this.ip('-n', b, 'link', 'add', 'name', h.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      this.ip('-n', b, 'link', 'set', h.port, 'master', 'br0');
      this.ip('-n', b, 'link', 'set', h.port, 'up');
      this.ip('-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0');
      this.ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    }
    return undefined;
  }

  /**
   * Whether `from` reaches `to` over the lab network: a TCP connect to a closed port must be
   * refused (the peer answered) rather than time out. No ping needed.
   */
  reach(from: string, to: string): CommandResult {
    const script = `const s=require('net').connect(9,'${this.host(to).addr}');s.setTimeout(3000,()=>{console.log('TIMEOUT');process.exit(1)});s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(e.code==='ECONNREFUSED'?0:1)})`;
    const r = sh('ip', ['netns', 'exec', this.host(from).ns, process.execPath, '-e', script], 8000);
    return r.ok ? r : { ok: false, out: `${from} cannot reach ${to} (${this.host(to).addr}): ${r.out}` };
  }

  /**
   * Add `tc netem` impairment (e.g. ['delay', '20ms', '5ms', 'loss', '1%']) to both
   * directions of host `name`'s link. Returns why it failed (e.g. sch_netem missing).
   */
  netem(name: string, spec: string[]): string | undefined {
    const h = this.host(name);
    for (const [ns, dev] of [
      [h.ns, 'eth0'],
      [this.bridgeNs, h.port],
    ]) {
      const r = sh('tc', ['-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'netem', ...spec]);
      if (!r.ok) return r.out;
    }
    return undefined;
  }

  /** Cut (down) or restore (up) host `name`'s cable at the bridge. */
  link(name: string, state: 'up' | 'down'): void {
    this.ip('-n', this.bridgeNs, 'link', 'set', this.host(name).port, state);
  }

  /** `ip netns exec NS` prefix for running a command on host `name`. */
  exec(name: string): string[] {
    return ['netns', 'exec', this.host(name).ns];
  }

  /** Delete every namespace created (links go with them). Returns the failures, if any. */
  destroy(): string[] {
    const errors: string[] = [];
    for (const ns of this.created.splice(0).reverse()) {
      const r = sh('ip', ['netns', 'del', ns]);
      if (!r.ok) errors.push(r.out);
    }
    return errors;
  }
}
