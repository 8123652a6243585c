import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../rng.js';
import { ConfigError, DptrainError } from '../../errors.js';
import type { Kernels } from '../types.js';
import { referenceKernels } from '../reference.js';
import { createWasmKernels, wasmFmaSupported, wasmSupported } from './wasm.js';
import { decodeBase64 } from './base64.js';
import { GEMM_FMA_WASM_BASE64, GEMM_WASM_BASE64 } from './gemm.wasm.js';
import { expectedModule, fmaSource, outPath, watPath } from '../../../scripts/build-wasm.mjs';

type Op = 'gemmABt' | 'gemmAtB' | 'gemmAB';
const ops: Op[] = ['gemmABt', 'gemmAtB', 'gemmAB'];

function fill(rng: Rng, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = rng.nextNormal();
  return out;
}

/** Operand lengths (a, b, c) and the shared length of each op. */
function dims(op: Op, m: number, n: number, k: number): { la: number; lb: number; lc: number; shared: number } {
  if (op === 'gemmABt') return { la: m * k, lb: n * k, lc: m * n, shared: k };
  if (op === 'gemmAtB') return { la: m * n, lb: m * k, lc: n * k, shared: m };
  return { la: m * n, lb: n * k, lc: m * k, shared: n };
}

/** Σ|a·b| over the shared index for every output element: the scale of its rounding error. */
function absProduct(op: Op, m: number, n: number, k: number, a: Float32Array, b: Float32Array): Float64Array {
  const abs = (x: Float32Array) => Float32Array.from(x, Math.abs);
  const out = new Float32Array(dims(op, m, n, k).lc);
  referenceKernels[op](m, n, k, abs(a), abs(b), out);
  return Float64Array.from(out);
}

/**
 * Run op on wasm (operands alloc'd in its memory) and on the reference; assert every
 * element is within the worst-case float32 summation bound (shared+2)·2⁻²⁴·(Σ|a·b| + |bias|).
 */
function expectClose(K: Kernels, op: Op, m: number, n: number, k: number, seed: number, withBias: boolean): void {
  const rng = new Rng(seed);
  const { la, lb, lc, shared } = dims(op, m, n, k);
  const a = fill(rng, K.alloc(la));
  const b = fill(rng, K.alloc(lb));
  const bias = withBias ? fill(rng, K.alloc(n)) : undefined;
  const got = K.alloc(lc).fill(Number.NaN);
  const want = new Float32Array(lc);
  K[op](m, n, k, a, b, got, bias);
  referenceKernels[op](m, n, k, a, b, want, bias);
  const scale = absProduct(op, m, n, k, a, b);
  const cols = op === 'gemmABt' ? n : k;
  for (let e = 0; e < lc; e++) {
    const tol = (shared + 2) * 2 ** -24 * (scale[e] + (bias ? Math.abs(bias[e % cols]) : 0)) + 1e-30;
    if (!(Math.abs(got[e] - want[e]) <= tol)) {
      expect.fail(`${op} m=${m} n=${n} k=${k} element ${e}: wasm ${got[e]} vs reference ${want[e]} (tol ${tol})`);
    }
  }
}

