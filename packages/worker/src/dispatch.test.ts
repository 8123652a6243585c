import { describe, expect, it } from 'vitest';
import { SerialDispatch } from './dispatch.js';

/** A promise and its resolver. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Let every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe('SerialDispatch', () => {
  it('handles a message at once, in the call, when nothing is queued or running', () => {
    const seen: string[] = [];
    const d = new SerialDispatch<string>((m) => {
      seen.push(m);
      return undefined;
    }, () => {});
    d.push('a');
    expect(seen).toEqual(['a']);
    d.push('b');
    expect(seen).toEqual(['a', 'b']);
    expect(d.busy).toBe(false);
  });

  it('queues what comes while an asynchronous handler runs, keeps the order, then goes back to handling at once', async () => {
    const seen: string[] = [];
    const loading = gate();
    const d = new SerialDispatch<string>((m) => {
      seen.push(`start ${m}`);
      if (m === 'welcome') return loading.promise.then(() => void seen.push('loaded'));
      return undefined;
    }, () => {});
    d.push('welcome');
    d.push('params');
    d.push('task');
    await settle();
    expect(seen).toEqual(['start welcome']);
    expect(d.busy).toBe(true);
    loading.open();
    await settle();
    expect(seen).toEqual(['start welcome', 'loaded', 'start params', 'start task']);
    expect(d.busy).toBe(false);
    d.push('next');
    expect(seen.at(-1)).toBe('start next');
  });

  it('gives what a handler throws or rejects with to onError, and handles the messages after it', async () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const d = new SerialDispatch<string>(
      (m) => {
        seen.push(m);
        if (m === 'throw') throw new Error('thrown');
        if (m === 'reject') return Promise.reject(new Error('rejected'));
        return undefined;
      },
      (e) => errors.push((e as Error).message),
    );
    d.push('throw');
    expect(errors).toEqual(['thrown']);
    d.push('reject');
    d.push('after');
    expect(seen).toEqual(['throw', 'reject']);
    await settle();
    expect(errors).toEqual(['thrown', 'rejected']);
    expect(seen).toEqual(['throw', 'reject', 'after']);
    expect(d.busy).toBe(false);
  });
});
