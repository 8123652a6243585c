import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Dataset } from './dataset.js';
import { assertDataset } from './dataset.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Little-endian bytes of a float32 array: a view on little-endian hosts, a swapped copy otherwise. */
function leBytes(a: Float32Array): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE_ENDIAN) return view;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += 4) {
    out[i] = view[i + 3];
    out[i + 1] = view[i + 2];
    out[i + 2] = view[i + 1];
    out[i + 3] = view[i];
  }
  return out;
}

/**
 * The byte sequence a fingerprint hashes, in order: a 12-byte header (n, inputSize, outputSize
 * as u32 little-endian), then the raw little-endian float32 bytes of x, then of y. The name,
 * labels and classes are not included (labels are implied by y). Exposed so that another
 * SHA-256 implementation (node:crypto) can produce the identical digest faster.
 */
export function fingerprintChunks(ds: Dataset): Uint8Array[] {
  assertDataset(ds);
  const header = new Uint8Array(12);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, ds.n, true);
  dv.setUint32(4, ds.inputSize, true);
  dv.setUint32(8, ds.outputSize, true);
  return [header, leBytes(ds.x), leBytes(ds.y)];
}

/**
 * Hex SHA-256 of a dataset's contents (see fingerprintChunks): same data gives the same hash
 * however it was loaded or named; any changed value (or bit pattern, e.g. -0 vs 0) changes it.
 */
export function fingerprint(ds: Dataset): string {
  const h = sha256.create();
  for (const c of fingerprintChunks(ds)) h.update(c);
  return bytesToHex(h.digest());
}
