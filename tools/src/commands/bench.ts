import { ConfigError, type KernelName, type RunConfig, leafCount } from '@dptrain/core';
import { kernelFlag } from '../flags.js';
import { Command, Option } from 'commander';
import type { HostCeiling } from '../bench/host-ceiling.js';
import type { ScalingRunResult } from '../bench/scaling-run.js';
import { addRunOptions } from '../run-flags.js';

/** Run settings of `train` that `bench` sets itself (or does not use). */
const NOT_RUN_FLAGS = new Set(['workers', 'steps', 'epochs', 'port', 'checkpointDir', 'kernel']);

/** Defaults of the bench-only flags. */
export const BENCH_DEFAULTS = { workers: '1,2', steps: 50, warmup: 5, repeat: 3, ceilingMs: 2000, ceilingLeadMs: 2000 };

/** Parse `--workers 1,2,4`: distinct integers in [1, 256], returned ascending. Throws ConfigError('--workers'). */
export function parseWorkerList(text: string): number[] {
  const bad = () => new ConfigError('--workers', `expected a comma-separated list of worker counts in [1, 256] like 1,2,4, got ${JSON.stringify(text)}`);
  if (typeof text !== 'string' || text.trim() === '') throw bad();
  const out = text.split(',').map((p) => {
    const t = p.trim();
    const v = Number(t);
    if (!/^\d+$/.test(t) || v < 1 || v > 256) throw bad();
    return v;
  });
  if (new Set(out).size !== out.length) throw new ConfigError('--workers', `each worker count once, got ${JSON.stringify(text)}`);
  return out.sort((a, b) => a - b);
}

/** An integer flag in [lo, hi], or its default when not given. */
function intOpt(flag: string, text: string | undefined, def: number, lo: number, hi: number): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v) || v < lo || v > hi) throw new ConfigError(flag, `expected an integer in [${lo}, ${hi}], got ${JSON.stringify(text)}`);
  return v;
}

/** The chart path: --out (must end in .svg or .html), else bench-<UTC timestamp>.html in the current directory. */
export function chartPath(out: string | undefined, now = new Date()): string {
  if (out === undefined) return `bench-${now.toISOString().replace(/[-:]/g, '').slice(0, 15)}.html`;
  if (!/\.(svg|html?)$/i.test(out)) throw new ConfigError('--out', `expected a file name ending in .svg or .html, got ${JSON.stringify(out)}`);
  return out;
}

