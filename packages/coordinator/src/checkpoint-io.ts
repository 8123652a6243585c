import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  EpochSampler,
  type OptimizerState,
  type RunConfig,
  type SamplerState,
  encodeCheckpoint,
  runSeeds,
  validateRunConfig,
} from '@dptrain/core';

/** Everything the final checkpoint holds. */
export interface FinalCheckpointInput {
  config: RunConfig;
  params: Float32Array;
  optimizer: OptimizerState;
  /** Updates applied. */
  step: number;
  /** Full epochs completed. */
  epoch: number;
  /** The sampler's position after the last step. */
  sampler: SamplerState;
}

/**
 * The final checkpoint's bytes: encodeCheckpoint({ spec, params, optimizer: { config, state },
 * training: { step, epoch, seed, sampler, config } }). The config is re-validated so its key
 * order is canonical. No timestamps, worker counts or paths: the same run gives the same
 * bytes, however many workers computed it (and core's train() gives them too).
 */
export function encodeFinalCheckpoint(c: FinalCheckpointInput): Uint8Array {
  const config = validateRunConfig(c.config);
  return encodeCheckpoint({
    spec: config.model,
    params: c.params,
    optimizer: { config: config.optimizer, state: c.optimizer },
    training: { step: c.step, epoch: c.epoch, seed: config.seed, sampler: { epoch: c.sampler.epoch, cursor: c.sampler.cursor }, config },
  });
}

/**
 * The sampler position after `steps` batches of a run with this config over `n` training
 * samples: what the coordinator's sampler.state() is at the end. Lets a caller build the
 * final checkpoint of a core train() result with encodeFinalCheckpoint.
 */
export function samplerStateAfter(config: RunConfig, n: number, steps: number): SamplerState {
  const c = validateRunConfig(config);
  const s = new EpochSampler({ n, batchSize: c.batchSize, seed: runSeeds(c.seed).sampler, shuffle: c.shuffle });
  const per = s.batchesPerEpoch;
  // a sampler state is (epoch, cursor): batches never straddle epochs
  const epoch = Math.floor(steps / per);
  const cursor = (steps % per) * c.batchSize;
  return EpochSampler.fromState({ n, batchSize: c.batchSize, seed: runSeeds(c.seed).sampler, shuffle: c.shuffle }, { epoch, cursor }).state();
}

let tmpCounter = 0;

/**
 * Write a file atomically: a temporary file in the same directory, fsync, rename over
 * `path`, fsync the directory. Readers see the old file or the new one, never a mix.
 * `beforeRename` runs once the new bytes are durable, just before they replace `path`
 * (e.g. to keep the old file under another name).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, beforeRename?: () => Promise<void>): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++tmpCounter}.tmp`);
  let renamed = false;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      let off = 0;
      while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (beforeRename) await beforeRename();
    await rename(tmp, path);
    renamed = true;
    await syncDir(dir);
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {});
  }
}

/** fsync a directory so a rename in it is durable (a no-op where directories cannot be opened, e.g. Windows). */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    await fh.close();
  }
}
