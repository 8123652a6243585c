/**
 * Workload W (MLP 784-256-128-10, ReLU, softmax cross-entropy, plain SGD lr 0.05,
 * batch 128, float32, synthetic data) trained by several systems in one process,
 * one thread each, alternating system by system every round so machine noise hits
 * them all:
 *   - @dptrain/core, each SIMD kernel of the runtime (wasm, wasm-fma; leaf 32 = the trainer's default, and leaf 128), and js at leaf 128
 *     and the js kernel (leaf 128);
 *   - TensorFlow.js 4.22 with the wasm backend (threads 1) and the cpu backend;
 *   - a naive Float32Array triple-loop step (the floor).
 *
 *   node tools/dist/bench/compare.js [--rounds 7] [--steps 8] [--min-ms 500] [--warmup 3] [--json]
 *
 * Every system starts from the same initial parameters and sees the same batches in
 * the same order (0, 1, 2, ... of a 2048-sample set), so their losses must agree;
 * the warm-up steps are checked before anything is timed. Each round, each system
 * gets a full garbage collection and one untimed step, then is timed over at least
 * `steps` steps and at least `min-ms` milliseconds (so fast systems are not timed
 * over a window too short to survive a noisy machine; --min-ms 0: exactly `steps`).
 *
 * tfjs needs its gradient functions registered: the union package @tensorflow/tfjs
 * does that by importing tfjs-core's dist/register_all_gradients.js, an ES module
 * with extension-less imports. It is not installed here, so we load that same file
 * through a small resolve hook that appends '.js' inside tfjs-core's dist (tfjs keeps
 * its engine and registries in globalThis, shared by both module formats).
 */
import '../wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { createRequire, register } from 'node:module';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { initParams, paramLayout, runSeeds, type Dataset, type KernelName, availableKernels } from '@dptrain/core';
import { createCoreTrainer } from './core.js';
import {
  type MachineInfo,
  type Summary,
  W_BATCH,
  W_LR,
  W_SPEC,
  fmt,
  fmtSummary,
  isMain,
  machineInfo,
  parseFlags,
  stepFlopsPerSample,
  summarize,
  syntheticClassification,
  table,
  widths,
} from './util.js';

type Tf = typeof import('@tensorflow/tfjs-core');

/** A system under test: one training step of W at a time. */
interface System {
  name: string;
  /** tfjs backend to switch to before running it. */
  backend?: 'wasm' | 'cpu';
  /** One step; returns the batch's mean loss. */
  step(): number;
}

/**
 * W's training step written the plain way: Float32Array buffers, triple loops, no
 * tiling, no blocking. Parameters use core's flat layout (per layer weight [out, in],
 * then bias [out]) and are updated in place by SGD on the batch-mean gradient.
 */
export class NaiveMlp {
  readonly sizes: number[];
  readonly params: Float32Array;
  private readonly W: Float32Array[] = [];
  private readonly b: Float32Array[] = [];
  private readonly dW: Float32Array[] = [];
  private readonly db: Float32Array[] = [];
  /** Pre-activations and activations per layer, [maxRows × out]. */
  private readonly z: Float32Array[] = [];
  private readonly a: Float32Array[] = [];
  private readonly delta: Float32Array[] = [];