/** `dptrain bench`: the same run at several local worker counts; prints a table and writes a chart. */
export function benchCommand(): Command {
  const cmd = new Command('bench').description(
    'measure scaling: the same run with each number of local worker processes (timed steps after a warm-up); prints a table and writes a chart (.html or .svg)',
  );
  for (const opt of addRunOptions(new Command(), 'train').options) if (!NOT_RUN_FLAGS.has(opt.attributeName()) && opt.attributeName() !== 'json') cmd.addOption(opt);
  cmd
    .option('--json', 'print one JSON object (settings, every run, the summaries) instead of the table')
    .option('--kernel <name>', 'js | wasm (default: the fastest this runtime has, wasm where WebAssembly SIMD works)')
    .option('--workers <list>', `worker counts to measure, comma-separated (default ${BENCH_DEFAULTS.workers})`)
    .option('--steps <n>', `timed steps per run (default ${BENCH_DEFAULTS.steps})`)
    .option('--warmup <n>', `untimed steps before them (default ${BENCH_DEFAULTS.warmup})`)
    .option('--repeat <k>', `runs per worker count, each with fresh worker processes (default ${BENCH_DEFAULTS.repeat})`)
    .option('--out <file>', 'chart file: .html (a page with the chart and the table) or .svg (default bench-<timestamp>.html)')
    .option('--balance <how>', "split each step's leaves evenly (even, the default) or by the workers' measured speed (speed)")
    .option('--no-shm', 'keep params and gradients on the socket (no shared-memory data plane for the local workers)')
    .option('--no-ceiling', "skip the host ceiling (after the runs, by default: the best speed-up each worker count can reach on this host before any communication, measured with the model's compute alone)")
    // internal (tests): the ceiling's timed window and the start-up time its processes get before it
    .addOption(new Option('--ceiling-ms <ms>').hideHelp())
    .addOption(new Option('--ceiling-lead-ms <ms>').hideHelp());
  cmd.action(async (_opts: unknown, self: Command) => {
    const o = self.opts();
    const workers = parseWorkerList(o.workers ?? BENCH_DEFAULTS.workers);
    const steps = intOpt('--steps', o.steps, BENCH_DEFAULTS.steps, 1, 1_000_000);
    const warmup = intOpt('--warmup', o.warmup, BENCH_DEFAULTS.warmup, 1, 1_000_000);
    const repeat = intOpt('--repeat', o.repeat, BENCH_DEFAULTS.repeat, 1, 1000);
    const out = chartPath(o.out);
    if (o.kernel !== undefined) kernelFlag('--kernel', o.kernel);
    const balance = o.balance ?? 'even';
    if (balance !== 'even' && balance !== 'speed') throw new ConfigError('--balance', `expected even or speed, got ${JSON.stringify(balance)}`);
    // heavy modules load here, so `dptrain worker` processes start faster
    const ceiling = o.ceiling === false ? undefined : { durationMs: intOpt('--ceiling-ms', o.ceilingMs, BENCH_DEFAULTS.ceilingMs, 1, 600_000), leadMs: intOpt('--ceiling-lead-ms', o.ceilingLeadMs, BENCH_DEFAULTS.ceilingLeadMs, 0, 600_000) };
    process.exitCode = await runBench(self, { workers, steps, warmup, repeat, out, kernel: o.kernel as BenchSettings['kernel'], sharedMemory: o.shm !== false, balance, ceiling });
  });
  return cmd;
}

interface BenchSettings {
  workers: number[];
  steps: number;
  warmup: number;
  repeat: number;
  out: string;
  kernel?: KernelName;
  sharedMemory: boolean;
  balance: 'even' | 'speed';
  /** The host ceiling's window and start-up lead, or undefined with --no-ceiling. */
  ceiling?: { durationMs: number; leadMs: number };
}

/**
 * A `train` command carrying the run flags given to `bench`, plus the settings bench
 * decides (steps = warm-up + timed, one worker for validation, the kernel), so that
 * resolveRunPlan validates and resolves exactly as for `dptrain train`.
 */
function planCommand(bench: Command, s: BenchSettings, kernel: string): Command {
  const shadow = addRunOptions(new Command('bench'), 'train');
  for (const opt of shadow.options) {
    const k = opt.attributeName();
    if (!NOT_RUN_FLAGS.has(k) && bench.getOptionValueSource(k) === 'cli') shadow.setOptionValueWithSource(k, bench.getOptionValue(k), 'cli');
  }
  shadow.setOptionValueWithSource('steps', String(s.warmup + s.steps), 'cli');
  shadow.setOptionValueWithSource('workers', '1', 'cli');
  shadow.setOptionValueWithSource('kernel', kernel, 'cli');
  return shadow;
}

const kB = (b: number) => `${(b / 1000).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} kB`;

