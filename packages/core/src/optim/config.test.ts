import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { OPTIMIZER_NAMES, optimizerSlotNames, validateOptimizerConfig } from './config.js';
import { createOptimizerState } from './state.js';

function fieldOf(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return { field: (e as ConfigError).field, message: (e as Error).message };
  }
  throw new Error('expected a ConfigError');
}

describe('validateOptimizerConfig', () => {
  it('fills the defaults of the hyperparameters that optimizer uses, and only those', () => {
    expect(validateOptimizerConfig({ name: 'adam', lr: 0.001 })).toEqual({
      name: 'adam', lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, l1: 0, schedule: { type: 'constant' },
    });
    expect(validateOptimizerConfig({ name: 'rmsprop', lr: 0.01 })).toEqual({
      name: 'rmsprop', lr: 0.01, rho: 0.9, eps: 1e-8, weightDecay: 0, l1: 0, schedule: { type: 'constant' },
    });
    expect(validateOptimizerConfig({ name: 'nesterov', lr: 0.1, momentum: 0.5, clipNorm: 1 })).toEqual({
      name: 'nesterov', lr: 0.1, momentum: 0.5, weightDecay: 0, l1: 0, clipNorm: 1, schedule: { type: 'constant' },
    });
    expect(validateOptimizerConfig({ name: 'sgd', lr: 1, schedule: { type: 'exponential', gamma: 0.5, warmupSteps: 2 } }).schedule).toEqual({
      type: 'exponential', gamma: 0.5, warmupSteps: 2,
    });
  });

  it('is idempotent (a normalised config validates to itself)', () => {
    for (const name of OPTIMIZER_NAMES) {
      const c = validateOptimizerConfig({ name, lr: 0.1 });
      expect(validateOptimizerConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    }
  });

  it('names the bad field and the allowed range', () => {
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: -1 }))).toEqual({
      field: 'optimizer.lr', message: 'optimizer.lr: expected a finite number > 0, got -1',
    });
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: Infinity })).field).toBe('optimizer.lr');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd' })).field).toBe('optimizer.lr');
    const b1 = fieldOf(() => validateOptimizerConfig({ name: 'adam', lr: 0.1, beta1: 1 }));
    expect(b1.field).toBe('optimizer.beta1');
    expect(b1.message).toContain('[0, 1)');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'adam', lr: 0.1, beta2: -0.1 })).field).toBe('optimizer.beta2');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'adam', lr: 0.1, eps: 0 })).field).toBe('optimizer.eps');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'rmsprop', lr: 0.1, rho: 1 })).field).toBe('optimizer.rho');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'momentum', lr: 0.1, momentum: '0.9' })).field).toBe('optimizer.momentum');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, weightDecay: -0.01 })).field).toBe('optimizer.weightDecay');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, l1: NaN })).field).toBe('optimizer.l1');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, clipNorm: 0 })).field).toBe('optimizer.clipNorm');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, schedule: { type: 'step', stepSize: 0, gamma: 0.5 } })).field).toBe('optimizer.schedule.stepSize');
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, schedule: { type: 'cosine', totalSteps: 10, minLr: 0.5 } })).field).toBe('optimizer.schedule.minLr');
    expect(fieldOf(() => validateOptimizerConfig(null)).field).toBe('optimizer');
  });

  it('rejects an unknown optimizer name, listing the allowed ones', () => {
    const e = fieldOf(() => validateOptimizerConfig({ name: 'adamax', lr: 0.1 }));
    expect(e.field).toBe('optimizer.name');
    for (const n of OPTIMIZER_NAMES) expect(e.message).toContain(n);
    expect(e.message).toContain('"adamax"');
  });

  it('rejects unknown keys and hyperparameters the optimizer does not use, naming the key', () => {
    expect(fieldOf(() => validateOptimizerConfig({ name: 'sgd', lr: 0.1, learningRate: 0.1 })).field).toBe('optimizer.learningRate');
    const e = fieldOf(() => validateOptimizerConfig({ name: 'adam', lr: 0.1, momentum: 0.9 }));
    expect(e.field).toBe('optimizer.momentum');
    expect(e.message).toContain('not used by adam');
  });
});

describe('createOptimizerState', () => {
  it('creates zeroed slots of the right size per optimizer', () => {
    const expected: Record<string, string[]> = { sgd: [], momentum: ['velocity'], nesterov: ['velocity'], adagrad: ['sum'], rmsprop: ['sq'], adam: ['m', 'v'], adamw: ['m', 'v'] };
    for (const name of OPTIMIZER_NAMES) {
      expect(optimizerSlotNames(name)).toEqual(expected[name]);
      const s = createOptimizerState({ name }, 5);
      expect(s.t).toBe(0);
      expect(Object.keys(s.slots)).toEqual(expected[name]);
      for (const a of Object.values(s.slots)) expect(a).toEqual(new Float32Array(5));
    }
    expect(() => createOptimizerState({ name: 'sgd' }, -1)).toThrow(ConfigError);
  });
});
