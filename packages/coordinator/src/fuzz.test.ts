import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DatasetSplit, type RunConfig, Rng, blobs, deriveSeed, splitDataset, train, validateRunConfig } from '@dptrain/core';
import { MESSAGE_TYPES, readFrame, writeFrame } from '@dptrain/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Coordinator } from './server.js';
import { FakeWorker, until, within } from './testing/fake-worker.js';

/**
 * 10 000 random and mutated frames (bit flips, truncations, splices, length-field
 * corruptions, type swaps, field swaps, random bytes, text) over a couple of thousand
 * connections, thrown at a live coordinator during a real run with two good workers whose
 * pace follows the fuzzer's, so the attack spans the whole run. The frames are mutations
 * of real traffic captured from a run on *other* data (so no fuzzer can pass the data
 * check and become a worker that gets leaves). The run must finish with the weights of a
 * clean run, every frame must be accounted for, and nothing may crash.
 */
const TOTAL = 10_000;
const LANES = 16;
const STEPS = 30;

const data: DatasetSplit = splitDataset(blobs(200, { seed: 3, centers: 3 }), { testCount: 40 });
const decoy: DatasetSplit = splitDataset(blobs(200, { seed: 99, centers: 3 }), { testCount: 40 });
const config: RunConfig = validateRunConfig({
  model: { inputSize: 2, layers: [{ units: 8, activation: 'relu', dropout: 0.1 }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
  data: 'blobs:200',
  optimizer: { name: 'adam', lr: 0.01 },
  batchSize: 32, // 4 leaves: two good workers leave two places for fuzzers to be welcomed
  leafSize: 8,
  steps: STEPS,
  seed: 5,
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function newDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'dptrain-fuzz-'));
  dirs.push(d);
  return d;
}

/** Real frames of a short run on the decoy data: what workers sent and what the coordinator sent them. */
async function capture(): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const c = new Coordinator({ config: { ...config, data: 'blobs:decoy', steps: 3 }, data: decoy, checkpointDir: await newDir(), minWorkers: 2, observer: false });
  try {
    const { url } = await c.start();
    const ws = ['a', 'b'].map((name) => new FakeWorker({ url, name, train: decoy.train, tap: (_dir, b) => frames.push(Uint8Array.from(b)) }));
    await within(c.done(), 10_000, 'capture run');
    await within(Promise.all(ws.map((w) => w.ended)), 5000, 'capture workers closed');
  } finally {
    await c.close();
  }
  return frames;
}

/** Seeded frame mutations. */
class Mutator {
  private readonly hellos: Uint8Array[];

  constructor(
    private readonly rng: Rng,
    private readonly corpus: Uint8Array[],
  ) {
    this.hellos = corpus.filter((f) => readFrame(f).header.type === 'hello');
  }

  /**
   * Frames for the next connection (1 to 3: a connection is closed at its first bad frame,
   * later ones are only counted); half of them start with a real hello, so that what
   * follows meets a welcomed session.
   */
  connection(left: number): Array<Uint8Array | string> {
    const out: Array<Uint8Array | string> = [];
    if (this.rng.nextInt(2) === 0) out.push(this.hellos[this.rng.nextInt(this.hellos.length)]);
    for (let n = 1 + this.rng.nextInt(3); n > 0; n--) out.push(this.next());
    return out.slice(0, left);
  }

  private pick(): Uint8Array {
    return this.corpus[this.rng.nextInt(this.corpus.length)];
  }

  next(): Uint8Array | string {
    const r = this.rng;
    const f = this.pick();
    switch (r.nextInt(11)) {
      case 0: // bit flips
      case 1: {
        const g = f.slice();
        for (let k = 1 + r.nextInt(8); k > 0; k--) g[r.nextInt(g.length)] ^= 1 << r.nextInt(8);
        return g;
      }
      case 2: // truncation
        return f.slice(0, r.nextInt(f.length));
      case 3: {
        // splice of two frames
        const g = this.pick();
        const i = r.nextInt(f.length + 1);
        const j = r.nextInt(g.length + 1);
        const out = new Uint8Array(i + g.length - j);
        out.set(f.subarray(0, i));
        out.set(g.subarray(j), i);
        return out;
      }
      case 4: {
        // a corrupted length field of the prefix (headerLen, payloadOffset, payloadLength)
        const g = f.slice();
        if (g.length < 12) return g;
        const dv = new DataView(g.buffer);
        const at = 4 * r.nextInt(3);
        const old = dv.getUint32(at, true);
        const values = [0, 1, 0xffffffff, 0x7fffffff, old + 1, old - 1, old + 4, old - 4, g.length, r.nextInt(1 << 30)];
        dv.setUint32(at, values[r.nextInt(values.length)] >>> 0, true);
        return g;
      }
      case 5:
      case 6: {
        // type swap or field swap, re-framed validly
        try {
          const { header, payload } = readFrame(f);
          const h = { ...header };
          if (r.nextInt(2) === 0) {
            const types = [...MESSAGE_TYPES, 'hello2', '', 'RESULT'];
            h.type = types[r.nextInt(types.length)];
          } else {
            const keys = Object.keys(h);
            const weird = [-1, 2 ** 53, 1.5, 'x', null, [], {}, true, Number.NaN, 'é'.repeat(3000), 2 ** 32];
            h[keys[r.nextInt(keys.length)]] = weird[r.nextInt(weird.length)];
          }
          return writeFrame(h, payload.length % 4 === 0 ? payload : undefined);
        } catch {
          return f.slice(0, Math.max(0, f.length - 1));
        }
      }
      case 7: // random bytes
        return Uint8Array.from({ length: r.nextInt(300) }, () => r.nextInt(256));
      case 8: // a text frame
        return r.nextInt(2) === 0 ? '{"type":"hello","v":1}' : String.fromCharCode(...Array.from({ length: r.nextInt(40) }, () => 32 + r.nextInt(90)));
      default: // a real frame, unchanged (valid, but out of order or from another run)
        return f;
    }
  }
}

