import type { RunEventInit, WorkerInfo } from '@dptrain/protocol';

/** Options of syntheticRun. */
export interface SyntheticRunOptions {
  steps?: number;
  workers?: number;
  /** Step at which the last worker dies (its leaves are reassigned); 0: nobody dies. */
  deathAt?: number;
  evalEvery?: number;
  /** End with run_finished and a final checkpoint. */
  finish?: boolean;
  /** Wall clock (ms) of the first step, for the workers' lastHeartbeat (20 ms per step). */
  clock?: number;
}

/**
 * A deterministic, plausible-looking run event sequence (no training behind it) for tests
 * and demos of the dashboard and metrics: run_started, joins, steps with decaying loss,
 * worker lists, evaluations, a straggler, a worker death with reassignment, an error,
 * checkpoints and run_finished.
 */
export function syntheticRun(options: SyntheticRunOptions = {}): RunEventInit[] {
  const o = { steps: 60, workers: 3, deathAt: 30, evalEvery: 10, finish: true, clock: 1_700_000_000_000, ...options };
  const batchSize = 128;
  const leafSize = 16;
  const leafCount = batchSize / leafSize;
  const ids = Array.from({ length: o.workers }, (_, i) => `w${i + 1}`);
  const out: RunEventInit[] = [];
  out.push({
    kind: 'run_started',
    runId: 'synthetic-0001',
    config: { data: 'spirals:2000', batchSize, leafSize, epochs: 4, steps: o.steps, seed: 7, shuffle: true, kernel: 'js', evalEvery: o.evalEvery, optimizer: { name: 'adam', lr: 0.01 } },
    model: { inputSize: 2, layers: [{ units: 32, activation: 'relu' }, { units: 32, activation: 'relu' }, { units: 3, activation: 'softmax' }], loss: 'softmax_cross_entropy' },
    paramCount: 2 * 32 + 32 + 32 * 32 + 32 + 32 * 3 + 3,
  });
  for (const [i, id] of ids.entries()) out.push({ kind: 'worker_joined', workerId: id, host: `node-${i + 1}.local` });
  const alive = new Set(ids);
  const bytes = new Map(ids.map((id) => [id, { in: 0, out: 0, hb: o.clock }]));
  for (let step = 1; step <= o.steps; step++) {
    const epoch = Math.floor(((step - 1) * batchSize) / 2000);
    const live = ids.filter((id) => alive.has(id));
    const loss = 1.1 * Math.exp(-step / 25) + 0.08 + 0.03 * Math.sin(step * 1.7);
    const accuracy = Math.min(0.99, 0.34 + 0.6 * (1 - Math.exp(-step / 20)) + 0.02 * Math.cos(step * 2.3));
    const computeMs = 12 + 2 * Math.sin(step);
    const slow = step % 17 === 0 ? live[live.length - 1] : undefined;
    const phases = { computeMs: slow ? computeMs * 3 : computeMs, waitMs: 1.5 + (slow ? 20 : 0), reduceMs: 0.6, updateMs: 0.9, broadcastMs: 1.2, totalMs: 0 };
    phases.totalMs = phases.computeMs + phases.waitMs + phases.reduceMs + phases.updateMs + phases.broadcastMs;
    if (o.deathAt > 0 && step === o.deathAt && live.length > 1) {
      const victim = live[live.length - 1];
      alive.delete(victim);
      out.push({ kind: 'worker_dead', workerId: victim, reason: 'heartbeat timeout (5000 ms)' });
      const per = Math.floor(leafCount / live.length);
      out.push({ kind: 'reassigned', step, from: victim, to: live[0], leaves: [leafCount - per, leafCount] });
      out.push({ kind: 'error', code: 'E_WORKER_LOST', message: `worker ${victim} stopped answering`, workerId: victim });
    }
    if (slow) out.push({ kind: 'straggler', workerId: slow, step, computeMs: computeMs * 3, medianMs: computeMs });
    out.push({ kind: 'step', step, epoch, loss, accuracy, samples: batchSize, samplesPerSec: (batchSize / phases.totalMs) * 1000, lr: 0.01, phases, workers: live.length });
    const list: WorkerInfo[] = ids.map((id, i) => {
      const b = bytes.get(id)!;
      const on = alive.has(id);
      if (on) {
        b.in += 4000 + 10 * i;
        b.out += 5000;
        b.hb = o.clock + step * 20;
      }
      return {
        workerId: id,
        host: `node-${i + 1}.local`,
        state: on ? 'busy' : 'dead',
        leaves: on ? leafCount / alive.size : 0,
        computeMs: on ? (id === slow ? computeMs * 3 : computeMs + i) : 0,
        samplesPerSec: on ? (batchSize / alive.size / (computeMs + i)) * 1000 : 0,
        bytesIn: b.in,
        bytesOut: b.out,
        lastHeartbeat: b.hb,
        // the first worker shares the coordinator's host (shared memory), the others do not
        transport: i === 0 ? ('shm' as const) : ('socket' as const),
      };
    });
    out.push({ kind: 'workers', step, list });
    if (step % o.evalEvery === 0 || step === o.steps) {
      out.push({ kind: 'eval', step, epoch, loss: loss * 1.12, accuracy: accuracy * 0.97 });
    }
    if (step % 25 === 0) out.push({ kind: 'checkpoint', step, path: `runs/synthetic/step-${step}.safetensors`, bytes: 4652 });
  }
  if (o.finish) {
    out.push({ kind: 'checkpoint', step: o.steps, path: 'runs/synthetic/final.safetensors', bytes: 4652 });
    out.push({ kind: 'run_finished', step: o.steps, checkpoint: 'runs/synthetic/final.safetensors', testLoss: 0.2, testAccuracy: 0.93 });
  }
  return out;
}