describe.runIf(wasmSupported())('wasm kernels', () => {
  const K = createWasmKernels({ memoryMiB: 32 });

  it('the committed gemm.wasm.ts equals a fresh assembly of gemm.wat', async () => {
    expect(readFileSync(outPath, 'utf8')).toBe(await expectedModule());
    const bytes = decodeBase64(GEMM_WASM_BASE64);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
  });

  for (const op of ops) {
    it(`${op} matches the reference within float32 tolerance on odd, prime and edge sizes`, () => {
      let seed = 100;
      for (const m of [1, 2, 3, 4, 5, 7, 8, 9, 13, 31]) {
        for (const n of [1, 3, 4, 5, 7, 8, 9, 13, 17]) {
          for (const k of [1, 3, 7, 8, 13, 97]) expectClose(K, op, m, n, k, seed++, op === 'gemmABt' && seed % 2 === 0);
        }
      }
    });
  }

  it('handles empty dimensions (k = 0 gives bias or zeros; m = 0 or n = 0 write nothing)', () => {
    for (const op of ops) {
      for (const [m, n, k] of [[3, 5, 0], [0, 5, 3], [3, 0, 5]]) expectClose(K, op, m, n, k, 9, op === 'gemmABt');
    }
    const c = K.alloc(6).fill(7);
    K.gemmABt(2, 3, 0, K.alloc(0), K.alloc(0), c);
    expect(Array.from(c)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('matches the reference within tolerance on the shapes of W (forward, weight and input gradients, leaf 32)', () => {
    const shapes = [[128, 256, 784], [128, 128, 256], [128, 10, 128], [32, 256, 784], [32, 10, 128]];
    for (const [m, n, k] of shapes) {
      expectClose(K, 'gemmABt', m, n, k, m + n + k, true);
      expectClose(K, 'gemmAtB', m, n, k, m * n + k, false);
      expectClose(K, 'gemmAB', m, n, k, m + n * k, false);
    }
  });

  it('computes each row bit-identically alone and in a batch of 64', () => {
    const rng = new Rng(7);
    const [n, k] = [13, 37];
    const x = fill(rng, K.alloc(64 * k));
    const w = fill(rng, K.alloc(n * k));
    const bias = fill(rng, K.alloc(n));
    const dz = fill(rng, K.alloc(64 * n));
    const wt = fill(rng, K.alloc(n * k));
    const batchZ = K.alloc(64 * n);
    const batchDx = K.alloc(64 * k);
    K.gemmABt(64, n, k, x, w, batchZ, bias);
    K.gemmAB(64, n, k, dz, wt, batchDx);
    const oneZ = K.alloc(n);
    const oneDx = K.alloc(k);
    for (const i of [0, 1, 30, 37, 62, 63]) {
      K.gemmABt(1, n, k, x.subarray(i * k, (i + 1) * k), w, oneZ, bias);
      expect(oneZ, `forward row ${i}`).toEqual(batchZ.subarray(i * n, (i + 1) * n));
      K.gemmAB(1, n, k, dz.subarray(i * n, (i + 1) * n), wt, oneDx);
      expect(oneDx, `input-gradient row ${i}`).toEqual(batchDx.subarray(i * k, (i + 1) * k));
    }
    // Each output unit alone (n = 1) equals its column in the full product.
    const unit = K.alloc(64);
    for (const j of [0, 5, 12]) {
      K.gemmABt(64, 1, k, x, w.subarray(j * k, (j + 1) * k), unit, bias.subarray(j, j + 1));
      expect(unit, `unit ${j}`).toEqual(Float32Array.from({ length: 64 }, (_, i) => batchZ[i * n + j]));
    }
  });

  it('gives each weight-gradient element the same bits whatever the other rows and columns', () => {
    const rng = new Rng(11);
    const [m, n, k] = [32, 10, 19];
    const dz = fill(rng, K.alloc(m * n));
    const x = fill(rng, K.alloc(m * k));
    const full = K.alloc(n * k);
    K.gemmAtB(m, n, k, dz, x, full);
    // Unit j alone: column j of dz as an [m × 1] matrix.
    const col = K.alloc(m);
    const row = K.alloc(k);
    for (const j of [0, 3, 9]) {
      for (let i = 0; i < m; i++) col[i] = dz[i * n + j];
      K.gemmAtB(m, 1, k, col, x, row);
      expect(row, `unit ${j}`).toEqual(full.subarray(j * k, (j + 1) * k));
    }
  });

  it('accepts views outside its memory (copied in and out) with the same bits as views inside', () => {
    const rng = new Rng(3);
    const [m, n, k] = [9, 13, 21];
    for (const op of ops) {
      const { la, lb, lc } = dims(op, m, n, k);
      const a = fill(rng, K.alloc(la));
      const b = fill(rng, K.alloc(lb));
      const bias = op === 'gemmABt' ? fill(rng, K.alloc(n)) : undefined;
      const inside = K.alloc(lc);
      K[op](m, n, k, a, b, inside, bias);
      const outA = new Float32Array(la + 3).subarray(2);
      outA.set(a);
      const outB = Float32Array.from(b);
      const outBias = bias ? Float32Array.from(bias) : undefined;
      const outC = new Float32Array(lc + 4).fill(-1);
      K[op](m, n, k, outA, outB, outC.subarray(1, 1 + lc), outBias);
      expect(outC.subarray(1, 1 + lc), op).toEqual(inside);
      expect([outC[0], outC[lc + 1]], `${op} wrote outside c`).toEqual([-1, -1]);
    }
  });

  it('alloc hands out zeroed, aligned, disjoint views of its memory that later calls never detach', () => {
    const L = createWasmKernels({ memoryMiB: 2 });
    const first = L.alloc(5).fill(1);
    const second = L.alloc(3);
    expect(second.buffer === first.buffer).toBe(true);
    expect(second.byteOffset % 64).toBe(0);
    expect(second.byteOffset).toBeGreaterThanOrEqual(first.byteOffset + 5 * 4);
    expect(Array.from(second)).toEqual([0, 0, 0]);
    // A call that needs ~1 MiB of scratch (packed panels, foreign copies) leaves old views intact.
    const [m, n, k] = [64, 256, 300];
    L.gemmABt(m, n, k, new Float32Array(m * k), new Float32Array(n * k), new Float32Array(m * n));
    expect(first.length).toBe(5);
    expect(Array.from(first)).toEqual([1, 1, 1, 1, 1]);
  });

  it('refuses to grow past its reservation with a clear error', () => {
    const L = createWasmKernels({ memoryMiB: 1 });
    const kept = L.alloc(1000).fill(2);
    expect(() => L.alloc(300_000)).toThrow(DptrainError);
    expect(() => L.alloc(300_000)).toThrow(/alloc\(300000\).*1 MiB reserved.*larger memoryMiB/);
    const big = 400;
    expect(() => L.gemmABt(big, big, big, new Float32Array(big * big), new Float32Array(big * big), new Float32Array(big * big))).toThrow(
      /gemmABt needs \d+ bytes/,
    );
    expect(Array.from(kept.subarray(0, 3))).toEqual([2, 2, 2]);
    expect(() => createWasmKernels({ memoryMiB: 0 })).toThrow(ConfigError);
    expect(() => createWasmKernels({ memoryMiB: 1.5 })).toThrow(/memoryMiB: must be an integer in \[1, 2048\]/);
  });
});

describe('wasm-fma kernels', () => {
  it('is offered here (the test runner sets the relaxed-SIMD flag, as the dptrain command does; this CPU has FMA)', () => {
    // CI runs on the same kind of machine; where the CPU does not fuse, wasm-fma must not be offered
    expect(wasmFmaSupported()).toBe(true);
    expect(Array.from(decodeBase64(GEMM_FMA_WASM_BASE64).subarray(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
  });

  it('the FMA variant is the plain source with exactly the nine multiply-add steps fused', () => {
    const source = readFileSync(watPath, 'utf8');
    const fma = fmaSource(source);
    expect(fma.match(/\(f32x4\.relaxed_madd /g)?.length).toBe(9);
    expect(source.includes('(f32x4.relaxed_madd ')).toBe(false);
    expect(() => fmaSource(source.replace('(f32x4.add (local.get $c00) (f32x4.mul (local.get $x) (local.get $b0)))', ''))).toThrow(/expected 9 multiply-add steps/);
  });
});

describe.runIf(wasmFmaSupported())('wasm-fma kernels, numerics', () => {
  const K = createWasmKernels({ memoryMiB: 32, fma: true });
  const P = createWasmKernels({ memoryMiB: 8 });

  it('fuses each multiply-add (one rounding): (1+2⁻²³)(1−2⁻²³) − 1 is −2⁻⁴⁶, where mul then add gives 0', () => {
    expect(K.name).toBe('wasm-fma');
    const run = (L: Kernels) => {
      const a = L.alloc(2);
      const b = L.alloc(2);
      a.set([-1, 1 + 2 ** -23]);
      b.set([1, 1 - 2 ** -23]);
      const c = L.alloc(1);
      L.gemmABt(1, 1, 2, a, b, c);
      return c[0];
    };
    expect(run(K)).toBe(-(2 ** -46));
    expect(run(P)).toBe(0);
  });

  for (const op of ops) {
    it(`${op} matches the reference within float32 tolerance on odd and W shapes`, () => {
      let seed = 500;
      for (const m of [1, 3, 4, 5, 13, 32]) {
        for (const n of [1, 5, 8, 9, 17]) {
          for (const k of [1, 7, 8, 97]) expectClose(K, op, m, n, k, seed++, op === 'gemmABt' && seed % 2 === 0);
        }
      }
      for (const [m, n, k] of [[32, 256, 784], [128, 128, 256]]) expectClose(K, op, m, n, k, seed++, op === 'gemmABt');
    });
  }

  it('keeps the determinism contract: a row alone equals its row in a batch; the bits differ from the plain kernel', () => {
    const rng = new Rng(8);
    const [n, k] = [13, 37];
    const x = fill(rng, K.alloc(64 * k));
    const w = fill(rng, K.alloc(n * k));
    const bias = fill(rng, K.alloc(n));
    const batchZ = K.alloc(64 * n);
    K.gemmABt(64, n, k, x, w, batchZ, bias);
    const oneZ = K.alloc(n);
    for (const i of [0, 1, 37, 63]) {
      K.gemmABt(1, n, k, x.subarray(i * k, (i + 1) * k), w, oneZ, bias);
      expect(oneZ, `row ${i}`).toEqual(batchZ.subarray(i * n, (i + 1) * n));
    }
    const plainZ = new Float32Array(64 * n);
    P.gemmABt(64, n, k, Float32Array.from(x), Float32Array.from(w), plainZ, Float32Array.from(bias));
    let differ = 0;
    for (let i = 0; i < plainZ.length; i++) if (plainZ[i] !== batchZ[i]) differ++;
    expect(differ).toBeGreaterThan(0);
  });
});
