import { validateRunEvent } from '@dptrain/protocol';
import { describe, expect, it } from 'vitest';
import { syntheticRun } from './synthetic-run.js';

describe('syntheticRun', () => {
  it('produces valid protocol events, deterministically, with the incidents the dashboard shows', () => {
    const run = syntheticRun({ steps: 40, workers: 3, deathAt: 20 });
    run.forEach((e, seq) => expect(() => validateRunEvent({ ...e, seq, t: 1000 + seq })).not.toThrow());
    expect(syntheticRun({ steps: 40, workers: 3, deathAt: 20 })).toEqual(run);
    const kinds = new Set(run.map((e) => e.kind));
    for (const k of ['run_started', 'worker_joined', 'step', 'eval', 'workers', 'worker_dead', 'reassigned', 'straggler', 'checkpoint', 'error', 'run_finished']) expect(kinds, k).toContain(k);
    expect(run.filter((e) => e.kind === 'step').length).toBe(40);
    expect(run[run.length - 1].kind).toBe('run_finished');
  });
});
