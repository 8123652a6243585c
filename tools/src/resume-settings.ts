import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FINAL_CHECKPOINT, LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT } from '@dptrain/coordinator';
import { ConfigError, type RunConfig, decodeCheckpoint, validateRunConfig } from '@dptrain/core';
import type { FileConfig } from './config-file.js';

/** Whether `path` is a directory (false for a file); ConfigError('resume') if it cannot be read. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (e) {
    throw new ConfigError('resume', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The run directory a resumed run writes to by default: the directory given, or the checkpoint file's directory. */
export function resumeDir(path: string): string {
  return isDirectory(path) ? path : dirname(path);
}

/** The run settings stored in a checkpoint's training metadata, as config-file settings. */
export function settingsOf(config: RunConfig): FileConfig {
  const s: FileConfig = {
    model: config.model as unknown as Record<string, unknown>,
    data: config.data,
    optimizer: config.optimizer as unknown as Record<string, unknown>,
    batchSize: config.batchSize,
    leafSize: config.leafSize,
    epochs: config.epochs,
    seed: config.seed,
    shuffle: config.shuffle,
    kernel: config.kernel,
    evalEvery: config.evalEvery,
  };
  if (config.steps !== undefined) s.steps = config.steps;
  return s;
}

/**
 * The run settings of the checkpoint `--resume PATH` names (a file, or a run directory:
 * its latest, else previous, else final.safetensors — the first one that decodes), so a
 * resumed run needs no other flag to continue. Settings given in a config file or as
 * flags override them (and the coordinator then refuses a checkpoint that disagrees).
 * A checkpoint without (valid) training metadata gives no settings.
 */
export async function resumeSettings(path: string): Promise<FileConfig> {
  const files = isDirectory(path) ? [LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT, FINAL_CHECKPOINT].map((f) => join(path, f)) : [path];
  const problems: string[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (e) {
      problems.push(`${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    try {
      const stored = decodeCheckpoint(bytes).training?.config;
      if (stored === undefined) return {};
      try {
        return settingsOf(validateRunConfig(stored));
      } catch {
        return {}; // the coordinator's own check of the checkpoint names the damage
      }
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
    }
  }
  throw new ConfigError('resume', `no usable checkpoint: ${problems.join('; ')}`);
}
