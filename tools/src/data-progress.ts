import cliProgress from 'cli-progress';
import type { Progress } from './data/mnist.js';

export interface DataProgress {
  onProgress: Progress;
  /** Close the bar (or print the plain closing line); safe to call twice. */
  done(): void;
}

/**
 * Progress while a dataset loads: a cli-progress bar on stderr when it is a terminal
 * (phase, done/total), else one line at the start and one at the end, so logs stay
 * readable. Never writes to stdout (which --json keeps for machine lines).
 */
export function dataProgress(ref: string, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): DataProgress {
  const t0 = now();
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let closed = false;
  if (!tty) stream.write(`loading ${ref} …\n`);
  return {
    onProgress(phase, done, total) {
      if (!tty || closed) return;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { stream, format: `loading ${ref} {phase} |{bar}| {value}/{total}`, hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(total, 1), done, { phase });
      } else {
        bar.setTotal(Math.max(total, 1));
        bar.update(done, { phase });
      }
    },
    done() {
      if (closed) return;
      closed = true;
      bar?.stop();
      stream.write(`loaded ${ref} in ${now() - t0} ms\n`);
    },
  };
}
