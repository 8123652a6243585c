/**
 * Training throughput of @dptrain/core on workload W (MLP 784-256-128-10, ReLU,
 * softmax cross-entropy, plain SGD lr 0.05, batch 128, float32, synthetic data),
 * one thread, for every available kernel and leaf sizes 32 and 128 — plus the
 * GFLOP/s of W's GEMM shapes measured on the kernels directly.
 *
 *   node tools/dist/bench/core.js [--runs 7] [--steps 20] [--warmup 5] [--processes 1] [--json]
 *
 * A step is exactly the single-process trainer's step (train.ts): next batch from the
 * EpochSampler, setParams, LeafComputer.computeNode over the leaves, applyUpdate.
 * Configurations are interleaved run by run (direction alternating), so machine noise
 * hits all of them. --processes N repeats everything in N fresh node processes and
 * pools their runs (fresh processes differ by up to 2× for the same wasm code).
 */
import '../wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { fileURLToPath } from 'node:url';
import {
  type KernelName,
  type Dataset,
  type Kernels,
  EpochSampler,
  LeafComputer,
  Rng,
  applyUpdate,
  availableKernels,
  createOptimizerState,
  getKernels,
  initParams,
  leafCount,
  nextPow2,
  runSeeds,
  validateOptimizerConfig,
} from '@dptrain/core';
import {
  type MachineInfo,
  type Summary,
  W_BATCH,
  W_LR,
  W_SPEC,
  fmt,
  fmtSummary,
  inFreshProcesses,
  isMain,
  machineInfo,
  parseFlags,
  secondsPerCall,
  stepFlopsPerSample,
  summarize,
  syntheticClassification,
  table,
  timeMs,
  widths,
} from './util.js';

/** Options of a core trainer on W. */
export interface CoreTrainerOptions {
  kernel: KernelName;
  leafSize: number;
  data: Dataset;
  /** The run's seed: initial parameters, sampler and dropout seeds derive from it as in train() (runSeeds). */
  seed: number;
  /** Shuffle every epoch as training does (default true). */
  shuffle?: boolean;
  batchSize?: number;
}

/** One training step of W at a time, done the way the single-process trainer does it. */
export interface CoreTrainer {
  readonly kernel: KernelName;
  readonly leafSize: number;
  readonly params: Float32Array;
  /** One step; returns the batch's mean loss. */
  step(): number;
}

export function createCoreTrainer(o: CoreTrainerOptions): CoreTrainer {
  const batchSize = o.batchSize ?? W_BATCH;
  const kernels = getKernels(o.kernel);
  const optimizer = validateOptimizerConfig({ name: 'sgd', lr: W_LR });
  const seeds = runSeeds(o.seed);
  const computer = new LeafComputer(W_SPEC, o.data, { leafSize: o.leafSize, seed: seeds.dropout, kernels });
  const params = initParams(W_SPEC, seeds.init);
  const state = createOptimizerState(optimizer, params.length);
  const sampler = new EpochSampler({ n: o.data.n, batchSize, seed: seeds.sampler, shuffle: o.shuffle ?? true });
  const grad = new Float32Array(params.length);
  let step = 0;
  return {
    kernel: o.kernel,
    leafSize: o.leafSize,
    params,
    step(): number {
      const b = sampler.next();
      const B = b.indices.length;
      const L = leafCount(B, o.leafSize);
      computer.setParams(params);
      const st = computer.computeNode({ step, leafCount: L, batchSize: B, indices: b.indices, indexBase: 0 }, { lo: 0, size: nextPow2(L) }, grad);
      applyUpdate(params, grad, B, optimizer, state, step, kernels);
      step++;
      return st.lossSum / B;
    },
  };
}

type Op = 'gemmABt' | 'gemmAtB' | 'gemmAB';
export interface GemmShape {
  layer: number;
  op: Op;
  m: number;
  n: number;
  k: number;
  /** Whether a training step runs it (the first layer's input gradient is skipped). */
  inStep: boolean;
}

/** W's GEMMs for m rows: per layer [out=n, in=k], forward X·Wᵀ, weight grad δᵀ·X, input grad δ·W. */
function gemmShapes(m: number): GemmShape[] {
  const s = widths(W_SPEC);
  const out: GemmShape[] = [];
  for (const op of ['gemmABt', 'gemmAtB', 'gemmAB'] as const) {
    for (let l = 0; l + 1 < s.length; l++) out.push({ layer: l, op, m, n: s[l + 1], k: s[l], inStep: op !== 'gemmAB' || l > 0 });
  }
  return out;
}