/** Run the benchmark; resolves with the exit code. */
async function runBench(cmd: Command, s: BenchSettings): Promise<number> {
  const { availableKernels } = await import('@dptrain/core');
  const { readConfigFile } = await import('../config-file.js');
  const { resolveRunPlan } = await import('../run-options.js');
  const { measureScalingRun, speedUp, summarizeRuns } = await import('../bench/scaling-run.js');
  const { writeChart } = await import('../bench/chart.js');
  const { fmt, fmtSummary, machineInfo, table } = await import('../bench/util.js');

  const configPath: string | undefined = cmd.getOptionValueSource('config') === 'cli' ? cmd.opts().config : undefined;
  const fileKernel = configPath !== undefined ? (await readConfigFile(configPath)).kernel : undefined;
  const kernel = s.kernel ?? fileKernel ?? (availableKernels().includes('wasm') ? 'wasm' : 'js');
  const plan = await resolveRunPlan(planCommand(cmd, s, kernel), 'train');
  const c = plan.config;
  const L = leafCount(c.batchSize, c.leafSize);
  const most = s.workers[s.workers.length - 1];
  if (most > L) throw new ConfigError('--workers', `each worker needs at least one leaf: a batch of ${c.batchSize} has ${L} leaves of ${c.leafSize}, got ${most} workers`);

  const say = (line: string) => process.stderr.write(`${line}\n`);
  const info = plan.json ? () => {} : say;
  info(`bench: ${plan.data.description}; batch ${c.batchSize} (leaves of ${c.leafSize}), ${c.optimizer.name} lr ${c.optimizer.lr}, kernel ${c.kernel}; workers ${s.workers.join(', ')} (${s.sharedMemory ? 'shared memory' : 'socket only'}, ${s.balance} split); ${s.repeat} run(s) × ${s.warmup} + ${s.steps} steps`);
  const runs = new Map<number, ScalingRunResult[]>(s.workers.map((w) => [w, []]));
  for (let rep = 0; rep < s.repeat; rep++) {
    const order = rep % 2 === 0 ? s.workers : [...s.workers].reverse();
    for (const w of order) {
      const r = await measureScalingRun({
        config: c,
        data: plan.data.split,
        workers: w,
        warmup: s.warmup,
        steps: s.steps,
        host: plan.host,
        initParams: plan.initParams,
        log: plan.verbose ? say : undefined,
        sharedMemory: s.sharedMemory,
        balance: s.balance,
      });
      runs.get(w)!.push(r);
      info(`  ${w} worker(s), run ${rep + 1}/${s.repeat}: ${fmt(r.samplesPerSec)} samples/s, step ${fmt(r.phases.totalMs, 1)} ms`);
    }
  }

  const ceiling = s.ceiling ? await measureCeiling(c, s, s.ceiling, info, plan.verbose ? say : undefined) : undefined;
  const base = runs.get(s.workers[0])!;
  const rows = s.workers.map((w) => {
    const rs = runs.get(w)!;
    const sum = summarizeRuns(rs);
    const su = speedUp(base, rs);
    return { summary: sum, speedUp: su, efficiency: (su.ratio * s.workers[0]) / w, ceiling: ceiling?.points.find((p) => p.processes === w) ?? null };
  });
  const header = ['workers', 'samples/s', 'speed-up', 'host ceiling', 'efficiency', 'bytes/worker/step', 'overhead', 'compute ms', 'wait ms', 'reduce ms', 'update ms', 'broadcast ms', 'step ms'];
  const cells = rows.map(({ summary: m, speedUp: su, efficiency, ceiling: h }) => [
    String(m.workers),
    fmtSummary(m.samplesPerSec),
    `${fmt(su.ratio, 2)}×`,
    h ? `${fmt(h.ratio.median, 2)}×` : '—',
    fmt(efficiency, 2),
    kB(m.sentPerWorker.median + m.receivedPerWorker.median),
    `${fmt(m.overheadPct.median, 2)} %`,
    ...(['computeMs', 'waitMs', 'reduceMs', 'updateMs', 'broadcastMs', 'totalMs'] as const).map((k) => fmt(m.phases[k].median, 2)),
  ]);
  const machine = machineInfo();
  const dims = [c.model.inputSize, ...c.model.layers.map((l) => l.units)].join('-');
  const ceilingLine = ceilingNote(s, ceiling, c.batchSize);
  await writeChart(
    s.out,
    {
      title: `dptrain scaling: ${dims} on ${c.data}, batch ${c.batchSize}`,
      notes: [
        `${c.optimizer.name} lr ${c.optimizer.lr}, leaves of ${c.leafSize}, kernel ${c.kernel}; ${s.repeat} run(s) per worker count × ${s.steps} timed steps after ${s.warmup} warm-up steps; medians (range over runs)`,
        `${machine.cpu}, nproc ${machine.nproc}, node ${machine.node}, ${machine.date}`,
        ...(ceilingLine ? [ceilingLine] : []),
      ],
      points: rows.map(({ summary: m, efficiency, ceiling: h }) => ({
        workers: m.workers,
        ...(h ? { ceiling: h.ratio.median } : {}),
        samplesPerSec: m.samplesPerSec.median,
        samplesPerSecRange: [m.samplesPerSec.min, m.samplesPerSec.max],
        efficiency,
        phases: {
          computeMs: m.phases.computeMs.median,
          waitMs: m.phases.waitMs.median,
          reduceMs: m.phases.reduceMs.median,
          updateMs: m.phases.updateMs.median,
          broadcastMs: m.phases.broadcastMs.median,
          totalMs: m.phases.totalMs.median,
        },
      })),
    },
    { header, rows: cells },
  );
  if (plan.json) {
    const options = { workers: s.workers, steps: s.steps, warmup: s.warmup, repeat: s.repeat, sharedMemory: s.sharedMemory, balance: s.balance, ceiling: s.ceiling ?? null };
    const json = { kind: 'bench', machine, config: c, options, chart: s.out, rows, runs: Object.fromEntries(runs) };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } else {
    process.stdout.write(`${table(header, cells)}\n\n${ceilingLine ? `${ceilingLine}\n` : ''}chart written to ${s.out}\n`);
  }
  return 0;
}

