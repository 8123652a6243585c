import { deriveSeed, Rng } from '@dptrain/core';
import { createServer, type Server, Socket } from 'node:net';

/**
 * A userspace stand-in for `tc netem` in the end-to-end tests: a TCP relay on 127.0.0.1
 * between one worker and the coordinator. Every chunk, in each direction, is held back a
 * seeded random delay (order kept per direction); "loss" is a connection reset (both sockets
 * destroyed, whatever is in flight dropped), and cut() unplugs the cable for good.
 */

/** Options of a LossyProxy; delays are in ms, drawn uniformly from [minDelayMs, maxDelayMs]. */
export interface LossyProxyOptions {
  /** Where the relay forwards to (the coordinator). */
  targetPort: number;
  targetHost?: string;
  /** Seed of every delay drawn by this relay. */
  seed: number;
  minDelayMs?: number;
  maxDelayMs?: number;
}

const DEFAULTS = { targetHost: '127.0.0.1', minDelayMs: 10, maxDelayMs: 40 };

interface Link {
  client: Socket;
  upstream: Socket;
}

/** A delaying, resettable TCP relay listening on 127.0.0.1 (an ephemeral port). */
export class LossyProxy {
  /** Connections accepted and relayed. */
  accepted = 0;
  /** Connections destroyed by reset() or cut(). */
  resets = 0;
  /** Connections refused after cut(). */
  refused = 0;
  private readonly links = new Set<Link>();
  private isCut = false;

  private constructor(
    private readonly server: Server,
    private readonly opts: Required<LossyProxyOptions>,
    /** The port to connect to. */
    readonly port: number,
  ) {}

  /** Start a relay to opts.targetPort; resolves once it listens. */
  static async start(options: LossyProxyOptions): Promise<LossyProxy> {
    const opts = { ...DEFAULTS, ...options };
    if (!(Number.isInteger(opts.targetPort) && opts.targetPort > 0 && opts.targetPort < 65536)) throw new Error(`targetPort: expected a TCP port 1..65535, got ${opts.targetPort}`);
    if (!(opts.minDelayMs >= 0 && opts.maxDelayMs >= opts.minDelayMs)) throw new Error(`delays: expected 0 <= minDelayMs <= maxDelayMs, got ${opts.minDelayMs}..${opts.maxDelayMs}`);
    let proxy: LossyProxy | undefined;
    const server = createServer({ allowHalfOpen: true }, (client) => proxy!.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('the relay has no TCP address');
    proxy = new LossyProxy(server, opts, addr.port);
    return proxy;
  }

  /** Connections currently relayed. */
  get open(): number {
    return this.links.size;
  }

  /** "Loss": destroy both sockets of every open connection (data in flight is dropped); returns how many. */
  reset(): number {
    const n = this.links.size;
    for (const l of [...this.links]) this.drop(l);
    this.resets += n;
    return n;
  }

  /** Cut the cable for good: drop every open connection and refuse new ones. */
  cut(): void {
    this.isCut = true;
    this.reset();
  }

  /** Stop listening and drop every connection. */
  async close(): Promise<void> {
    this.isCut = true;
    for (const l of [...this.links]) this.drop(l);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.isCut) {
      this.refused++;
      client.destroy();
      return;
    }
    const index = this.accepted++;
    const upstream = new Socket({ allowHalfOpen: true });
    const link: Link = { client, upstream };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      s.on('error', () => this.drop(link));
      s.on('close', () => this.drop(link));
    }
    this.pipe(client, upstream, new Rng(deriveSeed(this.opts.seed, index, 0)));
    this.pipe(upstream, client, new Rng(deriveSeed(this.opts.seed, index, 1)));
    upstream.connect(this.opts.targetPort, this.opts.targetHost);
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.destroy();
    link.upstream.destroy();
  }

  /** Relay from → to, each chunk delayed; a chunk never overtakes the one before it. */
  private pipe(from: Socket, to: Socket, rng: Rng): void {
    const { minDelayMs, maxDelayMs } = this.opts;
    const queue: { at: number; data: Buffer }[] = [];
    let lastAt = 0;
    let ended = false;
    const flush = () => {
      const now = Date.now();
      while (queue.length > 0 && queue[0].at <= now) {
        const { data } = queue.shift()!;
        if (!to.destroyed) to.write(data);
      }
      // a timer may fire a little before its due time: come back for what is not due yet
      if (queue.length > 0) setTimeout(flush, Math.max(1, Math.ceil(queue[0].at - now)));
      else if (ended && !to.destroyed) to.end();
    };
    from.on('data', (data: Buffer) => {
      const at = Math.max(lastAt, Date.now() + minDelayMs + rng.nextFloat() * (maxDelayMs - minDelayMs));
      lastAt = at;
      queue.push({ at, data });
      setTimeout(flush, Math.max(0, Math.ceil(at - Date.now())));
    });
    from.on('end', () => {
      ended = true;
      setTimeout(flush, Math.max(0, Math.ceil(lastAt - Date.now())));
    });
  }
}