function shapeLabel(g: GemmShape): string {
  const { m, n, k } = g;
  if (g.op === 'gemmABt') return `L${g.layer} forward     X·Wᵀ  ${m}×${k} · (${n}×${k})ᵀ`;
  if (g.op === 'gemmAtB') return `L${g.layer} weight grad δᵀ·X  (${m}×${n})ᵀ · ${m}×${k}`;
  return `L${g.layer} input grad  δ·W   ${m}×${n} · ${n}×${k}${g.inStep ? '' : ' (not in step)'}`;
}

/** Seconds-per-call samples of every W GEMM shape for m rows, operands in the kernels' own memory. */
function measureGemms(K: Kernels, m: number, runs: number): Array<{ shape: GemmShape; secs: number[] }> {
  const maxW = 256 * 784;
  const rng = new Rng(7);
  const fill = (len: number): Float32Array => {
    const v = K.alloc(len);
    for (let i = 0; i < len; i++) v[i] = rng.nextNormal();
    return v;
  };
  const a = fill(m * 784);
  const b = fill(maxW);
  const d = fill(m * 256);
  const bias = fill(256);
  const c = K.alloc(Math.max(maxW, m * 784));
  return gemmShapes(m).map((g) => {
    const { n, k } = g;
    const call =
      g.op === 'gemmABt'
        ? () => K.gemmABt(m, n, k, a, b, c, bias.subarray(0, n))
        : g.op === 'gemmAtB'
          ? () => K.gemmAtB(m, n, k, d, a, c)
          : () => K.gemmAB(m, n, k, d, b, c);
    return { shape: g, secs: secondsPerCall(call, runs) };
  });
}

export interface CoreTrainingResult {
  kernel: KernelName;
  leafSize: number;
  /** samples/s of each timed run. */
  runs: number[];
  samplesPerSec: Summary;
  finalLoss: number;
  /** Time of the step's GEMMs alone, from the direct GEMM medians (ms per step): the rest is overhead. */
  gemmMsPerStep?: number;
}

export interface CoreGemmResult extends GemmShape {
  kernel: KernelName;
  label: string;
  /** GFLOP/s of each sample. */
  samples: number[];
  gflops: Summary;
}

export interface CoreBenchResult {
  machine: MachineInfo;
  workload: { spec: typeof W_SPEC; batchSize: number; lr: number; flopsPerSample: number };
  options: { runs: number; steps: number; warmup: number; processes: number };
  training: CoreTrainingResult[];
  gemm: CoreGemmResult[];
}

const FLAGS = {
  runs: { kind: 'int', min: 1, max: 1000, default: 7 },
  steps: { kind: 'int', min: 1, max: 100000, default: 20 },
  warmup: { kind: 'int', min: 0, max: 100000, default: 5 },
  processes: { kind: 'int', min: 1, max: 100, default: 1 },
  json: { kind: 'bool' },
} as const;

/** Run the benchmark in this process. */
export function runCoreBench(opts: { runs: number; steps: number; warmup: number }, log: (s: string) => void = () => {}): CoreBenchResult {
  const flopsPerSample = stepFlopsPerSample(widths(W_SPEC));
  const data = syntheticClassification(W_BATCH * 16, W_SPEC.inputSize, 10, 1);
  const kernels = availableKernels();
  const configs: CoreTrainer[] = [];
  for (const kernel of kernels) for (const leafSize of [32, 128]) configs.push(createCoreTrainer({ kernel, leafSize, data, seed: 1 }));
  const samples: number[][] = configs.map(() => []);
  const last: number[] = configs.map(() => NaN);
  for (const t of configs) for (let s = 0; s < opts.warmup; s++) t.step();
  for (let r = 0; r < opts.runs; r++) {
    const order = configs.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const t = configs[i];
      const ms = timeMs(() => {
        for (let s = 0; s < opts.steps; s++) last[i] = t.step();
      });
      samples[i].push((opts.steps * W_BATCH) / (ms / 1000));
    }
    log(`  run ${r + 1}/${opts.runs}: ${configs.map((t, i) => `${t.kernel}/${t.leafSize} ${fmt(samples[i][r])}`).join(', ')}`);
  }
  const training = configs.map((t, i) => {
    if (!Number.isFinite(last[i])) throw new Error(`kernel ${t.kernel}, leaf ${t.leafSize}: the loss became ${last[i]}`);
    return { kernel: t.kernel, leafSize: t.leafSize, runs: samples[i], samplesPerSec: summarize(samples[i]), finalLoss: last[i] };
  });
  const gemm: CoreGemmResult[] = [];
  for (const kernel of kernels) {
    const K = getKernels(kernel);
    for (const m of [128, 32]) {
      for (const { shape, secs } of measureGemms(K, m, opts.runs)) {
        const g = secs.map((s) => (2 * shape.m * shape.n * shape.k) / s / 1e9);
        gemm.push({ kernel, label: shapeLabel(shape), ...shape, samples: g, gflops: summarize(g) });
      }
      log(`  gemm ${kernel} m=${m} done`);
    }
  }
  return withGemmEstimates({
    machine: machineInfo(),
    workload: { spec: W_SPEC, batchSize: W_BATCH, lr: W_LR, flopsPerSample },
    options: { ...opts, processes: 1 },
    training,
    gemm,
  });
}

