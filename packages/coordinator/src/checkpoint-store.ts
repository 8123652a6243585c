import { existsSync, readFileSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError, ConfigError, type RunConfig } from '@dptrain/core';
import { writeFileAtomic } from './checkpoint-io.js';
import { type ResumeState, resumeStateFrom } from './resume.js';

/** The resume checkpoint written every N steps / T seconds and on request. */
export const LATEST_CHECKPOINT = 'latest.safetensors';
/** The resume checkpoint before the latest one (kept in case the latest is damaged). */
export const PREVIOUS_CHECKPOINT = 'previous.safetensors';
/** The checkpoint written when the run finishes. */
export const FINAL_CHECKPOINT = 'final.safetensors';

/**
 * The checkpoint files of a run directory. Writes are atomic (temporary file, fsync,
 * rename, fsync of the directory) and serialised: one at a time, in call order.
 */
export class CheckpointStore {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {}

  /**
   * Write `bytes` as latest.safetensors; the old latest becomes previous.safetensors. Resolves
   * with the path. latest.safetensors exists at every instant once written: the old one is
   * hard-linked (or, where links fail, copied) to previous, then the new one is renamed over
   * it — renaming the old one away first left a window without a latest for a kill to hit.
   */
  saveLatest(bytes: Uint8Array): Promise<string> {
    const latest = join(this.dir, LATEST_CHECKPOINT);
    const previous = join(this.dir, PREVIOUS_CHECKPOINT);
    return this.enqueue(latest, bytes, async () => {
      if (!existsSync(latest)) return;
      await rm(previous, { force: true });
      await link(latest, previous).catch(() => copyFile(latest, previous));
    });
  }

  /** Write `bytes` as final.safetensors. Resolves with the path. */
  saveFinal(bytes: Uint8Array): Promise<string> {
    return this.enqueue(join(this.dir, FINAL_CHECKPOINT), bytes);
  }

  /** Resolves when every write queued so far has ended (successfully or not). */
  async idle(): Promise<void> {
    await this.chain.catch(() => {});
  }

  private enqueue(path: string, bytes: Uint8Array, beforeRename?: () => Promise<void>): Promise<string> {
    const run = async () => {
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(path, bytes, beforeRename);
      return path;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }
}

/**
 * Read and verify the checkpoint to resume from. `path` is a checkpoint file, or a run
 * directory: its latest.safetensors, else (missing or damaged) previous.safetensors, else
 * final.safetensors. Damage is a CheckpointError (all candidates named when none is
 * usable); a checkpoint of another run configuration or training set is a ConfigError
 * (see resumeStateFrom), never a reason to fall back.
 */
export function loadResumeCheckpoint(path: string, config: RunConfig, trainN: number, log: (line: string) => void = () => {}): { state: ResumeState; file: string } {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    throw new ConfigError('resumeFrom', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const candidates = isDir ? [LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT, FINAL_CHECKPOINT].map((f) => join(path, f)) : [path];
  const problems: string[] = [];
  for (const file of candidates) {
    if (!existsSync(file)) {
      problems.push(`${file}: missing`);
      continue;
    }
    try {
      const state = resumeStateFrom(readFileSync(file), config, trainN, file);
      if (problems.length > 0) log(`resume: using ${file} (${problems.join('; ')})`);
      return { state, file };
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      problems.push(e.message);
    }
  }
  throw new CheckpointError(`resumeFrom: no usable checkpoint: ${problems.join('; ')}`);
}