  constructor(sizes: number[], params: Float32Array, maxRows: number) {
    this.sizes = sizes;
    this.params = params;
    let off = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nin = sizes[l];
      const nout = sizes[l + 1];
      this.W.push(params.subarray(off, off + nout * nin));
      off += nout * nin;
      this.b.push(params.subarray(off, off + nout));
      off += nout;
      this.dW.push(new Float32Array(nout * nin));
      this.db.push(new Float32Array(nout));
      this.z.push(new Float32Array(maxRows * nout));
      this.a.push(new Float32Array(maxRows * nout));
      this.delta.push(new Float32Array(maxRows * nout));
    }
    if (off !== params.length) throw new RangeError(`parameters have ${params.length} values, sizes ${sizes.join('-')} need ${off}`);
  }

  /** Forward, softmax cross-entropy, backward and SGD update on `rows` rows of x [rows × in] and one-hot y [rows × classes]; returns the mean loss. */
  step(x: Float32Array, y: Float32Array, rows: number, lr: number): number {
    const S = this.sizes;
    const last = S.length - 2;
    // forward: z = A·Wᵀ + b, a = relu(z) on hidden layers
    for (let l = 0; l <= last; l++) {
      const nin = S[l];
      const nout = S[l + 1];
      const A = l === 0 ? x : this.a[l - 1];
      const W = this.W[l];
      const b = this.b[l];
      const z = this.z[l];
      const a = this.a[l];
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < nout; j++) {
          let s = b[j];
          for (let k = 0; k < nin; k++) s += A[i * nin + k] * W[j * nin + k];
          z[i * nout + j] = s;
          a[i * nout + j] = l === last ? s : s > 0 ? s : 0;
        }
      }
    }
    // softmax cross-entropy; output delta = (softmax − y) / rows
    const C = S[last + 1];
    const zL = this.z[last];
    const dL = this.delta[last];
    let loss = 0;
    for (let i = 0; i < rows; i++) {
      let max = -Infinity;
      for (let j = 0; j < C; j++) max = Math.max(max, zL[i * C + j]);
      let sum = 0;
      for (let j = 0; j < C; j++) sum += Math.exp(zL[i * C + j] - max);
      const lse = max + Math.log(sum);
      for (let j = 0; j < C; j++) {
        const t = y[i * C + j];
        loss += t * (lse - zL[i * C + j]);
        dL[i * C + j] = (Math.exp(zL[i * C + j] - lse) - t) / rows;
      }
    }
    // backward: dW = δᵀ·A, db = Σ δ, δ_prev = (δ·W) ⊙ relu'(z_prev)
    for (let l = last; l >= 0; l--) {
      const nin = S[l];
      const nout = S[l + 1];
      const A = l === 0 ? x : this.a[l - 1];
      const d = this.delta[l];
      const dW = this.dW[l];
      const db = this.db[l];
      dW.fill(0);
      db.fill(0);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < nout; j++) {
          const g = d[i * nout + j];
          db[j] += g;
          for (let k = 0; k < nin; k++) dW[j * nin + k] += g * A[i * nin + k];
        }
      }
      if (l > 0) {
        const W = this.W[l];
        const zp = this.z[l - 1];
        const dp = this.delta[l - 1];
        for (let i = 0; i < rows; i++) {
          for (let k = 0; k < nin; k++) {
            let s = 0;
            for (let j = 0; j < nout; j++) s += d[i * nout + j] * W[j * nin + k];
            dp[i * nin + k] = zp[i * nin + k] > 0 ? s : 0;
          }
        }
      }
    }
    // SGD
    for (let l = 0; l <= last; l++) {
      const W = this.W[l];
      const dW = this.dW[l];
      for (let q = 0; q < W.length; q++) W[q] -= lr * dW[q];
      const b = this.b[l];
      const db = this.db[l];
      for (let q = 0; q < b.length; q++) b[q] -= lr * db[q];
    }
    return loss / rows;
  }
}

/** Batch `t` of the set, in order, wrapping around: the row offset. */
const batchRow = (t: number, data: Dataset): number => (t % Math.floor(data.n / W_BATCH)) * W_BATCH;

function naiveSystem(data: Dataset, init: Float32Array): System {
  const net = new NaiveMlp(widths(W_SPEC), Float32Array.from(init), W_BATCH);
  let t = 0;
  const fin = data.inputSize;
  const fout = data.outputSize;
  return {
    name: 'naive triple loop',
    step: () => {
      const r = batchRow(t++, data);
      return net.step(data.x.subarray(r * fin, (r + W_BATCH) * fin), data.y.subarray(r * fout, (r + W_BATCH) * fout), W_BATCH, W_LR);
    },
  };
}

function coreSystem(kernel: KernelName, leafSize: number, data: Dataset, seed: number): System {
  const t = createCoreTrainer({ kernel, leafSize, data, seed, shuffle: false });
  return { name: `dptrain ${kernel} leaf ${leafSize}`, step: () => t.step() };
}

/** Resolve hook: extension-less relative imports inside tfjs-core's dist get '.js' (or '/index.js'). */
const TFJS_HOOK = `
export async function resolve(specifier, context, next) {
  const p = context.parentURL ?? '';
  if (p.includes('/@tensorflow/tfjs-core/dist/') && /^\\.\\.?\\//.test(specifier) && !specifier.endsWith('.js')) {
    try { return await next(specifier + '.js', context); } catch { return next(specifier + '/index.js', context); }
  }
  return next(specifier, context);
}`;

interface TfInfo {
  version: string;
  wasmThreads: number;
  wasmSimd: boolean;
}