/** Fill gemmMsPerStep of each training row: leaves per batch × Σ over the step's GEMMs of FLOP / median GFLOP/s. */
function withGemmEstimates(r: CoreBenchResult): CoreBenchResult {
  for (const t of r.training) {
    const gs = r.gemm.filter((g) => g.kernel === t.kernel && g.m === t.leafSize && g.inStep);
    const perLeaf = gs.reduce((acc, g) => acc + (2 * g.m * g.n * g.k) / (g.gflops.median * 1e9), 0);
    t.gemmMsPerStep = gs.length ? Math.ceil(r.workload.batchSize / t.leafSize) * perLeaf * 1000 : undefined;
  }
  return r;
}

/** Pool the runs of several processes' results (same configurations, same order). */
export function mergeCoreResults(parts: CoreBenchResult[]): CoreBenchResult {
  const [first] = parts;
  const training = first.training.map((t, i) => {
    const runs = parts.flatMap((p) => p.training[i].runs);
    return { ...t, runs, samplesPerSec: summarize(runs) };
  });
  const gemm = first.gemm.map((g, i) => {
    const s = parts.flatMap((p) => p.gemm[i].samples);
    return { ...g, samples: s, gflops: summarize(s) };
  });
  return withGemmEstimates({ ...first, options: { ...first.options, processes: parts.length }, training, gemm });
}

function report(r: CoreBenchResult): string {
  const f = r.workload.flopsPerSample;
  const lines = [
    `bench:core — workload W 784-256-128-10, batch ${r.workload.batchSize}, SGD lr ${r.workload.lr}, ${fmt(f)} FLOP/sample/step, one thread`,
    `${r.machine.cpu}, nproc ${r.machine.nproc}, node ${r.machine.node}, ${r.machine.date}`,
    `${r.options.processes} process(es) × ${r.options.runs} runs × ${r.options.steps} steps (warm-up ${r.options.warmup} steps)`,
    '',
    table(
      ['kernel', 'leaf', 'samples/s median (range)', 'ms/step', 'of which GEMM (est.)', 'GFLOP/s'],
      r.training.map((t) => [
        t.kernel,
        String(t.leafSize),
        fmtSummary(t.samplesPerSec),
        fmt((1000 * r.workload.batchSize) / t.samplesPerSec.median, 1),
        t.gemmMsPerStep === undefined ? '' : fmt(t.gemmMsPerStep, 1),
        fmt((t.samplesPerSec.median * f) / 1e9, 2),
      ]),
    ),
    '',
    'GEMM GFLOP/s on the kernels directly, median (range):',
  ];
  const kernels = [...new Set(r.gemm.map((g) => g.kernel))];
  const rows = r.gemm.filter((g) => g.kernel === kernels[0]);
  lines.push(
    table(
      ['shape', ...kernels],
      rows.map((g) => [g.label, ...kernels.map((k) => fmtSummary(r.gemm.find((x) => x.kernel === k && x.label === g.label)!.gflops, 2))]),
    ),
  );
  return lines.join('\n');
}

function main(): void {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const opts = { runs: flags.runs, steps: flags.steps, warmup: flags.warmup };
  const log = flags.json ? () => {} : (s: string) => console.error(s);
  let result: CoreBenchResult;
  if (flags.processes > 1) {
    const args = ['--runs', String(opts.runs), '--steps', String(opts.steps), '--warmup', String(opts.warmup), '--json'];
    log(`running ${flags.processes} fresh processes…`);
    result = mergeCoreResults(inFreshProcesses<CoreBenchResult>(fileURLToPath(import.meta.url), args, flags.processes));
  } else {
    result = runCoreBench(opts, log);
  }
  console.log(flags.json ? JSON.stringify(result, null, 2) : report(result));
}

if (isMain(import.meta.url)) {
  try {
    main();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  }
}
