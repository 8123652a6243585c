/**
 * Measured scaling of distributed training on workload W (MLP 784-256-128-10, ReLU,
 * softmax cross-entropy, plain SGD lr 0.05) on MNIST, global batch 128 and 512, with 1
 * and 2 local worker processes over loopback WebSockets — exactly as `dptrain train`
 * runs them: payloads through the shared-memory data plane, leaves split evenly — plus
 * the protocol codec's throughput against a plain memory copy.
 *
 *   node tools/dist/bench/scaling.js [--repeat 5] [--steps 40] [--warmup 5] [--leaf 32] [--codec-runs 21] [--json]
 *                                    [--fma] [--ws] [--speed] [--variants]
 *
 * --ws: socket only; --speed: leaves split by measured speed; --variants: the 2-worker runs
 * also over the socket alone and with shared memory and the speed split, side by side.
 *
 * Every run is a fresh node process (coordinator) with fresh worker processes; runs are
 * interleaved repeat by repeat (direction alternating). Figures are medians over the timed
 * steps of a run; the tables give the median and range over the repeats.
 */
import '../wasm-features.js'; // first: enables relaxed SIMD (kernel wasm-fma) on Node 20
import { fileURLToPath } from 'node:url';
import type { Balance } from '@dptrain/coordinator';
import { type KernelName, availableKernels, validateRunConfig } from '@dptrain/core';
import { headroomFromEnv, reserveHeapHeadroom } from '../heap-headroom.js';
import { loadDataset } from '../data/index.js';
import { type CodecThroughput, codecThroughput } from './codec-throughput.js';
import { type HostCeiling, hostCeiling } from './host-ceiling.js';
import { type ScalingRunResult, type ScalingSummary, measureScalingRun, speedUp, summarizeRuns } from './scaling-run.js';
import { type MachineInfo, W_LR, W_SPEC, fmt, fmtSummary, inFreshProcesses, isMain, machineInfo, parseFlags, table } from './util.js';

const FLAGS = {
  repeat: { kind: 'int', min: 1, max: 50, default: 5 },
  steps: { kind: 'int', min: 1, max: 10_000, default: 40 },
  warmup: { kind: 'int', min: 1, max: 1000, default: 5 },
  leaf: { kind: 'int', min: 1, max: 512, default: 32 },
  'codec-runs': { kind: 'int', min: 1, max: 100, default: 21 },
  json: { kind: 'bool' },
  // kernel wasm-fma instead of the default kernel
  fma: { kind: 'bool' },
  // every run over the socket alone (no shared-memory data plane) / with the leaves split by measured speed
  ws: { kind: 'bool' },
  speed: { kind: 'bool' },
  // add 2-worker runs with the other transport and split (the comparison side by side)
  variants: { kind: 'bool' },
  // internal: measure one run in this process and print its JSON
  'run-batch': { kind: 'int', min: 0, max: 1 << 20, default: 0 },
  'run-workers': { kind: 'int', min: 0, max: 256, default: 0 },
} as const;

/** One measured configuration: global batch × worker processes, transport and leaf split. */
export interface ScalingConfig {
  batchSize: number;
  workers: number;
  /** Shared-memory data plane for the local workers (as `dptrain train` does by default). */
  shm: boolean;
  balance: Balance;
}

/**
 * The configurations measured: batch 128 and 512 with 1 and 2 workers, with `dptrain
 * train`'s defaults (shared memory, even split) unless `ws` / `speed`; with `variants`,
 * the 2-worker runs also over the socket alone (the transport before shared memory) and
 * with shared memory and the speed split, side by side in the same rounds.
 */
export function scalingConfigs(o: { ws?: boolean; speed?: boolean; variants?: boolean } = {}): ScalingConfig[] {
  const shm = !o.ws;
  const balance: Balance = o.speed ? 'speed' : 'even';
  const out: ScalingConfig[] = [];
  for (const batchSize of [128, 512]) {
    out.push({ batchSize, workers: 1, shm, balance }, { batchSize, workers: 2, shm, balance });
    if (o.variants) {
      for (const v of [{ shm: false, balance: 'even' as const }, { shm: true, balance: 'speed' as const }]) {
        if (v.shm !== shm || v.balance !== balance) out.push({ batchSize, workers: 2, ...v });
      }
    }
  }
  return out;
}

/** "shm, speed" / "socket, even". */
export function configLabel(c: Pick<ScalingConfig, 'shm' | 'balance'>): string {
  return `${c.shm ? 'shm' : 'socket'}, ${c.balance}`;
}

export interface ScalingBenchResult {
  machine: MachineInfo;
  workload: { model: string; data: string; optimizer: string; leafSize: number; kernel: string; paramCount: number };
  options: { repeat: number; steps: number; warmup: number };
  configs: Array<ScalingConfig & { runs: ScalingRunResult[]; summary: ScalingSummary }>;
  /** 2 workers over 1 worker, per batch size. */
  speedUps: Array<{ batchSize: number; ratio: number; min: number; max: number }>;
  codec: CodecThroughput;
  /** Core alone, 1 process at batch 512 vs 2 processes at 256 at once (points[0]): the best 2-worker speed-up of this host. */
  ceiling: HostCeiling;
}