/** Load tfjs-core, its gradients and both backends from node_modules (nothing is downloaded). */
async function loadTf(): Promise<{ tf: Tf; info: TfInfo }> {
  register(`data:text/javascript,${encodeURIComponent(TFJS_HOOK)}`);
  const tf: Tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-core/dist/register_all_gradients.js' as string);
  await import('@tensorflow/tfjs-backend-cpu');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const req = createRequire(import.meta.url);
  wasm.setWasmPaths(path.join(path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend failed to initialise');
  const info = { version: tf.version_core, wasmThreads: wasm.getThreadsCount(), wasmSimd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) };
  return { tf, info };
}

/**
 * W in tfjs as tf.layers' Dense would run it: kernels [in, out], fused matMul + bias +
 * ReLU, tf.losses.softmaxCrossEntropy (batch mean), tf.train.sgd(lr).minimize.
 * Weights start from `init` (core layout, transposed).
 */
async function tfSystem(tf: Tf, backend: 'wasm' | 'cpu', data: Dataset, init: Float32Array): Promise<System> {
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: backend ${backend} failed to initialise`);
  // the cpu backend's first write advertises tfjs-node on stderr: not useful here
  const warn = console.warn;
  console.warn = (...a: unknown[]) => void (String(a[0]).includes('tfjs-node') || warn(...a));
  try {
    return tfModel(tf, backend, data, init);
  } finally {
    console.warn = warn;
  }
}

function tfModel(tf: Tf, backend: 'wasm' | 'cpu', data: Dataset, init: Float32Array): System {
  const layout = paramLayout(W_SPEC);
  const vars: import('@tensorflow/tfjs-core').Variable[] = [];
  for (let l = 0; l < W_SPEC.layers.length; l++) {
    const w = layout.tensors[2 * l];
    const b = layout.tensors[2 * l + 1];
    const [nout, nin] = w.shape;
    const kt = new Float32Array(nin * nout);
    for (let j = 0; j < nout; j++) for (let k = 0; k < nin; k++) kt[k * nout + j] = init[w.offset + j * nin + k];
    vars.push(tf.variable(tf.tensor2d(kt, [nin, nout]), true, `${backend}_k${l}`));
    vars.push(tf.variable(tf.tensor1d(init.slice(b.offset, b.offset + b.length)), true, `${backend}_b${l}`));
  }
  const opt = tf.train.sgd(W_LR);
  const fin = data.inputSize;
  const fout = data.outputSize;
  const last = W_SPEC.layers.length - 1;
  let t = 0;
  return {
    name: `tfjs ${backend}`,
    backend,
    step: () => {
      const r = batchRow(t++, data);
      const x = tf.tensor2d(data.x.subarray(r * fin, (r + W_BATCH) * fin), [W_BATCH, fin]);
      const y = tf.tensor2d(data.y.subarray(r * fout, (r + W_BATCH) * fout), [W_BATCH, fout]);
      const cost = opt.minimize(
        () => {
          let h: import('@tensorflow/tfjs-core').Tensor = x;
          for (let l = 0; l <= last; l++) h = tf.fused.matMul({ a: h, b: vars[2 * l], bias: vars[2 * l + 1], activation: l < last ? 'relu' : 'linear' });
          return tf.losses.softmaxCrossEntropy(y, h as import('@tensorflow/tfjs-core').Tensor2D) as import('@tensorflow/tfjs-core').Scalar;
        },
        true,
        vars,
      );
      const loss = cost!.dataSync()[0];
      tf.dispose([x, y, cost!]);
      return loss;
    },
  };
}

export interface CompareSystemResult {
  name: string;
  /** samples/s of each round. */
  rounds: number[];
  samplesPerSec: Summary;
  /** median / median of tfjs wasm, and the per-round ratios. */
  vsTfjsWasm?: { ratio: number; perRound: Summary };
  vsTfjsCpu?: { ratio: number; perRound: Summary };
  finalLoss: number;
}

export interface CompareResult {
  machine: MachineInfo;
  tfjs: TfInfo;
  workload: { batchSize: number; lr: number; flopsPerSample: number };
  options: { rounds: number; steps: number; minMs: number; warmup: number };
  /** Largest |loss − loss of the first system| over the checked warm-up steps. */
  warmupLossMaxDiff: number;
  systems: CompareSystemResult[];
}

const FLAGS = {
  rounds: { kind: 'int', min: 1, max: 1000, default: 7 },
  steps: { kind: 'int', min: 1, max: 100000, default: 8 },
  'min-ms': { kind: 'int', min: 0, max: 600000, default: 500 },
  warmup: { kind: 'int', min: 1, max: 1000, default: 3 },
  json: { kind: 'bool' },
} as const;

const LOSS_TOLERANCE = 1e-3;

function ratios(sys: number[], ref: number[]): { ratio: number; perRound: Summary } {
  return { ratio: summarize(sys).median / summarize(ref).median, perRound: summarize(sys.map((v, i) => v / ref[i])) };
}

/** A full garbage collection (node's gc, exposed at run time), so one system's garbage is not collected in another's window. */
function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

export async function runCompare(opts: { rounds: number; steps: number; minMs: number; warmup: number }, log: (s: string) => void = () => {}): Promise<CompareResult> {
  const seed = 1;
  const data = syntheticClassification(W_BATCH * 16, W_SPEC.inputSize, 10, seed);
  const init = initParams(W_SPEC, runSeeds(seed).init);
  const { tf, info } = await loadTf();
  // every kernel of this runtime: the SIMD ones at both leaf sizes, js at leaf 128
  const simd = availableKernels().filter((k): k is KernelName => k !== 'js');
  const systems: System[] = simd.flatMap((k) => [coreSystem(k, 32, data, seed), coreSystem(k, 128, data, seed)]);
  systems.push(coreSystem('js', 128, data, seed));
  systems.push(await tfSystem(tf, 'wasm', data, init), await tfSystem(tf, 'cpu', data, init), naiveSystem(data, init));
  const gc = fullGc();
  const run = async (s: System, steps: number): Promise<number[]> => {
    if (s.backend && tf.getBackend() !== s.backend) await tf.setBackend(s.backend);
    gc();
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) losses.push(s.step());
    return losses;
  };
  // warm-up, and the check that every system computes the same training
  const warm: number[][] = [];
  for (const s of systems) warm.push(await run(s, opts.warmup));
  let maxDiff = 0;
  systems.forEach((s, i) =>
    warm[i].forEach((v, q) => {
      const d = Math.abs(v - warm[0][q]);
      if (!(d <= LOSS_TOLERANCE)) throw new Error(`${s.name}: warm-up step ${q} loss ${v} differs from ${systems[0].name}'s ${warm[0][q]}: the systems do not compute the same training`);
      maxDiff = Math.max(maxDiff, d);
    }),
  );
  log(`warm-up losses agree (max |Δ| ${maxDiff.toExponential(2)}): ${systems.map((s, i) => `${s.name} ${warm[i].at(-1)!.toFixed(5)}`).join(', ')}`);
  const samples: number[][] = systems.map(() => []);
  const last: number[] = systems.map(() => NaN);
  for (let r = 0; r < opts.rounds; r++) {
    const order = systems.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const s = systems[i];
      await run(s, 1);
      let n = 0;
      const t0 = performance.now();
      while (n < opts.steps || performance.now() - t0 < opts.minMs) {
        last[i] = s.step();
        n++;
      }
      samples[i].push((n * W_BATCH) / ((performance.now() - t0) / 1000));
    }
    log(`  round ${r + 1}/${opts.rounds}: ${systems.map((s, i) => `${s.name} ${fmt(samples[i][r])}`).join(', ')}`);
  }
  const iw = systems.findIndex((s) => s.name === 'tfjs wasm');
  const ic = systems.findIndex((s) => s.name === 'tfjs cpu');
  return {
    machine: machineInfo(),
    tfjs: info,
    workload: { batchSize: W_BATCH, lr: W_LR, flopsPerSample: stepFlopsPerSample(widths(W_SPEC)) },
    options: opts,
    warmupLossMaxDiff: maxDiff,
    systems: systems.map((s, i) => ({
      name: s.name,
      rounds: samples[i],
      samplesPerSec: summarize(samples[i]),
      vsTfjsWasm: ratios(samples[i], samples[iw]),
      vsTfjsCpu: ratios(samples[i], samples[ic]),
      finalLoss: last[i],
    })),
  };
}

