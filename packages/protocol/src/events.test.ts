import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.js';
import { EXAMPLE_MODEL } from './examples.js';
import { RUN_EVENT_KINDS, validateRunEvent, type RunEvent, type RunEventInit } from './events.js';

const phases = { computeMs: 5, waitMs: 1, reduceMs: 0.5, updateMs: 0.2, broadcastMs: 0.3, totalMs: 7 };
const worker = { workerId: 'w1', host: 'h', state: 'busy', leaves: 4, computeMs: 5, samplesPerSec: 1000, bytesIn: 10, bytesOut: 20, lastHeartbeat: 1 };
const inits: RunEventInit[] = [
  { kind: 'run_started', runId: 'r', config: { lr: 0.1 }, model: EXAMPLE_MODEL, paramCount: 23 },
  { kind: 'step', step: 1, epoch: 0, loss: 2.3, accuracy: 0.1, samples: 64, samplesPerSec: 9000, lr: 0.1, phases, workers: 2 },
  { kind: 'eval', step: 10, epoch: 1, loss: 0.5, accuracy: null },
  { kind: 'worker_joined', workerId: 'w1', host: 'h' },
  { kind: 'worker_left', workerId: 'w1', reason: 'bye' },
  { kind: 'worker_dead', workerId: 'w2', reason: 'heartbeat timeout' },
  { kind: 'reassigned', step: 3, from: 'w2', to: 'w1', leaves: [4, 8] },
  { kind: 'straggler', workerId: 'w1', step: 3, computeMs: 50, medianMs: 5 },
  { kind: 'workers', step: 3, list: [worker as never] },
  { kind: 'checkpoint', step: 100, path: 'ckpt/100.safetensors', bytes: 4096 },
  { kind: 'error', code: 'E_WORKER', message: 'oops' },
  { kind: 'run_finished', step: 100, testAccuracy: 0.97 },
];
const events = inits.map((e, seq) => ({ ...e, seq, t: 1000 + seq }) as RunEvent);

function fieldOf(x: unknown): string {
  try {
    validateRunEvent(x);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return `${(e as ProtocolError).code} ${(e as ProtocolError).message}`;
  }
  return 'ok';
}

describe('validateRunEvent', () => {
  it('accepts one event of every kind after a JSON round trip', () => {
    expect(new Set(events.map((e) => e.kind))).toEqual(new Set(RUN_EVENT_KINDS));
    for (const e of events) expect(validateRunEvent(JSON.parse(JSON.stringify(e)))).toEqual(e);
  });

  it('a NaN loss becomes null in JSON and is still accepted', () => {
    const parsed = JSON.parse(JSON.stringify({ ...events[1], loss: NaN }));
    expect(validateRunEvent(parsed)).toMatchObject({ loss: null });
  });

  it('rejects unknown kinds with E_TYPE and bad fields with E_FIELD naming them', () => {
    expect(fieldOf({ ...events[0], kind: 'teleport' })).toMatch(/^E_TYPE/);
    expect(fieldOf({ ...events[0], seq: -1 })).toMatch(/^E_FIELD event\.seq/);
    expect(fieldOf({ ...events[0], t: 'now' })).toMatch(/^E_FIELD event\.t/);
    expect(fieldOf({ ...events[1], samples: undefined })).toMatch(/^E_FIELD step\.samples/);
    expect(fieldOf({ ...events[1], phases: { ...phases, totalMs: undefined } })).toMatch(/^E_FIELD step\.phases\.totalMs/);
    expect(fieldOf({ ...events[6], leaves: [8, 4] })).toMatch(/^E_FIELD reassigned\.leaves/);
    expect(fieldOf({ ...events[8], list: [{ ...worker, state: 'asleep' }] })).toMatch(/^E_FIELD workers\.list\[0\]\.state/);
    expect(fieldOf({ ...events[8], list: [{ ...worker, bytesIn: '5' }] })).toMatch(/^E_FIELD workers\.list\[0\]\.bytesIn/);
    expect(fieldOf({ ...events[8], list: [{ ...worker, transport: 'pigeon' }] })).toMatch(/^E_FIELD workers\.list\[0\]\.transport: expected shm or socket/);
    for (const transport of ['shm', 'socket']) expect(fieldOf({ ...events[8], list: [{ ...worker, transport }] })).toBe('ok');
    expect(fieldOf({ ...events[10], workerId: 5 })).toMatch(/^E_FIELD error\.workerId/);
    expect(fieldOf({ ...events[11], testLoss: 'low' })).toMatch(/^E_FIELD run_finished\.testLoss/);
    expect(fieldOf(null)).toMatch(/^E_FIELD event/);
  });
});
