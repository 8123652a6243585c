import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DataError, fingerprintChunks } from '@dptrain/core';
import type { Dataset } from '@dptrain/core';

/** Read a whole file; a missing or unreadable file becomes a DataError naming the path and what was expected. */
export async function readInput(path: string, expected: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.code ?? err.message;
    throw new DataError(`cannot read ${resolve(path)} (${why}): expected ${expected}`);
  }
}

/** Read a UTF-8 text file (see readInput). */
export async function readText(path: string, expected: string): Promise<string> {
  return new TextDecoder().decode(await readInput(path, expected));
}

/**
 * The same digest as core's fingerprint(ds) (SHA-256 over the same bytes), computed with
 * node:crypto: about 15× faster than the portable JavaScript hash.
 */
export function fingerprintNode(ds: Dataset): string {
  const h = createHash('sha256');
  for (const c of fingerprintChunks(ds)) h.update(c);
  return h.digest('hex');
}
