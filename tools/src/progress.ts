import cliProgress from 'cli-progress';

export type ProgressMode = 'json' | 'bar' | 'plain';

/** What a progress line shows for one step (a coordinator step event or core's onStep). */
export interface StepLine {
  step: number;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
  samples: number;
  /** This step's own rate, shown until a rate over several steps is known. */
  samplesPerSec?: number;
  workers?: number;
}

export interface EvalLine {
  step: number;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
}

/** The end of a run, as printed. */
export interface RunSummaryLine {
  runId: string;
  steps: number;
  epochs: number;
  test: { loss: number; accuracy: number; samples: number };
  checkpoint: string;
  wallMs: number;
  samplesPerSec: number;
  workers: number;
}

/** A run stopped by a signal (see Progress.interrupted). */
export interface InterruptedLine {
  signal: string;
  /** The last completed step (the checkpoint holds it). */
  step: number;
  totalSteps: number;
  /** The resume checkpoint written, if any. */
  checkpoint: string | undefined;
  /** The command line that continues the run, for people. */
  resume: string;
  /** The same as arguments of `dptrain`, for machines. */
  resumeArgs: string[];
}

export interface ProgressOptions {
  mode: ProgressMode;
  totalSteps: number;
  /** Plain mode prints a line at most this often (default 2000 ms), and always for the last step. */
  intervalMs?: number;
  out?: NodeJS.WriteStream;
  err?: NodeJS.WriteStream;
  now?: () => number;
}

const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? '-' : `${(100 * v).toFixed(2)}%`);
const fix = (v: number | null, d = 4) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(d));

/** Seconds as "1m05s" / "12s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '-';
  const r = Math.round(s);
  return r >= 60 ? `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s` : `${r}s`;
}

/** The mode for this stdout: json when asked, a bar on a TTY, plain lines otherwise. */
export function progressMode(json: boolean, out: NodeJS.WriteStream = process.stdout): ProgressMode {
  return json ? 'json' : out.isTTY ? 'bar' : 'plain';
}

/**
 * Run progress for people and machines: a cli-progress bar (step x/N, epoch, loss, accuracy,
 * samples/s, ETA) on a TTY, a plain line every couple of seconds otherwise, or one JSON
 * object per line with `--json` (then nothing else goes to stdout; logs go to stderr).
 */
export class Progress {
  private readonly opts: Required<ProgressOptions>;
  private bar: cliProgress.SingleBar | undefined;
  /** Time and step of the first step seen: rates and ETA are measured from there. */
  private first: { t: number; step: number } | undefined;
  private samples = 0;
  private lastPrint = -Infinity;

  constructor(opts: ProgressOptions) {
    this.opts = { intervalMs: 2000, out: process.stdout, err: process.stderr, now: () => performance.now(), ...opts };
  }

  private print(line: string): void {
    this.opts.out.write(`${line}\n`);
  }

  private json(obj: Record<string, unknown>): void {
    this.print(JSON.stringify(obj));
  }

  /** A line for people: stdout in bar/plain mode, stderr in json mode. */
  info(line: string): void {
    if (this.opts.mode === 'json') this.opts.err.write(`${line}\n`);
    else if (this.bar) this.opts.out.write(`\r\x1b[K${line}\n`);
    else this.print(line);
  }

  /** A log line for stderr (clearing the bar's line first when a bar is showing). */
  log(line: string): void {
    this.opts.err.write(this.bar ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  /** The coordinator is listening. */
  listening(url: string, extra: Record<string, unknown> = {}): void {
    if (this.opts.mode === 'json') this.json({ kind: 'listening', url, ...extra });
    else this.info(`coordinator listening on ${url}`);
  }

  /** Where the dashboard is: a line on stderr, and a JSON line {kind: 'dashboard', url} in json mode. */
  dashboard(url: string, tokenRequired = false): void {
    this.log(`dashboard: ${url}`);
    if (tokenRequired) this.log('  (it asks for the run token once: add ?token=TOKEN to that address)');
    if (this.opts.mode === 'json') this.json({ kind: 'dashboard', url });
  }

  /**
   * The run was stopped by a signal: where its checkpoint is and the command that resumes
   * it (stderr; also a JSON line {kind: 'interrupted', ...} in json mode).
   */
  interrupted(i: InterruptedLine): void {
    this.stop();
    this.log(`interrupted by ${i.signal} at step ${i.step} of ${i.totalSteps}`);
    this.log(i.checkpoint ? `checkpoint: ${i.checkpoint}` : 'no checkpoint could be written (see the messages above)');
    if (i.checkpoint) this.log(`resume with: ${i.resume}`);
    if (this.opts.mode === 'json') this.json({ kind: 'interrupted', ...i });
  }

  step(e: StepLine): void {
    const now = this.opts.now();
    if (this.first) this.samples += e.samples;
    else this.first = { t: now, step: e.step };
    const elapsed = (now - this.first.t) / 1000;
    const done = e.step - this.first.step;
    const sps = elapsed > 0 && done > 0 ? this.samples / elapsed : (e.samplesPerSec ?? NaN);
    const total = this.opts.totalSteps;
    const eta = done > 0 ? (elapsed / done) * (total - e.step) : NaN;
    if (this.opts.mode === 'json') {
      this.json({ kind: 'step', ...e });
      return;
    }
    if (this.opts.mode === 'bar') {
      const payload = { epoch: e.epoch, loss: fix(e.loss), acc: pct(e.accuracy), sps: Number.isFinite(sps) ? Math.round(sps) : '-', eta: formatSeconds(eta) };
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          { format: '{bar} step {value}/{total} | ep {epoch} | loss {loss} | acc {acc} | {sps}/s | ETA {eta}', barsize: 12, stream: this.opts.out, hideCursor: true, fps: 10 },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total, e.step, payload);
      } else this.bar.update(e.step, payload);
      return;
    }
    if (now - this.lastPrint >= this.opts.intervalMs || e.step >= total) {
      this.lastPrint = now;
      this.print(`step ${e.step}/${total}  epoch ${e.epoch}  loss ${fix(e.loss)}  acc ${pct(e.accuracy)}  ${Number.isFinite(sps) ? Math.round(sps) : '-'} samples/s  ETA ${formatSeconds(eta)}`);
    }
  }

  eval(e: EvalLine): void {
    if (this.opts.mode === 'json') this.json({ kind: 'eval', ...e });
    else this.info(`eval @ step ${e.step} (epoch ${e.epoch}): test loss ${fix(e.loss)}  accuracy ${pct(e.accuracy)}`);
  }

  /** Any other run event (workers joining, errors): a JSON line, or in text modes `text` if given. */
  event(kind: string, e: Record<string, unknown>, text: string | undefined): void {
    if (this.opts.mode === 'json') this.json({ ...e, kind });
    else if (text !== undefined) this.info(text);
  }

  /** The final summary; in text modes its last line names the checkpoint. */
  summary(s: RunSummaryLine): void {
    this.stop();
    if (this.opts.mode === 'json') {
      this.json({ kind: 'summary', ...s });
      return;
    }
    this.print(`finished ${s.steps} steps (${s.epochs} epochs) in ${(s.wallMs / 1000).toFixed(1)} s, ${Math.round(s.samplesPerSec)} samples/s, ${s.workers === 0 ? 'in process' : `${s.workers} worker(s)`}`);
    this.print(`test: loss ${fix(s.test.loss)}  accuracy ${pct(s.test.accuracy)}  (${s.test.samples} samples)`);
    this.print(`checkpoint: ${s.checkpoint}`);
  }

  /** Stop the bar (idempotent). */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