describe('fuzzing a live coordinator', () => {
  it(`survives ${TOTAL} random and mutated frames during a run, counts them all, and ends with the clean run's weights`, async () => {
    const t0 = performance.now();
    const corpus = await capture();
    expect(corpus.length).toBeGreaterThan(10);

    const logs: string[] = [];
    const c = new Coordinator({ config, data, checkpointDir: await newDir(), minWorkers: 2, observer: false, log: (l) => logs.push(l) });
    let sent = 0;
    let connections = 0;
    const closeCodes = new Map<number, number>();
    try {
      const { url } = await c.start();
      // the good workers deliver each step's results only once the fuzzer is that far along
      const gate = (step: number) => until(() => sent >= Math.min(TOTAL, (step * TOTAL) / STEPS), 60_000, `fuzzer reached step ${step}`);
      const good = ['a', 'b'].map((name) => new FakeWorker({ url, name, train: data.train, onResult: async (r) => (await gate(r.step), r) }));

      // each lane has its own seeded mutator: its frames are the same on every run, only the interleaving varies
      const lane = async (i: number) => {
        const mutator = new Mutator(new Rng(deriveSeed(20240607, i)), corpus);
        let left = TOTAL / LANES;
        while (left > 0) {
          const frames = mutator.connection(left);
          left -= frames.length;
          connections++;
          const code = await new Promise<number>((resolve) => {
            const ws = new WebSocket(url);
            ws.on('open', () => {
              for (const f of frames) {
                ws.send(f, { binary: typeof f !== 'string' });
                sent++;
              }
              ws.close(1000);
            });
            ws.on('error', () => {});
            ws.on('close', (code: number) => resolve(code));
          });
          closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
        }
      };
      await within(Promise.all(Array.from({ length: LANES }, (_, i) => lane(i))), 25_000, 'fuzz lanes');
      const summary = await within(c.done(), 10_000, 'run finished');
      await within(Promise.all(good.map((w) => w.ended)), 5000, 'good workers closed');

      const ref = train({ spec: config.model, data, optimizer: config.optimizer, batchSize: 32, leafSize: 8, steps: STEPS, seed: 5, shuffle: true });
      expect(Array.from(summary.params)).toEqual(Array.from(ref.params));
      expect(summary.steps).toBe(STEPS);

      // every frame that was sent arrived and was either handled, refused (and counted) or ignored on a closing connection
      const goodSent = good.reduce((a, w) => a + w.framesSent, 0);
      await until(() => c.stats().framesIn === sent + goodSent, 5000, 'every frame received');
      const st = c.stats();
      const refused = Object.values(st.badFrames).reduce((a, b) => a + b, 0);
      expect(st.framesOk + refused + st.framesIgnored).toBe(st.framesIn);
      expect(sent).toBe(TOTAL);
      expect(refused).toBeGreaterThan(connections / 2);
      for (const code of ['E_DECODE', 'E_FIELD', 'E_TYPE', 'E_STATE']) expect(st.badFrames[code]).toBeGreaterThan(0);
      expect(st.framesOk).toBeGreaterThan(500); // many sessions got past their hello
      for (const code of ['E_TIMEOUT', 'E_CONNECTIONS', 'E_RATE']) expect(st.badFrames[code]).toBeUndefined();
      // the fuzzers were welcomed at most: nobody but the two good workers ever got a task or took part in a step
      expect(new Set(c.history.filter((e) => e.kind === 'step').map((e) => (e as { workers: number }).workers))).toEqual(new Set([2]));
      expect(c.history.some((e) => e.kind === 'reassigned')).toBe(false);
      expect(logs.some((l) => l.startsWith('internal error'))).toBe(false);
      // every connection was closed by someone, with a known code
      for (const code of closeCodes.keys()) expect([1000, 1005, 4000, 4001, 4002, 4004, 4005, 1009]).toContain(code);
      expect([...closeCodes.values()].reduce((a, b) => a + b, 0)).toBe(connections);
    } finally {
      await c.close();
    }
    expect(performance.now() - t0).toBeLessThan(30_000);
  }, 45_000);
});
