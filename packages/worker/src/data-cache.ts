import { createHash } from 'node:crypto';
import { type DatasetSplit, fingerprintChunks } from '@dptrain/core';

/** A loaded dataset with the fingerprint of its training split. */
export interface LoadedData {
  split: DatasetSplit;
  /** fingerprint(split.train), computed with node:crypto (same digest as core's). */
  fingerprint: string;
  loadMs: number;
}

/** Same digest as core's fingerprint(), with node:crypto's faster SHA-256. */
export function nodeFingerprint(ds: DatasetSplit['train']): string {
  const h = createHash('sha256');
  for (const c of fingerprintChunks(ds)) h.update(c);
  return h.digest('hex');
}

/**
 * Loads each dataset reference once per process: a reconnecting worker does not reload or
 * rehash its data. A failed load is forgotten, so a later attempt retries it.
 */
export class DataCache {
  private readonly entries = new Map<string, Promise<LoadedData>>();
  constructor(private readonly load: (ref: string) => Promise<DatasetSplit>) {}

  get(ref: string): Promise<LoadedData> {
    let p = this.entries.get(ref);
    if (!p) {
      const t0 = performance.now();
      p = this.load(ref).then((split) => ({ split, fingerprint: nodeFingerprint(split.train), loadMs: performance.now() - t0 }));
      p.catch(() => this.entries.delete(ref));
      this.entries.set(ref, p);
    }
    return p;
  }
}
