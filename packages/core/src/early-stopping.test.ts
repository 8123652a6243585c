import { describe, expect, it } from 'vitest';
import { EarlyStopping } from './early-stopping.js';
import { ConfigError } from './errors.js';

const p = (...v: number[]) => Float32Array.from(v);

describe('EarlyStopping', () => {
  it('loss: stops after `patience` evaluations without improvement', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 2 });
    expect(es.options.mode).toBe('min');
    expect(es.best).toBeUndefined();
    expect(es.bestStep).toBe(-1);
    const stops = [1.0, 0.9, 0.95, 0.92].map((v) => es.update(v, p(v)));
    expect(stops).toEqual([false, false, false, true]);
    expect(es.best).toBe(0.9);
    expect(es.bestStep).toBe(1);
  });

  it('an improvement resets the wait', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 2 });
    const stops = [1.0, 1.1, 0.8, 0.9, 0.85].map((v) => es.update(v, p(v)));
    expect(stops).toEqual([false, false, false, false, true]);
    expect(es.bestStep).toBe(2);
  });

  it('minDelta: an improvement must beat the best by more than minDelta', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 5, minDelta: 0.05 });
    es.update(1.0, p(1));
    es.update(0.96, p(2));
    expect(es.best).toBe(1.0);
    expect(es.wait).toBe(1);
    es.update(0.94, p(3));
    expect(es.best).toBe(0.94);
    expect(es.bestStep).toBe(2);
    expect(es.wait).toBe(0);
  });

  it('accuracy: higher is better (mode max)', () => {
    const es = new EarlyStopping({ monitor: 'accuracy', patience: 1, minDelta: 0 });
    expect(es.options.mode).toBe('max');
    expect([0.5, 0.6, 0.6].map((v) => es.update(v, p(v)))).toEqual([false, false, true]);
    expect(es.best).toBe(0.6);
    expect(es.bestStep).toBe(1);
  });

  it('patience 0 stops at the first evaluation without improvement; NaN never improves', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 0 });
    expect(es.update(1, p(0))).toBe(false);
    expect(es.update(NaN, p(0))).toBe(true);
    const first = new EarlyStopping({ monitor: 'loss', patience: 2 });
    first.update(NaN, p(0));
    expect(first.best).toBeUndefined();
    first.update(3, p(0));
    expect(first.best).toBe(3);
  });

  it('restoreBest keeps a copy of the parameters at the best value', () => {
    const es = new EarlyStopping({ monitor: 'loss', patience: 3, restoreBest: true });
    const params = p(1, 2, 3);
    es.update(0.5, params);
    params.set([4, 5, 6]);
    es.update(0.4, params);
    params.set([7, 8, 9]);
    es.update(0.45, params);
    expect(es.bestParams()).toEqual(p(4, 5, 6));
    const copy = es.bestParams()!;
    copy[0] = 100;
    expect(es.bestParams()).toEqual(p(4, 5, 6));
    expect(() => es.update(0.3, p(1, 2))).toThrow(/parameters/);
    const off = new EarlyStopping({ monitor: 'loss', restoreBest: false });
    off.update(0.5, params);
    expect(off.bestParams()).toBeUndefined();
  });

  it('state() / fromState() resume the same decisions', () => {
    const opts = { monitor: 'loss', patience: 2 } as const;
    const a = new EarlyStopping(opts);
    [1, 0.8, 0.9].forEach((v) => a.update(v, p(v)));
    const b = EarlyStopping.fromState(opts, JSON.parse(JSON.stringify(a.state())), a.bestParams());
    expect(b.state()).toEqual({ best: 0.8, bestStep: 1, wait: 1, updates: 3 });
    expect(b.update(0.85, p(0))).toBe(true);
    expect(a.update(0.85, p(0))).toBe(true);
    expect(b.bestParams()).toEqual(p(0.8));
  });

  it('validates its options, naming the field', () => {
    const field = (o: unknown) => {
      try {
        new EarlyStopping(o as never);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).field;
      }
      return 'no error';
    };
    expect(field({ monitor: 'f1' })).toBe('earlyStopping.monitor');
    expect(field({ monitor: 'loss', patience: -1 })).toBe('earlyStopping.patience');
    expect(field({ monitor: 'loss', patience: 1.5 })).toBe('earlyStopping.patience');
    expect(field({ monitor: 'loss', minDelta: -0.1 })).toBe('earlyStopping.minDelta');
    expect(field({ monitor: 'loss', restoreBest: 'yes' })).toBe('earlyStopping.restoreBest');
    expect(field({ monitor: 'loss', mode: 'max' })).toBe('earlyStopping.mode');
    expect(new EarlyStopping({ monitor: 'loss' }).options).toEqual({ monitor: 'loss', mode: 'min', patience: 3, minDelta: 0, restoreBest: true });
  });
});
