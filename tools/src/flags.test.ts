import { ConfigError, validateRunConfig, parseModelShorthand } from '@dptrain/core';
import { expect, test } from 'vitest';
import { parseConfigObject } from './config-file.js';
import { flagOf, intFlag, numFlag, renameConfigError, settingOf } from './flags.js';

const bad = (over: Record<string, unknown>): ConfigError => {
  try {
    validateRunConfig({ model: parseModelShorthand('2-4-2'), optimizer: { name: 'adam', lr: 0.001 }, ...over });
  } catch (e) {
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

test('setting keys map to flags and core fields to setting keys', () => {
  expect(flagOf('batchSize')).toBe('--batch-size');
  expect(flagOf('weightDecay')).toBe('--weight-decay');
  expect(flagOf('shuffle')).toBe('--no-shuffle');
  expect(flagOf('stepTimeout')).toBe('--step-timeout');
  expect(flagOf('checkpointEverySec')).toBe('--checkpoint-every-sec');
  expect(flagOf('dashboard')).toBe('--no-dashboard');
  expect(settingOf('optimizer.lr')).toBe('lr');
  expect(settingOf('optimizer.beta1')).toBe('optimizer');
  expect(settingOf('model.layers[0].units')).toBe('model');
});

test('a core ConfigError is renamed after the flag that set the value, keeping the range', () => {
  const e = renameConfigError(bad({ batchSize: 0 }), new Set(['batchSize']), new Set());
  expect(e.field).toBe('--batch-size');
  expect(e.message).toBe('--batch-size: expected an integer in [1, 1048576], got 0');
  const lr = renameConfigError(bad({ optimizer: { name: 'adam', lr: -1 } }), new Set(['lr']), new Set());
  expect(lr.message).toMatch(/^--lr: expected a finite number > 0, got -1$/);
});

test('a bad value from the config file names the file and the key', () => {
  const e = renameConfigError(bad({ leafSize: 64, batchSize: 32 }), new Set(), new Set(['leafSize']), 'run.json');
  expect(e.message).toBe('run.json: leafSize: must be at most batchSize (32), got 64');
});

test('flag values that are not numbers are refused naming the flag', () => {
  expect(() => numFlag('--lr', 'fast')).toThrow('--lr: expected a number, got "fast"');
  expect(() => intFlag('--epochs', '2.5')).toThrow('--epochs: expected an integer, got "2.5"');
  expect(numFlag('--lr', '1e-3')).toBe(0.001);
});

test('config file: unknown keys and wrong types are errors naming the key', () => {
  expect(() => parseConfigObject({ batchsize: 3 }, 'c.json')).toThrow(/c\.json: unknown key\(s\) "batchsize"; allowed: model, data/);
  expect(() => parseConfigObject({ epochs: 1.5 }, 'c.json')).toThrow(/c\.json: epochs: .*int/);
  expect(() => parseConfigObject({ optimizer: 'adamax' }, 'c.json')).toThrow(/c\.json: optimizer: expected one of sgd, .*adamw or an optimizer config object/);
  expect(() => parseConfigObject([], 'c.json')).toThrow(/c\.json/);
  expect(parseConfigObject({ model: '2-8-2', optimizer: { name: 'adam', lr: 0.01, beta1: 0.8 }, shuffle: false })).toEqual({
    model: '2-8-2',
    optimizer: { name: 'adam', lr: 0.01, beta1: 0.8 },
    shuffle: false,
  });
});
