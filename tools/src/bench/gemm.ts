/**
 * GEMM benchmark: GFLOP/s of the reference, js and wasm kernels side by side on the
 * GEMM shapes of workload W (MLP 784-256-128-10), for a batch of 128 and a leaf of 32.
 *
 *   node tools/dist/bench/gemm.js [--runs 9] [--kernels reference,js,wasm] [--clock wall|cpu] [--json]
 *
 * Each figure is the median of `runs` (≥ 7) timed samples after a warm-up; a sample
 * repeats the call until it lasts ≥ 20 ms. Fresh processes on a shared host vary by
 * up to 2× (code placement): run it several times and report median and range.
 * `--clock cpu` times samples with this process's CPU time instead of wall time, which
 * discounts the time other processes hold the core on a busy host.
 */
import '../wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { Rng, availableKernels, createWasmKernels, jsKernels, referenceKernels, type Kernels } from '@dptrain/core';

type Op = 'gemmABt' | 'gemmAtB' | 'gemmAB';
interface Shape {
  label: string;
  op: Op;
  m: number;
  n: number;
  k: number;
}

/** W's layers as [out, in]; forward ABt (Z = X·Wᵀ), weight gradient AtB (dW = δᵀ·X), input gradient AB (dX = δ·W). */
const LAYERS: Array<[number, number]> = [[256, 784], [128, 256], [10, 128]];

function shapes(): Shape[] {
  const out: Shape[] = [];
  for (const m of [128, 32]) {
    for (const [o, i] of LAYERS) out.push({ label: `forward     ${m}×${i}·(${o}×${i})ᵀ`, op: 'gemmABt', m, n: o, k: i });
    for (const [o, i] of LAYERS) out.push({ label: `weight grad (${m}×${o})ᵀ·${m}×${i}`, op: 'gemmAtB', m, n: o, k: i });
    for (const [o, i] of LAYERS) out.push({ label: `input grad  ${m}×${o}·${o}×${i}`, op: 'gemmAB', m, n: o, k: i });
  }
  return out;
}

function operands(K: Kernels, s: Shape, rng: Rng): () => void {
  const { m, n, k } = s;
  const fill = (len: number): Float32Array => {
    const v = K.alloc(len);
    for (let i = 0; i < len; i++) v[i] = rng.nextNormal();
    return v;
  };
  if (s.op === 'gemmABt') {
    const [a, b, c, bias] = [fill(m * k), fill(n * k), K.alloc(m * n), fill(n)];
    return () => K.gemmABt(m, n, k, a, b, c, bias);
  }
  if (s.op === 'gemmAtB') {
    const [a, b, c] = [fill(m * n), fill(m * k), K.alloc(n * k)];
    return () => K.gemmAtB(m, n, k, a, b, c);
  }
  const [a, b, c] = [fill(m * n), fill(n * k), K.alloc(m * k)];
  return () => K.gemmAB(m, n, k, a, b, c);
}

type Clock = 'wall' | 'cpu';

/** Milliseconds on the chosen clock. */
function now(clock: Clock): number {
  if (clock === 'wall') return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Median seconds per call over `runs` samples, each ≥ 20 ms, after ≥ 100 ms of warm-up. */
function time(call: () => void, runs: number, clock: Clock): number {
  let reps = 0;
  const warm = performance.now();
  while (performance.now() - warm < 100 || reps < 3) {
    call();
    reps++;
  }
  const perCall = (performance.now() - warm) / reps;
  const inner = Math.max(1, Math.ceil(20 / perCall));
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = now(clock);
    for (let q = 0; q < inner; q++) call();
    samples.push((now(clock) - t0) / inner / 1000);
  }
  samples.sort((x, y) => x - y);
  return samples[Math.floor(samples.length / 2)];
}

function parseArgs(argv: string[]): { runs: number; kernels: string[]; clock: Clock; json: boolean } {
  const opts = { runs: 9, kernels: ['reference', 'js', 'wasm', 'wasm-fma'], clock: 'wall' as Clock, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') opts.json = true;
    else if (arg === '--runs') opts.runs = Number(argv[++i]);
    else if (arg === '--kernels') opts.kernels = String(argv[++i]).split(',');
    else if (arg === '--clock') opts.clock = argv[++i] as Clock;
    else throw new Error(`unknown argument ${arg}: expected --runs N, --kernels reference,js,wasm,wasm-fma, --clock wall|cpu or --json`);
  }
  if (opts.clock !== 'wall' && opts.clock !== 'cpu') throw new Error(`--clock must be wall or cpu, got ${opts.clock}`);
  if (!Number.isInteger(opts.runs) || opts.runs < 7) throw new Error(`--runs must be an integer ≥ 7, got ${opts.runs}`);
  for (const k of opts.kernels) {
    if (!['reference', 'js', 'wasm', 'wasm-fma'].includes(k)) throw new Error(`--kernels: unknown kernel ${k}: expected reference, js, wasm or wasm-fma`);
  }
  return opts;
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const kernels: Record<string, () => Kernels> = {
    reference: () => referenceKernels,
    js: () => jsKernels,
    wasm: () => createWasmKernels({ memoryMiB: 128 }),
    'wasm-fma': () => createWasmKernels({ memoryMiB: 128, fma: true }),
  };
  // the wasm kernels where this runtime has them
  const names = opts.kernels.filter((k) => !k.startsWith('wasm') || (availableKernels() as string[]).includes(k));
  const instances = Object.fromEntries(names.map((k) => [k, kernels[k]()]));
  const rows: Array<{ shape: string; op: Op; m: number; n: number; k: number; gflops: Record<string, number> }> = [];
  if (!opts.json) {
    console.log(`GEMM GFLOP/s, median of ${opts.runs} runs (${opts.clock} clock) — node ${process.version}`);
    console.log(`${'shape'.padEnd(34)}${names.map((k) => k.padStart(11)).join('')}`);
  }
  for (const s of shapes()) {
    const gflops: Record<string, number> = {};
    for (const name of names) {
      const call = operands(instances[name], s, new Rng(1234));
      gflops[name] = (2 * s.m * s.n * s.k) / time(call, opts.runs, opts.clock) / 1e9;
    }
    rows.push({ shape: s.label, op: s.op, m: s.m, n: s.n, k: s.k, gflops });
    if (!opts.json) console.log(`${s.label.padEnd(34)}${names.map((k) => gflops[k].toFixed(2).padStart(11)).join('')}`);
  }
  if (opts.json) console.log(JSON.stringify({ node: process.version, runs: opts.runs, clock: opts.clock, rows }, null, 2));
}

main();