/**
 * The host ceiling for every worker count > 1 of the bench (the run's model, kernel,
 * leaves and global batch; one measurement per --repeat), or undefined when there is no
 * such count or the measurement failed (said on stderr: the runs are kept).
 */
async function measureCeiling(c: RunConfig, s: BenchSettings, o: { durationMs: number; leadMs: number }, info: (line: string) => void, log?: (line: string) => void): Promise<HostCeiling | undefined> {
  const processes = s.workers.filter((w) => w > 1);
  if (processes.length === 0) return undefined;
  const { hostCeiling } = await import('../bench/host-ceiling.js');
  info(`host ceiling: the compute alone (no sockets), 1 process at batch ${c.batchSize} against ${processes.join(', ')} at once; ${s.repeat} × ${processes.length + 1} windows of ${o.durationMs} ms…`);
  try {
    return await hostCeiling({ spec: c.model, leafSize: c.leafSize, kernel: c.kernel, batchSize: c.batchSize, processes, repeat: s.repeat, durationMs: o.durationMs, leadMs: o.leadMs, onProgress: log && ((what) => log(`  ceiling: ${what}`)) });
  } catch (e) {
    process.stderr.write(`host ceiling not measured: ${e instanceof Error ? e.message : String(e)}\n`);
    return undefined;
  }
}

const fmtMs = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** The note that says what the host ceiling column is (undefined when the bench has no worker count > 1). */
function ceilingNote(s: BenchSettings, h: HostCeiling | undefined, batchSize: number): string | undefined {
  if (!s.workers.some((w) => w > 1)) return undefined;
  if (!s.ceiling) return 'host ceiling: not measured (--no-ceiling)';
  if (!h) return 'host ceiling: not measured (the measurement failed, see the log)';
  const base = s.workers[0] === 1 ? '' : `; relative to 1 process, not to the ${s.workers[0]}-worker baseline of the speed-up column`;
  return (
    `host ceiling: the best speed-up N workers can reach on this host before any communication (a speed-up near it is the host's limit, one well below it dptrain's overhead): ` +
    `the compute alone, no sockets, N processes at once each on the largest share of an even split against 1 process on the whole batch of ${batchSize}, ` +
    `${fmtMs(h.durationMs)} windows, median of ${h.repeat}${base}`
  );
}
