import { describe, expect, it } from 'vitest';
import { fingerprint } from './fingerprint.js';
import { blobs, spirals, xorDataset } from './synthetic.js';

describe('synthetic datasets', () => {
  it('xor has the four points and binary targets', () => {
    const ds = xorDataset();
    expect(ds).toMatchObject({ name: 'xor', n: 4, inputSize: 2, outputSize: 1, classes: 2 });
    for (let i = 0; i < 4; i++) expect(ds.y[i]).toBe(ds.x[2 * i] !== ds.x[2 * i + 1] ? 1 : 0);
    expect(Array.from(ds.labels!)).toEqual(Array.from(ds.y));
  });

  it('spirals: shape, alternating classes, determinism by seed', () => {
    const ds = spirals(101, { seed: 4 });
    expect(ds).toMatchObject({ n: 101, inputSize: 2, outputSize: 2, classes: 2 });
    expect(ds.labels![0]).toBe(0);
    expect(ds.labels![1]).toBe(1);
    expect(ds.y[2]).toBe(0);
    expect(ds.y[3]).toBe(1);
    expect(fingerprint(spirals(101, { seed: 4 }))).toBe(fingerprint(ds));
    expect(fingerprint(spirals(101, { seed: 5 }))).not.toBe(fingerprint(ds));
    // Noise-free points lie on the documented arms: radius t, angle 3πt + πc.
    const clean = spirals(10, { seed: 0, noise: 0 });
    const t = 2.5 / 5;
    expect(clean.x[2 * 5]).toBeCloseTo(t * Math.cos(3 * Math.PI * t + Math.PI), 6);
    expect(clean.x[2 * 5 + 1]).toBeCloseTo(t * Math.sin(3 * Math.PI * t + Math.PI), 6);
    expect(() => spirals(10, { seed: 0, classes: 3 as never })).toThrow(/classes/);
    expect(() => spirals(1, { seed: 0 })).toThrow(/^n: /);
  });

  it('blobs: shape, clusters near distinct centres, determinism by seed', () => {
    const ds = blobs(300, { seed: 9, centers: 3, dims: 4, spread: 0.01 });
    expect(ds).toMatchObject({ n: 300, inputSize: 4, outputSize: 3, classes: 3 });
    expect(Array.from(ds.labels!.subarray(0, 4))).toEqual([0, 1, 2, 0]);
    // With a tiny spread, samples of one class are close together.
    expect(Math.abs(ds.x[0] - ds.x[3 * 4])).toBeLessThan(0.1);
    expect(fingerprint(blobs(300, { seed: 9, centers: 3, dims: 4, spread: 0.01 }))).toBe(fingerprint(ds));
    expect(fingerprint(blobs(300, { seed: 10, centers: 3, dims: 4, spread: 0.01 }))).not.toBe(fingerprint(ds));
    expect(() => blobs(10, { seed: 0, centers: 1 })).toThrow(/centers/);
    expect(() => blobs(10, { seed: 0, spread: -1 })).toThrow(/spread/);
    expect(() => blobs(10, { seed: 1.5 })).toThrow(/seed/);
  });
});
