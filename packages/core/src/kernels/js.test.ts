import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.js';
import { ShapeError } from '../errors.js';
import { jsKernels } from './js.js';
import { referenceKernels } from './reference.js';

type Op = 'gemmABt' | 'gemmAtB' | 'gemmAB';

function randn(rng: Rng, len: number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = rng.nextNormal();
  return out;
}

/** Operand lengths of each op, in (a, b, c) order. */
function sizes(op: Op, m: number, n: number, k: number): [number, number, number] {
  if (op === 'gemmABt') return [m * k, n * k, m * n];
  if (op === 'gemmAtB') return [m * n, m * k, n * k];
  return [m * n, n * k, m * k];
}

/** Run op with both kernels on the same random operands (views at an offset) and return both outputs. */
function both(op: Op, m: number, n: number, k: number, seed: number, withBias = false): [Float32Array, Float32Array] {
  const rng = new Rng(seed);
  const [la, lb, lc] = sizes(op, m, n, k);
  // Views into larger buffers, as the engine passes them.
  const a = randn(rng, la + 5).subarray(3, 3 + la);
  const b = randn(rng, lb + 7).subarray(1, 1 + lb);
  const bias = withBias ? randn(rng, n) : undefined;
  const want = new Float32Array(lc);
  const got = new Float32Array(lc + 2).fill(Number.NaN).subarray(1, 1 + lc);
  referenceKernels[op](m, n, k, a, b, want, bias);
  jsKernels[op](m, n, k, a, b, got, bias);
  return [got, want];
}

const ops: Op[] = ['gemmABt', 'gemmAtB', 'gemmAB'];
const small = [1, 2, 3, 4, 5, 7, 8, 13, 31];

describe('jsKernels', () => {
  it('is named js and allocates zeroed Float32Arrays', () => {
    expect(jsKernels.name).toBe('js');
    const buf = jsKernels.alloc(17);
    expect(buf).toBeInstanceOf(Float32Array);
    expect(buf.length).toBe(17);
    expect(buf.every((v) => v === 0)).toBe(true);
  });

  for (const op of ops) {
    it(`${op} is bit-identical to the reference on odd, prime and edge sizes`, () => {
      let seed = 1;
      for (const m of small) {
        for (const n of small) {
          for (const k of [1, 3, 7, 13, 97]) {
            const [got, want] = both(op, m, n, k, seed++, op === 'gemmABt' && seed % 2 === 0);
            expect(got, `${op} m=${m} n=${n} k=${k}`).toEqual(want);
          }
        }
      }
    });
  }

  it('gemmABt matches the reference bit for bit on the forward shapes of W, with and without bias', () => {
    for (const [m, n, k] of [[128, 256, 784], [128, 128, 256], [128, 10, 128], [32, 10, 128], [1, 256, 784]]) {
      for (const withBias of [true, false]) {
        const [got, want] = both('gemmABt', m, n, k, m * n + k, withBias);
        expect(got, `m=${m} n=${n} k=${k} bias=${withBias}`).toEqual(want);
      }
    }
  });

  it('gemmAtB matches the reference bit for bit on the weight-gradient shapes of W', () => {
    for (const [m, n, k] of [[128, 256, 784], [128, 10, 128], [32, 128, 256], [32, 10, 128], [1, 10, 128]]) {
      const [got, want] = both('gemmAtB', m, n, k, m + n * k);
      expect(got, `m=${m} n=${n} k=${k}`).toEqual(want);
    }
  });

  it('gemmAB matches the reference bit for bit on the input-gradient shapes of W', () => {
    for (const [m, n, k] of [[128, 128, 256], [128, 10, 128], [32, 128, 256], [32, 10, 128], [1, 10, 128]]) {
      const [got, want] = both('gemmAB', m, n, k, m * k + n);
      expect(got, `m=${m} n=${n} k=${k}`).toEqual(want);
    }
  });

  it('handles empty dimensions like the reference (k = 0 gives bias or zeros; m = 0 or n = 0 write nothing)', () => {
    for (const op of ops) {
      for (const [m, n, k] of [[3, 5, 0], [0, 5, 3], [3, 0, 5]]) {
        const [got, want] = both(op, m, n, k, 5, op === 'gemmABt');
        expect(got, `${op} m=${m} n=${n} k=${k}`).toEqual(want);
      }
    }
  });

  it('keeps float64 partial sums: a cancellation float32 accumulation would lose is preserved', () => {
    // 1 + 2^-30 - 1 in float64 is 2^-30; in float32 partial sums it would be 0.
    const a = new Float32Array([1, 2 ** -30, -1]);
    const b = new Float32Array([1, 1, 1]);
    const c = new Float32Array(1);
    jsKernels.gemmABt(1, 1, 3, a, b, c);
    expect(c[0]).toBe(2 ** -30);
  });

  it('rejects operands that are too short and bad dimensions with a ShapeError', () => {
    const x = new Float32Array(6);
    expect(() => jsKernels.gemmABt(2, 3, 4, x, x, x)).toThrow(ShapeError);
    expect(() => jsKernels.gemmABt(2, 3, 4, x, x, x)).toThrow(/a has 6 elements, expected at least m\*k/);
    expect(() => jsKernels.gemmAB(1, 2, 3, x, x, new Float32Array(2))).toThrow(/c has 2 elements/);
    expect(() => jsKernels.gemmAtB(-1, 2, 3, x, x, x)).toThrow(/m must be a non-negative integer/);
    expect(() => jsKernels.gemmABt(1, 3, 2, x, x, x, new Float32Array(2))).toThrow(/bias has 2 elements/);
  });
});
