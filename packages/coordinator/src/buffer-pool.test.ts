import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.js';

describe('BufferPool', () => {
  it('reuses its own buffers, lets foreign ones go, and ignores a double give', () => {
    const pool = new BufferPool(5);
    const a = pool.take();
    const b = pool.take();
    expect(a.length).toBe(5);
    expect(a).not.toBe(b);
    expect(pool.allocated).toBe(2);
    pool.give(a);
    pool.give(a);
    pool.give(new Float32Array(5)); // e.g. a view into a received frame
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(a); // a was given twice but is handed out once
    expect(pool.allocated).toBe(3);
  });
});
