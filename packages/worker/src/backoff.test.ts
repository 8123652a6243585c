import { expect, test } from 'vitest';
import { Backoff, validateReconnect } from './backoff.js';

test('delays double up to maxMs, with jitter in [0.5, 1) of the base, then run out', () => {
  const b = new Backoff(validateReconnect({ initialMs: 100, maxMs: 1000, maxAttempts: 6, jitterSeed: 7 }));
  const bases = [100, 200, 400, 800, 1000, 1000];
  for (const base of bases) {
    const d = b.next()!;
    expect(d).toBeGreaterThanOrEqual(base * 0.5);
    expect(d).toBeLessThan(base);
  }
  expect(b.next()).toBeUndefined();
  expect(b.attempts).toBe(6);
  b.reset();
  expect(b.next()).toBeLessThan(100);
});

test('the same seed gives the same delays; another seed does not', () => {
  const run = (s: number) => {
    const b = new Backoff(validateReconnect({ maxAttempts: 8, jitterSeed: s }));
    return Array.from({ length: 8 }, () => b.next());
  };
  expect(run(3)).toEqual(run(3));
  expect(run(3)).not.toEqual(run(4));
});

test('bad options name the field', () => {
  expect(() => validateReconnect({ initialMs: -1 })).toThrow(/reconnect.initialMs/);
  expect(() => validateReconnect({ initialMs: 100, maxMs: 50 })).toThrow(/reconnect.maxMs.*>= initialMs/);
  expect(() => validateReconnect({ maxAttempts: 1.5 })).toThrow(/reconnect.maxAttempts/);
  expect(validateReconnect({}).maxAttempts).toBe(Infinity);
});