function report(r: CompareResult): string {
  const x = (v: { ratio: number; perRound: Summary } | undefined) => (v ? `${v.ratio.toFixed(2)}× (${v.perRound.min.toFixed(2)}–${v.perRound.max.toFixed(2)})` : '');
  return [
    `bench:compare — workload W 784-256-128-10, batch ${r.workload.batchSize}, SGD lr ${r.workload.lr}, one thread, systems alternating every round`,
    `${r.machine.cpu}, nproc ${r.machine.nproc}, node ${r.machine.node}, ${r.machine.date}`,
    `tfjs ${r.tfjs.version} (wasm: simd ${r.tfjs.wasmSimd}, threads ${r.tfjs.wasmThreads}); ${r.options.rounds} rounds × ≥ ${r.options.steps} steps and ≥ ${r.options.minMs} ms, warm-up ${r.options.warmup} steps (losses agree to ${r.warmupLossMaxDiff.toExponential(1)})`,
    '',
    table(
      ['system', 'samples/s median (range)', 'vs tfjs wasm (per-round range)', 'vs tfjs cpu (per-round range)', 'final loss'],
      r.systems.map((s) => [s.name, fmtSummary(s.samplesPerSec), x(s.vsTfjsWasm), x(s.vsTfjsCpu), s.finalLoss.toFixed(4)]),
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  const log = flags.json ? () => {} : (s: string) => console.error(s);
  const result = await runCompare({ rounds: flags.rounds, steps: flags.steps, minMs: flags['min-ms'], warmup: flags.warmup }, log);
  console.log(flags.json ? JSON.stringify(result, null, 2) : report(result));
}

if (isMain(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
