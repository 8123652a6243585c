import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { scheduledLr, validateSchedule } from './schedule.js';

const at = (s: unknown, steps: number[], base = 0.1) => {
  const v = validateSchedule(s);
  return steps.map((k) => scheduledLr(base, v, k));
};

describe('scheduledLr', () => {
  it('constant (also when no schedule is given)', () => {
    expect(at({ type: 'constant' }, [0, 1, 1000])).toEqual([0.1, 0.1, 0.1]);
    expect(scheduledLr(0.3, undefined, 77)).toBe(0.3);
  });

  it('step: lr * gamma^floor(k / stepSize)', () => {
    expect(at({ type: 'step', stepSize: 3, gamma: 0.5 }, [0, 2, 3, 5, 6, 9], 1)).toEqual([1, 1, 0.5, 0.5, 0.25, 0.125]);
  });

  it('exponential: lr * gamma^k', () => {
    const [a, b, c] = at({ type: 'exponential', gamma: 0.9 }, [0, 1, 2]);
    expect(a).toBe(0.1);
    expect(b).toBeCloseTo(0.09, 15);
    expect(c).toBeCloseTo(0.081, 15);
  });

  it('cosine: from lr to minLr over totalSteps, then flat at minLr', () => {
    const [s0, s5, s10, s20] = at({ type: 'cosine', totalSteps: 10, minLr: 0.01 }, [0, 5, 10, 20]);
    expect(s0).toBe(0.1);
    expect(s5).toBeCloseTo(0.055, 15);
    expect(s10).toBeCloseTo(0.01, 15);
    expect(s20).toBeCloseTo(0.01, 15);
    const [q] = at({ type: 'cosine', totalSteps: 8 }, [2]);
    expect(q).toBeCloseTo(0.1 * (1 + Math.SQRT1_2) / 2, 15);
  });

  it('linear warm-up as PyTorch LinearLR(start_factor=1/W, total_iters=W), then the main schedule from k = 0', () => {
    // W = 4: factor(s) = 1/4 + (3/4) * s/4
    const w = at({ type: 'constant', warmupSteps: 4 }, [0, 1, 2, 3, 4, 10]);
    expect(w[0]).toBeCloseTo(0.025, 15);
    expect(w[1]).toBeCloseTo(0.1 * (0.25 + 0.75 * 0.25), 15);
    expect(w[3]).toBeCloseTo(0.1 * (0.25 + 0.75 * 0.75), 15);
    expect(w[4]).toBe(0.1);
    expect(w[5]).toBe(0.1);
    // step schedule counts its steps after the warm-up
    expect(at({ type: 'step', stepSize: 3, gamma: 0.5, warmupSteps: 2 }, [1, 2, 4, 5], 1)).toEqual([0.75, 1, 1, 0.5]);
    // cosine: totalSteps includes the warm-up; the cosine spans the remaining 10 steps
    const c = at({ type: 'cosine', totalSteps: 14, warmupSteps: 4, minLr: 0.01 }, [0, 4, 9, 14]);
    expect(c[0]).toBeCloseTo(0.025, 15);
    expect(c[1]).toBe(0.1);
    expect(c[2]).toBeCloseTo(0.055, 15);
    expect(c[3]).toBeCloseTo(0.01, 15);
  });

  it('rejects a bad step index', () => {
    expect(() => scheduledLr(0.1, { type: 'constant' }, -1)).toThrow(RangeError);
    expect(() => scheduledLr(0.1, { type: 'constant' }, 1.5)).toThrow(RangeError);
  });
});

describe('validateSchedule', () => {
  const field = (s: unknown, prefix?: string) => {
    try {
      validateSchedule(s, prefix);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).field;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the bad field', () => {
    expect(field({ type: 'linear' })).toBe('schedule.type');
    expect(field({ type: 'step', gamma: 0.5 })).toBe('schedule.stepSize');
    expect(field({ type: 'step', stepSize: 2, gamma: 1.5 })).toBe('schedule.gamma');
    expect(field({ type: 'exponential' })).toBe('schedule.gamma');
    expect(field({ type: 'cosine', totalSteps: 0 })).toBe('schedule.totalSteps');
    expect(field({ type: 'cosine', totalSteps: 5, warmupSteps: 5 })).toBe('schedule.totalSteps');
    expect(field({ type: 'cosine', totalSteps: 5, minLr: -1 })).toBe('schedule.minLr');
    expect(field({ type: 'constant', warmupSteps: 1.5 })).toBe('schedule.warmupSteps');
    expect(field({ type: 'constant', gamma: 0.5 })).toBe('schedule.gamma');
    expect(field('cosine')).toBe('schedule');
    expect(field({ type: 'exponential', gamma: 0 }, 'optimizer.schedule')).toBe('optimizer.schedule.gamma');
  });

  it('normalises: minLr default 0, warmupSteps only when > 0', () => {
    expect(validateSchedule({ type: 'cosine', totalSteps: 10, warmupSteps: 0 })).toEqual({ type: 'cosine', totalSteps: 10, minLr: 0 });
    expect(validateSchedule({ type: 'constant', warmupSteps: 3 })).toEqual({ type: 'constant', warmupSteps: 3 });
  });
});