/** The kernel measured: the default of `dptrain train` (wasm where WebAssembly SIMD validates, else js), or wasm-fma with --fma. */
export function benchKernel(fma: boolean): KernelName {
  if (fma) return 'wasm-fma';
  return availableKernels().includes('wasm') ? 'wasm' : 'js';
}

async function oneRun(c: ScalingConfig, steps: number, warmup: number, leafSize: number, kernel: KernelName): Promise<ScalingRunResult> {
  const { batchSize, workers } = c;
  const data = await loadDataset('mnist');
  const config = validateRunConfig({
    model: W_SPEC,
    data: data.ref,
    optimizer: { name: 'sgd', lr: W_LR },
    batchSize,
    leafSize,
    steps: warmup + steps,
    seed: 0,
    shuffle: true,
    kernel,
    evalEvery: 0,
  });
  // GC headroom for the ~1 MB results, as the dptrain command reserves it (heap-headroom.ts)
  const release = reserveHeapHeadroom(headroomFromEnv());
  try {
    return await measureScalingRun({ config, data: data.split, workers, warmup, steps, sharedMemory: c.shm, balance: c.balance });
  } finally {
    release();
  }
}

const kB = (b: number) => `${fmt(b / 1000, 1)} kB`;

/** The printed report. */
export function scalingReport(r: ScalingBenchResult): string {
  const w = r.workload;
  const lines = [
    `bench:scaling — ${w.model} (${fmt(w.paramCount)} parameters) on ${w.data}, ${w.optimizer}, leaf ${w.leafSize}, kernel ${w.kernel}; local worker processes over loopback WebSockets (payloads through shared memory where the transport says shm)`,
    `${r.machine.cpu}, nproc ${r.machine.nproc}, node ${r.machine.node}, ${r.machine.date}`,
    `${r.options.repeat} fresh runs per configuration × ${r.options.steps} timed steps (after ${r.options.warmup} warm-up steps); median (min–max) over the runs`,
    '',
    table(
      ['batch', 'workers', 'transport, split', 'samples/s', 'speed-up', 'sent/worker/step', 'recv/worker/step', 'raw payload/step', 'overhead', 'coord. CPU ms/step'],
      r.configs.map((c) => {
        const { summary: s, runs } = c;
        const base = r.configs.find((x) => x.batchSize === s.batchSize && x.workers === 1);
        const su = base && s.workers !== 1 ? speedUp(base.runs, runs) : undefined;
        return [
          String(s.batchSize),
          String(s.workers),
          configLabel(c),
          fmtSummary(s.samplesPerSec),
          su ? `${fmt(su.ratio, 2)}× (${fmt(su.min, 2)}–${fmt(su.max, 2)})` : '1',
          kB(s.sentPerWorker.median),
          kB(s.receivedPerWorker.median),
          kB(s.rawBytesPerStep),
          `${fmt(s.overheadPct.median, 3)} %`,
          fmtSummary(s.coordinatorCpuMsPerStep, 1),
        ];
      }),
    ),
    '',
    'step time by phase, ms (median over the timed steps, then median over the runs):',
    table(
      ['batch', 'workers', 'transport, split', 'compute', 'wait', 'reduce', 'update', 'broadcast', 'total (range)'],
      r.configs.map((c) => [
        String(c.batchSize),
        String(c.workers),
        configLabel(c),
        ...(['computeMs', 'waitMs', 'reduceMs', 'updateMs', 'broadcastMs'] as const).map((k) => fmt(c.summary.phases[k].median, 2)),
        fmtSummary(c.summary.phases.totalMs, 1),
      ]),
    ),
  ];
  const h = r.ceiling;
  for (const p of h.points) {
    lines.push(
      '',
      `host ceiling, core alone (no sockets), ${h.repeat} repeats: 1 process at batch ${h.batchSize}: ${fmtSummary(p.alone)} samples/s; ` +
        `${p.processes} processes at ${p.shareRows} at once: ${fmtSummary(p.together)} samples/s together = ${fmtSummary(p.ratio, 2)}×`,
    );
  }
  const inc = r.configs.reduce((a, c) => a + c.summary.incidents, 0);
  if (inc > 0) lines.push(`note: ${inc} reassigned/straggler event(s) during timed steps (their extra traffic is in the byte counts)`);
  const c = r.codec;
  const g = c.gbPerSec;
  lines.push(
    '',
    `protocol codec, ${fmt(c.paramCount)} float32 parameters (params frame ${fmt(c.frameBytes.params)} B, result frame ${fmt(c.frameBytes.result)} B), GB/s median (min–max):`,
    table(
      ['operation', 'encode', 'decode', 'encode+decode'],
      [
        ['params message', fmtSummary(g.paramsEncode, 2), fmtSummary(g.paramsDecode, 2), fmtSummary(g.paramsRoundTrip, 2)],
        ['result message', fmtSummary(g.resultEncode, 2), fmtSummary(g.resultDecode, 2), fmtSummary(g.resultRoundTrip, 2)],
        ['result via ResultFrame.finish (worker)', fmtSummary(g.resultFrameFinish, 2), fmtSummary(g.resultDecode, 2), fmtSummary(g.resultFrameRoundTrip, 2)],
        ['Float32Array.set (copy)', fmtSummary(g.float32ArraySet, 2), '', ''],
        ['Buffer.copy (copy)', fmtSummary(g.bufferCopy, 2), '', ''],
      ],
    ),
    '',
    'targets:',
    ...r.speedUps.map((s) => `  batch ${s.batchSize}: 2 workers = ${fmt(s.ratio, 2)}× 1 worker (paired runs ${fmt(s.min, 2)}–${fmt(s.max, 2)})${s.batchSize === 512 ? ' — target ≥ 1.7× (issue) / 1.8× (perf issue)' : ' — target ≥ 1× (no slower)'}`),
    `  protocol overhead: ${r.configs.map((x) => `${fmt(x.summary.overheadPct.median, 3)} %`).join(', ')} — target within 1 %`,
    `  encode+decode: params ${fmt(g.paramsRoundTrip.median, 2)} GB/s, result ${fmt(g.resultRoundTrip.median, 2)} GB/s (ResultFrame path ${fmt(g.resultFrameRoundTrip.median, 2)} GB/s) — target ≥ 1 GB/s`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), FLAGS);
  if (flags['run-batch'] > 0) {
    const c: ScalingConfig = { batchSize: flags['run-batch'], workers: Math.max(1, flags['run-workers']), shm: !flags.ws, balance: flags.speed ? 'speed' : 'even' };
    const r = await oneRun(c, flags.steps, flags.warmup, flags.leaf, benchKernel(flags.fma));
    console.log(JSON.stringify(r));
    return;
  }
  const log = flags.json ? () => {} : (s: string) => console.error(s);
  const kernel = benchKernel(flags.fma);
  const configsToRun = scalingConfigs({ ws: flags.ws, speed: flags.speed, variants: flags.variants });
  log(`kernel ${kernel} (available: ${availableKernels().join(', ')}); ${flags.repeat} × ${configsToRun.length} runs of ${flags.warmup} + ${flags.steps} steps…`);
  const runs = configsToRun.map(() => [] as ScalingRunResult[]);
  const script = fileURLToPath(import.meta.url);
  for (let rep = 0; rep < flags.repeat; rep++) {
    const order = configsToRun.map((_, i) => i);
    if (rep % 2 === 1) order.reverse();
    for (const i of order) {
      const c = configsToRun[i];
      const args = ['--run-batch', String(c.batchSize), '--run-workers', String(c.workers), '--steps', String(flags.steps), '--warmup', String(flags.warmup), '--leaf', String(flags.leaf)];
      if (flags.fma) args.push('--fma');
      if (!c.shm) args.push('--ws');
      if (c.balance === 'speed') args.push('--speed');
      const [r] = inFreshProcesses<ScalingRunResult>(script, args, 1);
      runs[i].push(r);
      log(`  batch ${c.batchSize}, ${c.workers} worker(s) (${configLabel(c)}), run ${rep + 1}/${flags.repeat}: ${fmt(r.samplesPerSec)} samples/s, step ${fmt(r.phases.totalMs, 1)} ms`);
    }
  }
  log('host ceiling (core alone: 1 process at batch 512 vs 2 processes at once, each with half the leaves)…');
  const ceiling = await hostCeiling({ spec: W_SPEC, leafSize: flags.leaf, kernel, batchSize: 512, processes: [2], repeat: flags.repeat, durationMs: 2000 });
  log('protocol codec…');
  const codec = codecThroughput(1_000_000, flags['codec-runs']);
  const configs = configsToRun.map((c, i) => ({ ...c, runs: runs[i], summary: summarizeRuns(runs[i]) }));
  const speedUps = [128, 512].map((b) => {
    const one = configs.find((c) => c.batchSize === b && c.workers === 1)!;
    const two = configs.find((c) => c.batchSize === b && c.workers === 2 && c.shm === one.shm && c.balance === one.balance)!;
    return { batchSize: b, ...speedUp(one.runs, two.runs) };
  });
  const first = runs[0][0];
  const result: ScalingBenchResult = {
    machine: machineInfo(),
    workload: { model: '784-256-128-10 (ReLU, softmax CE)', data: 'mnist (8,000 train)', optimizer: `sgd lr ${W_LR}`, leafSize: first.leafSize, kernel: first.kernel, paramCount: first.paramCount },
    options: { repeat: flags.repeat, steps: flags.steps, warmup: flags.warmup },
    configs,
    speedUps,
    codec,
    ceiling,
  };
  console.log(flags.json ? JSON.stringify(result, null, 2) : scalingReport(result));
}

if (isMain(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
