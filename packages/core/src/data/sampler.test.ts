import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';
import { EpochSampler } from './sampler.js';

const opts = { n: 23, batchSize: 5, seed: 7, shuffle: true };
const take = (s: EpochSampler, k: number) => Array.from({ length: k }, () => s.next());

describe('EpochSampler', () => {
  it('is deterministic for a seed and differs for another seed', () => {
    const a = take(new EpochSampler(opts), 12).map((b) => Array.from(b.indices));
    const b = take(new EpochSampler(opts), 12).map((b) => Array.from(b.indices));
    const c = take(new EpochSampler({ ...opts, seed: 8 }), 12).map((b) => Array.from(b.indices));
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it('hands out every index exactly once per epoch, in the documented order', () => {
    const s = new EpochSampler(opts);
    expect(s.batchesPerEpoch).toBe(5);
    for (let e = 0; e < 3; e++) {
      const batches = take(s, 5);
      expect(batches.map((b) => b.indices.length)).toEqual([5, 5, 5, 5, 3]);
      expect(batches.map((b) => b.batchInEpoch)).toEqual([0, 1, 2, 3, 4]);
      expect(batches.every((b) => b.epoch === e)).toBe(true);
      const all = batches.flatMap((b) => Array.from(b.indices));
      expect([...all].sort((p, q) => p - q)).toEqual(Array.from({ length: 23 }, (_, i) => i));
      const expected = new Rng(deriveSeed(7, e)).shuffle(Array.from({ length: 23 }, (_, i) => i));
      expect(all).toEqual(expected);
    }
  });

  it('without shuffle yields 0..n-1; dropLast drops the short batch', () => {
    const s = new EpochSampler({ ...opts, shuffle: false, dropLast: true });
    expect(s.batchesPerEpoch).toBe(4);
    const bs = take(s, 5);
    expect(Array.from(bs[0].indices)).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(bs[3].indices)).toEqual([15, 16, 17, 18, 19]);
    expect(bs[4]).toMatchObject({ epoch: 1, batchInEpoch: 0 });
    expect(Array.from(bs[4].indices)).toEqual([0, 1, 2, 3, 4]);
  });

  it('resumes from state() exactly like an uninterrupted sampler', () => {
    for (const o of [opts, { ...opts, dropLast: true }, { ...opts, batchSize: 23 }]) {
      const whole = take(new EpochSampler(o), 17);
      for (const cut of [1, 4, 5, 9]) {
        const s = new EpochSampler(o);
        take(s, cut);
        const state = JSON.parse(JSON.stringify(s.state()));
        const resumed = EpochSampler.fromState(o, state);
        expect(take(resumed, 17 - cut)).toEqual(whole.slice(cut));
      }
    }
  });

  it('validates options and state, naming the field', () => {
    expect(() => new EpochSampler({ ...opts, n: 0 })).toThrow(ConfigError);
    expect(() => new EpochSampler({ ...opts, batchSize: 1.5 })).toThrow(/batchSize/);
    expect(() => new EpochSampler({ ...opts, seed: -1 })).toThrow(/seed/);
    expect(() => new EpochSampler({ ...opts, shuffle: 'yes' as never })).toThrow(/shuffle/);
    expect(() => new EpochSampler({ ...opts, batchSize: 30, dropLast: true })).toThrow(/batchSize/);
    expect(() => EpochSampler.fromState(opts, { epoch: 0, cursor: 3 })).toThrow(/state\.cursor/);
    expect(() => EpochSampler.fromState(opts, { epoch: -1, cursor: 0 })).toThrow(/state\.epoch/);
    expect(() => EpochSampler.fromState({ ...opts, dropLast: true }, { epoch: 0, cursor: 20 })).toThrow(/state\.cursor/);
  });
});
