import { describe, expect, it } from 'vitest';
import type { Dataset } from './dataset.js';
import { subset } from './dataset.js';
import { fingerprint } from './fingerprint.js';
import { parseCsv } from './csv.js';
import { blobs } from './synthetic.js';

describe('fingerprint', () => {
  const ds = blobs(50, { seed: 1, dims: 3 });

  it('is a 64-hex digest, stable and independent of name and array backing', () => {
    const f = fingerprint(ds);
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(ds)).toBe(f);
    const copy: Dataset = { ...subset(ds, Array.from({ length: ds.n }, (_, i) => i)), name: 'other' };
    expect(fingerprint(copy)).toBe(f);
    // A view with a non-zero byteOffset hashes its own bytes only.
    const buf = new Float32Array(ds.x.length + 5);
    buf.set(ds.x, 5);
    expect(fingerprint({ ...ds, x: buf.subarray(5) })).toBe(f);
  });

  it('matches the same data loaded another way', () => {
    const text = 'a,b,c\n' + Array.from({ length: 4 }, (_, i) => `${i % 2},${i / 4},${-i}`).join('\n');
    const a = parseCsv(text);
    const b = parseCsv(text.split('\n').slice(1).join('\r\n'), { header: false });
    expect(fingerprint(a)).toBe(fingerprint(b));
  });

  it('changes when one value, the shape or a target changes', () => {
    const f = fingerprint(ds);
    const x = ds.x.slice();
    x[77] = Math.fround(x[77] + 1e-6);
    expect(fingerprint({ ...ds, x })).not.toBe(f);
    const y = ds.y.slice();
    y[3] = 1 - y[3];
    expect(fingerprint({ ...ds, y })).not.toBe(f);
    expect(fingerprint({ ...ds, inputSize: 1, x: ds.x.slice(0, 50 * 1), y: ds.y, n: 50 })).not.toBe(f);
  });

  it('is a SHA-256 of the documented bytes', () => {
    // n=1, inputSize=1, outputSize=1 as u32 LE, then x=[0], y=[0]: digest computed with sha256sum.
    const z: Dataset = { name: 'z', n: 1, inputSize: 1, outputSize: 1, x: new Float32Array(1), y: new Float32Array(1) };
    expect(fingerprint(z)).toBe('108c21a44c7835d31777de5ee957c99006ad2e06b622109b882270283bdd246d');
  });
});
